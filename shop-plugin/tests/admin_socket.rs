//! The admin socket of a running `shop-plugin serve` against its schema
//! (`schema/admin-socket.schema.json`), both directions: every line the client
//! (`admin::call`) sends is a request the schema describes, every answer the server gives
//! (results, refusals, answers to lines that are no request) is one it describes, with
//! the right error code; the server never stops serving.

mod support;

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use shop_plugin::admin::{self, AdminError, ErrorCode, Request, MAX_LINE};
use shop_plugin::config::Config;
use shop_plugin::settlement::{Correction, Report};
use support::office::{forged_card, SAM};
use support::server::{write_config, write_config_with_office, Server};
use support::{temp_dir, TestCard};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

/// The schema with `def` (one of its `$defs`) as its root.
fn schema(def: &str) -> jsonschema::Validator {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schema/admin-socket.schema.json");
    let text = std::fs::read_to_string(&path).expect("the schema file");
    let mut schema: Value = serde_json::from_str(&text).expect("schema JSON");
    let root = schema.as_object_mut().expect("an object");
    if def != "root" {
        root.remove("oneOf");
        root.insert("$ref".into(), json!(format!("#/$defs/{def}")));
    }
    jsonschema::draft202012::new(&schema).expect("a valid 2020-12 schema")
}

/// Asserts that `v` is a `def` of the schema, and one of its messages.
fn assert_follows(def: &str, v: &Value) {
    for d in [def, "root"] {
        if let Err(e) = schema(d).validate(v) {
            panic!("not a {d} of the schema: {e}\n{v}");
        }
    }
}

/// The socket of the server over `dir`, as the operator's commands find it.
fn socket_of(dir: &Path) -> PathBuf {
    Config::load(&dir.join("shop-plugin.toml"))
        .expect("config")
        .admin_socket()
}

/// Sends `bytes` on a connection of its own (then closes the sending side) and returns
/// the answer line. Sending and reading go together: the server may answer, and close,
/// before it has read everything (a line too long).
async fn exchange_raw(socket: &Path, bytes: &[u8]) -> String {
    let stream = UnixStream::connect(socket).await.expect("connect");
    let (read, mut write) = stream.into_split();
    let send = async {
        // A refused write (the server closed after a line too long) is no failure here.
        let _ = write.write_all(bytes).await;
        let _ = write.shutdown().await;
    };
    let receive = async {
        let mut line = String::new();
        BufReader::new(read)
            .read_line(&mut line)
            .await
            .expect("the answer");
        line
    };
    let ((), line) = tokio::join!(send, receive);
    assert!(line.ends_with('\n'), "one whole answer line: {line:?}");
    line
}

async fn exchange(socket: &Path, bytes: &[u8]) -> Value {
    serde_json::from_str(&exchange_raw(socket, bytes).await).expect("a JSON answer")
}

/// `admin::call(req)` through a relay to the server at `socket`: the line the client
/// sent, the server's answer and what `call` made of it.
async fn call_relayed(socket: &Path, req: &Request) -> (Value, Value, Result<Value, AdminError>) {
    let relay = socket.with_file_name("relay.sock");
    let _ = std::fs::remove_file(&relay);
    let listener = UnixListener::bind(&relay).expect("bind the relay");
    let middle = async {
        let (stream, _) = listener.accept().await.expect("accept");
        let (read, mut write) = stream.into_split();
        let mut sent = String::new();
        BufReader::new(read)
            .read_line(&mut sent)
            .await
            .expect("the client's request");
        let answer = exchange_raw(socket, sent.as_bytes()).await;
        write
            .write_all(answer.as_bytes())
            .await
            .expect("relay the answer");
        (sent, answer)
    };
    let (got, (sent, answer)) = tokio::join!(admin::call(&relay, req), middle);
    assert!(sent.ends_with('\n'), "one request line: {sent:?}");
    let sent: Value = serde_json::from_str(&sent).expect("a JSON request");
    assert_follows("request", &sent);
    (
        sent,
        serde_json::from_str(&answer).expect("a JSON answer"),
        got,
    )
}

/// A settlement run through [`call_relayed`]: the request as sent, the answer a
/// settle_answer of the schema; returns the answer and the report `call` read.
async fn settle_relayed(socket: &Path, force: bool) -> (Value, Report) {
    let (sent, answer, got) = call_relayed(socket, &Request::Settle { force }).await;
    assert_eq!(sent, json!({"command": "settle", "force": force}));
    assert_follows("settle_answer", &answer);
    let report = serde_json::from_value(got.expect("settled")).expect("a report");
    (answer, report)
}

/// `answer` is a failure that follows the schema, with `code` and a message saying `says`.
fn assert_failure(answer: &Value, code_: &str, says: &str) {
    assert_follows("failure", answer);
    assert_eq!(code(answer), code_, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(says)),
        "{answer}"
    );
}

fn code(answer: &Value) -> &str {
    answer["error"]["code"].as_str().unwrap_or("none")
}

fn refusal_code(got: Result<Value, AdminError>) -> Option<ErrorCode> {
    match got {
        Err(AdminError::Refused(r)) => r.code,
        other => panic!("not a refusal: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settle_correct_and_wake_answers_follow_the_schema() {
    let dir = temp_dir("admin-socket");
    let (_, _office) = write_config_with_office(&dir).await;
    let server = Server::start(&dir);
    let socket = socket_of(&dir);
    server.pay(&mut TestCard::new(50, 10_000), 600).await;
    server.pay(&mut forged_card(51), 900).await;

    // settle: period 1 closed and uploaded; the office rejects the forged card's record.
    let (answer, report) = settle_relayed(&socket, false).await;
    assert_eq!(
        (
            report.closed.len(),
            report.closed[0].count,
            report.closed[0].sum
        ),
        (1, 2, 1500)
    );
    assert_eq!(report.rejected.len(), 1, "{answer}");
    assert!(report.post_error.is_none(), "{answer}");

    // correct: closed again without the refused record, then accepted.
    let req = Request::Correct {
        close_seq: 1,
        sam_id: None,
    };
    let (sent, answer, got) = call_relayed(&socket, &req).await;
    assert_eq!(
        sent,
        json!({"command": "correct", "close_seq": 1, "sam_id": null})
    );
    assert_follows("correct_answer", &answer);
    let c: Correction = serde_json::from_value(got.expect("corrected")).expect("a correction");
    assert_eq!(c.corrected.excluded, vec![2]);
    assert_eq!(c.report.posted.len(), 1, "{answer}");
    assert!(c.report.all_delivered(), "{answer}");

    // An accepted batch, a batch that does not exist: correction_refused.
    for (close_seq, sam_id) in [(1, Some(SAM)), (9, None), (1, Some("nobody"))] {
        let req = Request::Correct {
            close_seq,
            sam_id: sam_id.map(str::to_string),
        };
        let (_, answer, got) = call_relayed(&socket, &req).await;
        assert_follows("failure", &answer);
        assert_eq!(code(&answer), "correction_refused", "{answer}");
        assert_eq!(refusal_code(got), Some(ErrorCode::CorrectionRefused));
    }

    // wake_webhooks: null.
    let (sent, answer, got) = call_relayed(&socket, &Request::WakeWebhooks {}).await;
    assert_eq!(sent, json!({"command": "wake_webhooks"}));
    assert_follows("wake_webhooks_answer", &answer);
    assert_eq!(got.expect("woken"), Value::Null);

    // A run that cannot write its files (the outbox is now a file): settlement_failed.
    let outbox = dir.join("outbox");
    std::fs::rename(&outbox, dir.join("outbox.moved")).expect("move the outbox");
    std::fs::write(&outbox, "not a directory").expect("a file in its place");
    let (_, answer, got) = call_relayed(&socket, &Request::Settle { force: false }).await;
    assert_failure(&answer, "settlement_failed", "outbox");
    assert_eq!(refusal_code(got), Some(ErrorCode::SettlementFailed));

    // The outbox back: the server settles again.
    std::fs::remove_file(&outbox).expect("the file");
    std::fs::rename(dir.join("outbox.moved"), &outbox).expect("the outbox back");
    let (answer, report) = settle_relayed(&socket, true).await;
    assert_eq!(report.closed[0].close_seq, 2, "{answer}");
    assert!(report.all_delivered(), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_that_is_no_request_gets_invalid_request_and_the_server_goes_on() {
    let dir = temp_dir("admin-socket-bad");
    write_config(&dir);
    let server = Server::start(&dir);
    let socket = socket_of(&dir);

    // JSON the schema refuses as a request, and so does the server.
    let refused_json = [
        r#"{"command": "launch"}"#,
        r#"{"force": true}"#,
        r#"{"command": "settle", "force": "yes"}"#,
        r#"{"command": "correct"}"#,
        r#"{"command": "correct", "close_seq": -1}"#,
        r#"{"command": "correct", "close_seq": 4294967296}"#,
        r#"{"command": "correct", "close_seq": "1"}"#,
        r#"{"command": "correct", "close_seq": 1, "sam_id": 7}"#,
        r#"{"command": "wake_webhooks", "now": true}"#,
        r#"{"command": "settle", "force": false, "dry_run": true}"#,
        r#"["settle"]"#,
        r#"null"#,
        r#"{}"#,
    ];
    for line in refused_json {
        let v: Value = serde_json::from_str(line).expect("JSON");
        assert!(!schema("request").is_valid(&v), "the schema takes {line}");
        let answer = exchange(&socket, format!("{line}\n").as_bytes()).await;
        assert_eq!(code(&answer), "invalid_request", "{line}: {answer}");
        assert_follows("failure", &answer);
    }

    // No JSON at all, nothing, and a line one byte over the limit.
    let mut too_long = br#"{"command": "wake_webhooks""#.to_vec();
    too_long.resize(MAX_LINE, b' ');
    too_long.extend_from_slice(b"}\n");
    let cases: [(&str, &[u8], &str); 6] = [
        ("not JSON", b"settle please\n", "not a request"),
        ("not UTF-8", b"\xff\xfe\n", "not a request"),
        (
            "two lines, the first empty",
            b"\n{\"command\": \"settle\"}\n",
            "no request",
        ),
        ("a closed connection", b"", "no request"),
        (
            "half a request, then closed",
            b"{\"command\": \"set",
            "not a request",
        ),
        ("a line too long", &too_long, "exceeds 65536 bytes"),
    ];
    for (what, bytes, says) in cases {
        let answer = exchange(&socket, bytes).await;
        assert_follows("failure", &answer);
        assert_eq!(code(&answer), "invalid_request", "{what}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(says)),
            "{what}: {answer}"
        );
    }

    // A connection dropped without a word, then a request at exactly the limit (its
    // newline included) is served.
    drop(UnixStream::connect(&socket).await.expect("connect"));
    let mut longest = br#"{"command": "wake_webhooks""#.to_vec();
    longest.resize(MAX_LINE - 2, b' ');
    longest.extend_from_slice(b"}\n");
    assert_eq!(longest.len(), MAX_LINE);
    let answer = exchange(&socket, &longest).await;
    assert_follows("wake_webhooks_answer", &answer);

    // The client's own requests still work, and their answers follow the schema.
    for (force, seq) in [(false, 1), (true, 2)] {
        let (answer, report) = settle_relayed(&socket, force).await;
        assert_eq!(
            (
                report.closed.len(),
                report.closed[0].close_seq,
                report.closed[0].count
            ),
            (1, seq, 0),
            "{answer}"
        );
    }
    let log = server.log.lock().expect("log").clone();
    assert!(!log.contains("panicked"), "{log}");
}

/// A client that sends half a line and then nothing, without closing: the server answers
/// `invalid_request` once its read deadline has passed, and closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_line_never_finished_is_answered_after_the_deadline() {
    let dir = temp_dir("admin-socket-slow");
    write_config(&dir);
    let _server = Server::start(&dir);
    let socket = socket_of(&dir);
    let stream = UnixStream::connect(&socket).await.expect("connect");
    let (read, mut write) = stream.into_split();
    write
        .write_all(br#"{"command": "wake_"#)
        .await
        .expect("half a request");
    let started = std::time::Instant::now();
    let mut line = String::new();
    BufReader::new(read)
        .read_line(&mut line)
        .await
        .expect("the answer");
    assert!(
        started.elapsed() >= shop_plugin::admin::READ_DEADLINE - std::time::Duration::from_secs(1)
    );
    let answer: Value = serde_json::from_str(&line).expect("a JSON answer");
    assert_failure(
        &answer,
        "invalid_request",
        "no whole request line within 10 s",
    );
    drop(write);
}

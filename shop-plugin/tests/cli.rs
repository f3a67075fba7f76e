//! The operator's commands, run as the built binary in a temporary directory: `init`
//! (over the SAM emulator in its reader on the real pcscd),
//! `settle` beside a running `serve` (through its admin socket) and without one, and
//! `payments list`, `totals`, `events list` / `events retry`; a webhook that outlives a
//! `kill -9` of the server.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Output;

use purse::clearing::{parse_batch, ClearingState};
use serde_json::{json, Value};
use shop_plugin::config::Config;
use shop_plugin::engine::sha256_hex;
use shop_plugin::webhooks::{verify, WebhookSecret};
use support::receiver::Receiver;
use support::server::{run, write_config, Server};
use support::{emulator_bin, issuer, temp_dir, TestCard};
use testkit::{new_sam_card_state, wait_present, write_sam_card, Emulator, SlotLock, SLOT_0};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "{}\nstderr: {}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    stdout(&o)
}

fn failed(o: Output) -> String {
    assert!(!o.status.success(), "should have failed: {}", stdout(&o));
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn utc_day() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        / 86_400
}

/// A SAM card (the SAM emulator) in its own reader, as the shop's operator plugs it in.
fn sam_in_reader(dir: &std::path::Path) -> (SlotLock, Emulator) {
    let lock = SlotLock::acquire(SLOT_0);
    let file = dir.join("sam-card.json");
    write_sam_card(
        &file,
        &new_sam_card_state(purse::SamId([0x5A, 0, 0, 0, 0, 0, 0, 0x71])),
    );
    let emu = Emulator::spawn(&emulator_bin("sam-emulator"), &lock, &file);
    wait_present(&testkit::pcsc_context(), SLOT_0.reader);
    (lock, emu)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_writes_a_config_a_private_secret_and_shows_the_api_key_once() {
    let dir = temp_dir("cli-init");
    let (_lock, _sam) = sam_in_reader(&dir);
    let config = dir.join("shop-plugin.toml");
    let out = ok(run(
        &config,
        &[
            "init",
            "--sam-reader",
            SLOT_0.reader,
            "--listen",
            "127.0.0.1:0",
            "--allowed-origin",
            "https://shop.example",
        ],
    )
    .await);
    assert!(out.contains("SAM 5a00000000000071 (EUR)"), "{out}");
    let key = out.lines().last().expect("the key line").trim().to_string();
    assert!(key.starts_with("sk_") && key.len() > 40, "{out}");

    let text = std::fs::read_to_string(&config).expect("config");
    assert!(!text.contains(&key), "the key itself is not stored");
    let c = Config::load(&config).expect("the written config loads");
    assert_eq!(c.merchant.api_key_sha256, vec![sha256_hex(key.as_bytes())]);
    assert_eq!(c.allowed_origins, vec!["https://shop.example".to_string()]);
    assert_eq!(c.sam.readers, vec![SLOT_0.reader.to_string()]);
    let mode = std::fs::metadata(&c.webhooks.secret_file)
        .expect("secret file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    WebhookSecret::load(&c.webhooks.secret_file).expect("a usable secret");
    // No purse key anywhere in the shop's directory.
    for entry in std::fs::read_dir(&dir).expect("dir") {
        let path = entry.expect("entry").path();
        if path.file_name().is_some_and(|n| n == "sam-card.json") {
            continue; // the SAM card's own file (the emulator's chip memory)
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            !text.contains("mk_pur") && !text.contains("k_sam"),
            "{}",
            path.display()
        );
    }

    // Never over an existing configuration.
    let again = failed(run(&config, &["init", "--sam-reader", SLOT_0.reader]).await);
    assert!(again.contains("already exists"), "{again}");
    assert_eq!(std::fs::read_to_string(&config).expect("config"), text);

    // The written configuration serves through the SAM card, and the printed key is
    // the merchant's key.
    let server = Server::start(&dir);
    let (s, v) = server
        .request(
            "POST",
            "/v1/payments",
            Some(&json!({"amount": 100, "currency": "EUR"})),
            &[("authorization", &format!("Bearer {key}"))],
        )
        .await;
    assert_eq!(s, 201, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_refuses_a_reader_without_a_sam_and_a_key_file_config() {
    let dir = temp_dir("cli-init-refuse");
    let config = dir.join("shop-plugin.toml");
    let none = failed(run(&config, &["init"]).await);
    assert!(none.contains("--sam-reader"), "{none}");
    let missing = failed(run(&config, &["init", "--sam-reader", "No Such Reader 00 00"]).await);
    assert!(
        missing.contains("SAM reader 'No Such Reader 00 00'"),
        "{missing}"
    );
    assert!(!config.exists(), "nothing written");
    assert!(!dir.join("webhook-secret").exists(), "nothing written");

    // A configuration of the removed key-file mode says what replaces it.
    let legacy = write_config(&dir);
    let text = std::fs::read_to_string(&legacy).expect("config");
    let text = text.replace("[sam]\nin_process_card = \"sam-card.json\"\n", "");
    let text = text.replace(
        "allowed_origins",
        "sam_keys = \"sam.json\"\nallowed_origins",
    );
    std::fs::write(&legacy, text).expect("config");
    let err = failed(run(&legacy, &["serve"]).await);
    assert!(
        err.contains("sam_keys") && err.contains("issue-card"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_webhook_secret_others_may_read() {
    let dir = temp_dir("cli-open-secret");
    let config = write_config(&dir);
    let secret = dir.join("webhook-secret");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let err = failed(run(&config, &["serve"]).await);
    assert!(err.contains("chmod 600"), "{err}");
    assert!(!err.contains("whsec_"), "the secret is never shown: {err}");
}

/// A plugin directory whose failed webhooks give up at once (so `events` has work).
fn plugin_dir(name: &str, webhooks: &str) -> (PathBuf, PathBuf) {
    let dir = temp_dir(name);
    let config = write_config(&dir);
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text.replace("[webhooks]\n", &format!("[webhooks]\n{webhooks}\n"));
    std::fs::write(&config, text).expect("config");
    (dir, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settle_beside_serve_and_alone_and_the_operator_commands() {
    let (dir, config) = plugin_dir("cli-settle", "retry_give_up_secs = 0");
    let mut hooks = Receiver::start(&[500]).await;
    let server = Server::start(&dir);

    // A purchase whose first webhook fails for good (retries: none).
    let (id, secret, created) = server.create_notifying(1250, &hooks.url("/hook")).await;
    let first = hooks.next().await;
    let event_id = first.header("purse-event-id").to_string();
    let mut card = TestCard::new(41, 10_000);
    let (kv, init) = card.initialize(&created);
    let (s, step) = server.initialize(&id, &secret, kv, &init).await;
    assert_eq!(s, 200, "{step}");
    let answer = card.run(step["command"].as_str().expect("DEBIT"));
    let (s, done) = server.answer(&id, &secret, Some(&answer)).await;
    assert_eq!((s, &done["status"]), (200, &json!("succeeded")));

    // `events list --failed` shows it (once its attempt is recorded: wait for that).
    let mut failed_events = Vec::new();
    for _ in 0..1000 {
        failed_events = json_lines(&ok(
            run(&config, &["events", "list", "--failed", "--json"]).await
        ));
        if !failed_events.is_empty() {
            break;
        }
    }
    assert_eq!(failed_events.len(), 1);
    assert_eq!(failed_events[0]["id"], json!(event_id));
    assert_eq!(failed_events[0]["last_error"], json!("HTTP 500"));
    // The failed head holds back the payment's later events.
    assert!(hooks.try_next().is_none());

    let retried = ok(run(&config, &["events", "retry", &event_id]).await);
    assert!(retried.contains("told to send them now"), "{retried}");
    let secret_text = std::fs::read_to_string(dir.join("webhook-secret")).expect("secret");
    let mut kinds = Vec::new();
    for _ in 0..3 {
        let r = hooks.next().await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64;
        verify(
            secret_text.trim().as_bytes(),
            r.header("purse-signature"),
            &r.body,
            now,
            300,
        )
        .expect("signed with the secret file's secret");
        kinds.push(r.json()["type"].as_str().expect("type").to_string());
    }
    assert_eq!(
        kinds,
        ["payment.created", "payment.authorized", "payment.succeeded"]
    );

    let listed = json_lines(&ok(run(
        &config,
        &["payments", "list", "--status", "succeeded", "--json"],
    )
    .await));
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], json!(id));
    let table = ok(run(&config, &["payments", "list"]).await);
    assert!(
        table.contains(&id) && table.contains("succeeded"),
        "{table}"
    );
    let bad = failed(run(&config, &["payments", "list", "--status", "paid"]).await);
    assert!(bad.contains("unknown status"), "{bad}");

    let totals: Value =
        serde_json::from_str(&ok(run(&config, &["totals", "--json"]).await)).expect("JSON");
    assert_eq!(
        totals["states"],
        json!([{"state": "completed", "count": 1, "total": 1250}])
    );
    assert_eq!(totals["unresolved"], json!([]));

    // `settle` while serve holds the SAM: the server settles, through its admin socket.
    let day = utc_day();
    let out = ok(run(&config, &["settle"]).await);
    assert!(
        out.contains("closed period 1 of SAM 5a00000000000007: 1 transaction(s), sum 1250"),
        "{out}"
    );
    assert!(server
        .log
        .lock()
        .expect("log")
        .contains("requested on the admin socket"));
    let file = dir.join("outbox/batch-5a00000000000007-1.json");
    let bytes = std::fs::read(&file).expect("the batch file");
    let batch1 = parse_batch(std::str::from_utf8(&bytes).expect("utf-8")).expect("a batch");
    let mut office = ClearingState::default();
    office
        .clear(&batch1, &issuer())
        .expect("the clearing office accepts it");

    let again = ok(run(&config, &["settle"]).await);
    if utc_day() == day {
        assert!(again.contains("no period closed"), "{again}");
    }
    assert_eq!(std::fs::read(&file).expect("file"), bytes, "intact");

    // Without a server, settle runs the SAM itself (the lock is free after kill -9).
    server.kill9();
    let forced = ok(run(&config, &["settle", "--force"]).await);
    assert!(
        forced.contains("closed period 2 of SAM 5a00000000000007: 0 transaction(s)"),
        "{forced}"
    );
    let text2 =
        std::fs::read_to_string(dir.join("outbox/batch-5a00000000000007-2.json")).expect("file 2");
    office
        .clear(&parse_batch(&text2).expect("batch 2"), &issuer())
        .expect("batch 2 follows batch 1");

    // A restarted server replaces the stale socket and settles again.
    let _server = Server::start(&dir);
    let third = ok(run(&config, &["settle"]).await);
    if utc_day() == day {
        assert!(third.contains("no period closed: period 2"), "{third}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_outlives_kill_9_of_the_server() {
    let (dir, _config) = plugin_dir("cli-wh-restart", "retry_first_secs = 1");
    let mut hooks = Receiver::start(&[500]).await;
    let server = Server::start(&dir);
    server.create_notifying(300, &hooks.url("/hook")).await;
    let refused = hooks.next().await;
    let id = refused.header("purse-event-id").to_string();
    server.kill9();

    // The event is in the database only; a new process delivers it.
    let _server = Server::start(&dir);
    let got = hooks.next().await;
    assert_eq!(got.header("purse-event-id"), id);
    assert_eq!(got.body, refused.body);
}

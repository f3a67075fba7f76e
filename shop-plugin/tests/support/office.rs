//! The real clearing office for the tests: the `clearing-office` binary on loopback
//! (plain HTTP, its own SQLite file, the tests' issuer keys, a fresh hotlist key), with
//! its operator API to register the tests' SAM.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Method;
use purse::card::CardState;
use purse::{Amount, CardId, Currency, Key, KeyVersion};
use serde_json::{json, Value};
use shop_plugin::outbound::Outbound;
use shop_plugin::settlement::batches;
use shop_plugin::settlement::office::OfficeLink;
use shop_plugin::settlement::Settler;
use tokio::sync::oneshot;

use super::{issuer, Plugin, TestCard};

pub const OPERATOR: &str = "operator-token-for-shop-tests";
pub const SAM: &str = "5a00000000000007";

/// The office binary, built once per test run (beside this test's own target dir).
fn office_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "-q",
            "-p",
            "clearing-office",
            "--bin",
            "clearing-office",
        ]);
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        let st = cmd.status().expect("cargo build clearing-office");
        assert!(st.success(), "building clearing-office failed");
        let exe = std::env::current_exe().expect("test exe");
        // target/<profile>/deps/<test> -> target/<profile>/clearing-office
        exe.parent()
            .and_then(Path::parent)
            .expect("target dir")
            .join("clearing-office")
    })
}

fn private(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// The office process on a fixed loopback port (so a restart keeps its URL).
pub struct Office {
    config: PathBuf,
    pub dir: PathBuf,
    pub url: String,
    /// The hotlist's Ed25519 public key, hex (what `hotlist-key` printed).
    pub hotlist_public: String,
    child: Option<Child>,
}

impl Office {
    pub fn start(dir: &Path) -> Office {
        let dir = dir.join("office");
        std::fs::create_dir_all(dir.join("spool")).expect("dir");
        private(
            &dir.join("issuer-keys.json"),
            &issuer().to_json().expect("keys"),
        );
        let out = Command::new(office_bin())
            .args(["hotlist-key", "--out"])
            .arg(dir.join("hotlist.key"))
            .output()
            .expect("hotlist-key");
        assert!(out.status.success());
        let hotlist_public = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(OPERATOR));
        let config = dir.join("office.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\ndatabase = \"sqlite:{}\"\n\
                 issuer_keys = \"issuer-keys.json\"\nhotlist_key = \"hotlist.key\"\n\
                 operator_token_sha256 = [\"{hash}\"]\nspool_dir = \"{}\"\n\
                 max_batch_bytes = 10000000\nplain_http = true\n",
                dir.join("office.db").display(),
                // Absolute: the office takes spool_dir as given.
                dir.join("spool").display()
            ),
        )
        .expect("config");
        let mut o = Office {
            config,
            dir,
            url: format!("http://127.0.0.1:{port}"),
            hotlist_public,
            child: None,
        };
        o.spawn();
        o
    }

    pub fn spawn(&mut self) {
        let mut child = Command::new(office_bin())
            .args(["serve", "--config"])
            .arg(&self.config)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn office");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        loop {
            let line = lines.next().expect("the office ended").expect("line");
            if line.starts_with("listening on ") {
                break;
            }
        }
        // Keep draining stderr (shown with CLEARING_TEST_LOG=1).
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if std::env::var_os("CLEARING_TEST_LOG").is_some() {
                    eprintln!("office: {line}");
                }
            }
        });
        self.child = Some(child);
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub async fn call(&self, method: Method, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.exchange(method, path, token, Some(Bytes::from(body.to_string())))
            .await
    }

    /// An operator's `GET` (no body); the status and the JSON answer.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.exchange(Method::GET, path, OPERATOR, None).await
    }

    async fn exchange(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Bytes>,
    ) -> (u16, Value) {
        let client = Outbound::new(None, Duration::from_secs(10)).expect("client");
        let a = client
            .exchange(
                method,
                &format!("{}{path}", self.url),
                body,
                &[("authorization", format!("Bearer {token}"))],
            )
            .await
            .expect("exchange");
        (
            a.status,
            serde_json::from_slice(&a.body).unwrap_or(Value::Null),
        )
    }

    /// The office's batches of one SAM (operator API), newest first.
    pub async fn batches_of(&self, sam_id: &str) -> Vec<Value> {
        let (s, v) = self.get(&format!("/v1/batches?sam_id={sam_id}")).await;
        assert_eq!(s, 200, "{v}");
        v["batches"].as_array().expect("batches").clone()
    }

    /// A merchant's payouts (operator API), newest first.
    pub async fn payouts_of(&self, merchant: &str) -> Vec<Value> {
        let (s, v) = self.get(&format!("/v1/merchants/{merchant}/payouts")).await;
        assert_eq!(s, 200, "{v}");
        v["data"].as_array().expect("payouts").clone()
    }

    /// The office's `host:port`.
    pub fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }

    /// Registers the tests' SAM (and its merchant `shop1`); returns its credential.
    pub async fn register(&self) -> String {
        self.register_merchant("shop1").await;
        self.register_sam(SAM).await
    }

    /// Registers a merchant.
    pub async fn register_merchant(&self, id: &str) {
        let (s, v) = self
            .call(
                Method::POST,
                "/v1/merchants",
                OPERATOR,
                json!({"id": id, "name": format!("Merchant {id}")}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
    }

    /// Registers another EUR SAM (hex SAM_ID) of the merchant `shop1`; its credential.
    pub async fn register_sam(&self, sam_id: &str) -> String {
        self.register_sam_of(sam_id, "shop1").await
    }

    /// Registers an EUR SAM (hex SAM_ID) of `merchant`; its credential.
    pub async fn register_sam_of(&self, sam_id: &str, merchant: &str) -> String {
        let (s, v) = self
            .call(
                Method::POST,
                "/v1/sams",
                OPERATOR,
                json!({"sam_id": sam_id, "merchant_id": merchant, "currency": 978,
                       "key_version": 1, "card_key_versions": [1]}),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        v["credential"].as_str().expect("credential").to_string()
    }
}

impl Drop for Office {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The plugin's batch rows, in close_seq order.
pub async fn rows(p: &Plugin) -> Vec<batches::BatchRow> {
    p.app
        .engine
        .store()
        .read(batches::list)
        .await
        .expect("rows")
}

/// The office's answer a batch row holds.
pub fn answer(r: &batches::BatchRow) -> Value {
    serde_json::from_str(r.answer.as_deref().expect("an answer")).expect("json")
}

/// A settlement run of `p` that uploads to the office at `url` with `credential`.
pub fn settler(p: &Plugin, url: &str, credential: &str) -> Settler {
    Settler {
        outbox: p.dir.join("outbox"),
        office: Some(OfficeLink {
            url: url.to_string(),
            credentials: vec![credential.to_string().into()],
            attempts: 2,
            first_delay: Duration::from_millis(20),
        }),
        client: Outbound::new(None, Duration::from_secs(10)).expect("client"),
        auto_correct: false,
    }
}

/// A stand-in for the office (a captive portal, a tampering server in between) that
/// answers every request 200 with `body` as the test sets it, of `content_type`.
pub async fn stand_in(content_type: &'static str, body: Arc<Mutex<Bytes>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req| {
                    let b = body.lock().map(|b| b.clone()).unwrap_or_default();
                    async move {
                        let mut r = hyper::Response::new(Full::new(b));
                        r.headers_mut().insert(
                            "content-type",
                            hyper::header::HeaderValue::from_static(content_type),
                        );
                        Ok::<_, std::convert::Infallible>(r)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    url
}

/// What the relay's first connection holds back.
#[derive(Clone, Copy, Debug)]
pub enum Hold {
    /// The request's head and this many bytes of its body go through, nothing more.
    Body(usize),
    /// The whole request goes through, none of the answer.
    Answer,
}

/// A TCP relay to the office at `upstream` (`host:port`) whose first connection is held
/// as `hold` says: the returned receiver fires once it holds, and when the office goes
/// away (killed) that connection is closed with no answer. Later connections pass
/// through. Returns the relay's URL.
pub async fn relay(upstream: String, hold: Hold) -> (String, oneshot::Receiver<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tell, held) = oneshot::channel();
    tokio::spawn(async move {
        let mut tell = Some(tell);
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            let first = tell.take();
            tokio::spawn(async move {
                let Ok(up) = tokio::net::TcpStream::connect(&upstream).await else {
                    return; // the office is down: the client's connection just closes
                };
                match first {
                    Some(tell) => hold_first(client, up, hold, tell).await,
                    None => {
                        let (mut client, mut up) = (client, up);
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
                    }
                }
            });
        }
    });
    (url, held)
}

/// The end of an HTTP/1.1 head and its `Content-Length`, once the head is complete.
fn head(bytes: &[u8]) -> Option<(usize, usize)> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let text = std::str::from_utf8(&bytes[..end]).ok()?;
    let length = text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())?
    })?;
    Some((end, length))
}

async fn hold_first(
    mut client: tokio::net::TcpStream,
    mut up: tokio::net::TcpStream,
    hold: Hold,
    tell: oneshot::Sender<()>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut got = Vec::new();
    let mut sent = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        let Some((end, length)) = head(&got) else {
            continue;
        };
        let limit = end
            + match hold {
                Hold::Body(n) => n.min(length),
                Hold::Answer => length,
            };
        let upto = got.len().min(limit);
        if up.write_all(&got[sent..upto]).await.is_err() {
            return;
        }
        sent = upto;
        if sent == limit {
            break;
        }
    }
    let _ = tell.send(());
    // Whatever the office answers stays here, until it goes away.
    let _ = tokio::io::copy(&mut up, &mut tokio::io::sink()).await;
}

/// A card whose TAC key is not the issuer's: the SAM cannot tell, the office can.
pub fn forged_card(id: u8) -> TestCard {
    let card_id = CardId([0x10, 0, 0, 0, 0, 0, 0, id]);
    let m = issuer();
    let m = m.get(KeyVersion(1)).expect("kv");
    let state = CardState::new(
        card_id,
        KeyVersion(1),
        Currency::EUR,
        Amount(10_000),
        m.k_pur(card_id),
        Key::from_bytes([0x77; 16]),
    );
    TestCard::from_state(state, id)
}

/// The close_seqs of a report's batches (the tests' plugins have one SAM).
pub fn closes(ids: &[shop_plugin::settlement::BatchId]) -> Vec<u32> {
    ids.iter().map(|b| b.close_seq).collect()
}

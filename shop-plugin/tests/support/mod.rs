//! Test harness of the shop plugin: a real server on loopback over a real SQLite file,
//! with a clock the test moves, an HTTP client, and purse cards in process.
#![allow(dead_code)]

pub mod office;
pub mod receiver;
pub mod sam_rig;
pub mod server;
pub mod steps;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use purse::card::{Card, CardState, MemoryStore};
use purse::commands::{CardCommand, SelectInfo};
use purse::keys::{IssuerKeys, MasterKeys, SamKeys};
use purse::sam_applet::SamState;
use purse::{Amount, CardId, Currency, Key, KeyVersion, Rnd, SamId};
use serde_json::Value;
use shop_plugin::engine::{sha256_hex, Clock, Engine, Pool, Settings};
use shop_plugin::http::{self, App};
use shop_plugin::sam::in_process::InProcessSam;
use shop_plugin::sam::SecurityModule;
use shop_plugin::store::Store;

pub const API_KEY: &str = "sk_test_0123456789";
pub const ORIGIN: &str = "https://shop.example";
pub const T0: i64 = 1_795_000_000;

/// A clock the test sets.
pub struct TestClock(pub AtomicI64);

impl Clock for TestClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

pub fn issuer() -> IssuerKeys {
    let mut versions = BTreeMap::new();
    versions.insert(
        KeyVersion(1),
        MasterKeys {
            mk_pur: Key::from_bytes([0x11; 16]),
            mk_tac: Key::from_bytes([0x12; 16]),
            mk_sam: Key::from_bytes([0x13; 16]),
        },
    );
    IssuerKeys { versions }
}

pub fn sam_keys() -> SamKeys {
    sam_keys_of(7)
}

/// The key file of the tests' SAM `5a000000000000<id>` (EUR, key version 1).
pub fn sam_keys_of(id: u8) -> SamKeys {
    SamKeys::issue(
        &issuer(),
        SamId([0x5A, 0, 0, 0, 0, 0, 0, id]),
        Currency::EUR,
        KeyVersion(1),
        &[KeyVersion(1)],
    )
    .expect("sam keys")
}

/// `target/<profile>/<name>` (an emulator binary), beside the running test's directory.
pub fn emulator_bin(name: &str) -> String {
    let exe = std::env::current_exe().expect("test exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let bin: PathBuf = dir.join(name);
    assert!(
        bin.exists(),
        "{} missing: build the emulators first (cargo build -p card-emulators)",
        bin.display()
    );
    bin.to_string_lossy().into_owned()
}

/// Asserts that every cent that left `card` (which held `start`) belongs to a succeeded
/// payment of that card among `payments`; returns what those payments charged.
pub fn assert_card_charged<'a>(
    payments: impl IntoIterator<Item = &'a Value>,
    card: &TestCard,
    start: u32,
) -> u64 {
    let id = card.card.state().card_id.to_hex();
    let paid: u64 = payments
        .into_iter()
        .filter(|p| p["card_id"] == serde_json::json!(id) && p["status"] == "succeeded")
        .map(|p| p["charged"]["total"].as_u64().expect("total"))
        .sum();
    assert_eq!(
        u64::from(start - card.balance()),
        paid,
        "card {id}: debited vs succeeded payments"
    );
    paid
}

/// The SAM card file of a test plugin in `dir` (`sam-card.json`, 0600): personalised
/// for `keys` the first time, kept across restarts in the same directory.
pub fn sam_card_file(dir: &std::path::Path, keys: SamKeys) -> PathBuf {
    let path = dir.join("sam-card.json");
    if !path.exists() {
        let state = SamState::personalise(keys, Key::from_bytes([0x3C; 16]));
        secure_files::write_atomic(&path, state.to_json().as_bytes(), 0o600)
            .expect("SAM card file");
    }
    path
}

/// The tests' SAM: the SAM applet in process over its card file in `dir`.
pub fn in_process_sam(dir: &std::path::Path, keys: SamKeys) -> Box<dyn SecurityModule> {
    let file = sam_card_file(dir, keys);
    Box::new(InProcessSam::from_file(&file).expect("SAM card"))
}

/// The tests' SAM applet in process with its state in memory only (benchmarks: the
/// engine's own cost, without the SAM card's writes).
pub fn memory_sam(keys: SamKeys) -> Box<dyn SecurityModule> {
    let state = SamState::personalise(keys, Key::from_bytes([0x3C; 16]));
    Box::new(
        InProcessSam::new(state, shop_plugin::sam::in_process::Keep::Memory).expect("SAM applet"),
    )
}

/// A running plugin on loopback. Its HTTP helpers are those of [`Http`] (by `Deref`).
pub struct Plugin {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    pub clock: Arc<TestClock>,
    pub dir: PathBuf,
    http: Http,
}

impl std::ops::Deref for Plugin {
    type Target = Http;
    fn deref(&self) -> &Http {
        &self.http
    }
}

/// An HTTP reply: status, headers, and the JSON body (Null when empty, a JSON string
/// when the body is not JSON).
pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Value,
}

/// An HTTP client of one plugin address (a server in this process or a child process).
/// Cloning shares the connection pool.
#[derive(Clone)]
pub struct Http {
    pub addr: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
}

pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "shop-plugin-{name}-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

impl Plugin {
    pub async fn start(name: &str) -> Plugin {
        Plugin::start_in(temp_dir(name)).await
    }

    /// Starts (or restarts) a plugin over the database in `dir`.
    pub async fn start_in(dir: PathBuf) -> Plugin {
        Plugin::start_in_with(dir, http::Limits::default()).await
    }

    /// [`Plugin::start_in`] with other connection limits and timeouts.
    pub async fn start_in_with(dir: PathBuf, limits: http::Limits) -> Plugin {
        Plugin::start_in_with_sam(dir, limits, sam_keys()).await
    }

    /// A plugin of another SAM than the tests' own (a second shop).
    pub async fn start_with_sam(name: &str, sam: SamKeys) -> Plugin {
        Plugin::start_in_with_sam(temp_dir(name), http::Limits::default(), sam).await
    }

    async fn start_in_with_sam(dir: PathBuf, limits: http::Limits, sam: SamKeys) -> Plugin {
        let module = in_process_sam(&dir, sam);
        Plugin::start_on(dir, vec![module], limits).await
    }

    /// A plugin over the database in `dir` driving `sams` (SAM cards in their readers,
    /// or the applet in process).
    pub async fn start_on(
        dir: PathBuf,
        sams: Vec<Box<dyn SecurityModule>>,
        limits: http::Limits,
    ) -> Plugin {
        let store = Store::open(&dir.join("plugin.db")).expect("store");
        let clock = Arc::new(TestClock(AtomicI64::new(T0)));
        let engine = Engine::open(
            store,
            Pool::new(sams).expect("a pool of SAMs"),
            clock.clone(),
            Settings {
                secret_ttl_secs: 1800,
            },
        )
        .expect("engine");
        let app = Arc::new(App {
            engine,
            api_key_hashes: vec![sha256_hex(API_KEY.as_bytes())],
            allowed_origins: vec![ORIGIN.to_string()],
            checkout_js: shop_plugin::CHECKOUT_JS,
        });
        let addr = http::spawn_with(app.clone(), "127.0.0.1:0".parse().expect("addr"), limits)
            .await
            .expect("bind");
        Plugin {
            addr,
            app,
            clock,
            dir,
            http: Http::new(addr),
        }
    }

    pub fn set_time(&self, t: i64) {
        self.clock.0.store(t, Ordering::SeqCst);
    }

    /// Closes the period of the plugin's one SAM: its batch.
    pub async fn close(&self) -> purse::settlement::Batch {
        self.app
            .engine
            .close_period()
            .await
            .expect("close")
            .pop()
            .expect("the one SAM's batch")
    }
}

impl Http {
    pub fn new(addr: SocketAddr) -> Http {
        Http {
            addr,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// One HTTP request; returns the status and the JSON body (Null when empty).
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let body = Bytes::from(body.map(|v| v.to_string()).unwrap_or_default());
        self.request_raw(method, path, body, headers).await
    }

    /// One HTTP request with the body as given (malformed bodies included).
    pub async fn request_raw(
        &self,
        method: &str,
        path: &str,
        body: Bytes,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let r = self.send(method, path, body, headers).await;
        (r.status, r.body)
    }

    /// One HTTP request; the reply with its headers.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Bytes,
        headers: &[(&str, &str)],
    ) -> Reply {
        self.try_send(method, path, body, headers)
            .await
            .expect("HTTP exchange")
    }

    /// One HTTP request that may fail (the server was killed): the transport's error.
    pub async fn try_send(
        &self,
        method: &str,
        path: &str,
        body: Bytes,
        headers: &[(&str, &str)],
    ) -> Result<Reply, String> {
        let mut b = hyper::Request::builder()
            .method(method)
            .uri(format!("http://{}{}", self.addr, path))
            .header("content-type", "application/json");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(Full::new(body)).expect("request");
        let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    pub async fn merchant(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let auth = format!("Bearer {API_KEY}");
        self.request(method, path, body, &[("authorization", &auth)])
            .await
    }

    pub async fn shopper(&self, path: &str, body: &Value) -> (u16, Value) {
        self.request("POST", path, Some(body), &[("origin", ORIGIN)])
            .await
    }
}

/// A purse card in process, driven with hex APDUs as the browser side would.
pub struct TestCard {
    pub card: Card,
}

impl TestCard {
    pub fn new(id: u8, balance: u32) -> TestCard {
        TestCard::with_currency(id, balance, Currency::EUR)
    }

    /// A card holding another currency than the SAM's (EUR).
    pub fn with_currency(id: u8, balance: u32, currency: Currency) -> TestCard {
        let card_id = CardId([0x10, 0, 0, 0, 0, 0, 0, id]);
        let m = issuer();
        let m = m.get(KeyVersion(1)).expect("kv");
        let state = CardState::new(
            card_id,
            KeyVersion(1),
            currency,
            Amount(balance),
            m.k_pur(card_id),
            m.k_tac(card_id),
        );
        TestCard::from_state(state, id)
    }

    /// The card of `state`, drawing a fixed sequence of RND_C seeded by `id`.
    pub fn from_state(state: CardState, id: u8) -> TestCard {
        let mut n = 0u8;
        TestCard {
            card: Card::new(
                state,
                Box::new(move || {
                    n = n.wrapping_add(1);
                    Rnd([n ^ id; 16])
                }),
            ),
        }
    }

    pub fn run(&mut self, apdu_hex: &str) -> String {
        let apdu = hex::decode(apdu_hex).expect("hex APDU");
        hex::encode(self.card.process(&apdu, &mut MemoryStore))
    }

    pub fn select(&mut self) -> SelectInfo {
        let r = self
            .card
            .process(&CardCommand::select().encode(), &mut MemoryStore);
        SelectInfo::parse(&r[..r.len() - 2]).expect("FCI")
    }

    pub fn balance(&self) -> u32 {
        self.card.state().balance.0
    }

    /// The INITIALIZE of a created payment for this card's KV, run on the card.
    pub fn initialize(&mut self, payment: &Value) -> (u8, String) {
        let kv = self.select().kv.0;
        let apdu = payment["initialize"]
            .as_array()
            .and_then(|a| a.iter().find(|i| i["kv"] == kv))
            .and_then(|i| i["apdu"].as_str())
            .expect("an INITIALIZE for the card's key version")
            .to_string();
        (kv, self.run(&apdu))
    }
}

/// Creates a single purchase through the merchant API; returns (id, secret, payment).
pub async fn create_single(p: &Http, amount: u32) -> (String, String, Value) {
    let (s, v) = p
        .merchant("POST", "/v1/payments", Some(&serde_json::json!({"amount": amount, "currency": "EUR", "order_reference": "order-1", "description": "Tea"})))
        .await;
    assert_eq!(s, 201, "{v}");
    (
        v["id"].as_str().expect("id").to_string(),
        v["client_secret"].as_str().expect("secret").to_string(),
        v,
    )
}

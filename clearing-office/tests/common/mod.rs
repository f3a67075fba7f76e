//! The office as the tests run it: the real binary on loopback (plain HTTP, or HTTPS
//! with a certificate of a test CA: [`TestCa`]), its own
//! database (a SQLite file, or a fresh database on the PostgreSQL server that
//! `CLEARING_TEST_PG_URL` names: `scripts/test-clearing-pg`), the vectors' issuer keys,
//! and a hyper client.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use purse::keys::{IssuerKeys, MasterKeys};
use purse::macs::{proof_key, TacInput};
use purse::settlement::{seal, Batch, BatchTx, CloseInput};
use purse::{
    Amount, CardId, CloseSeq, Currency, DateTime, Key, KeyVersion, Mac8, Nt, SamId, SamTxSeq, Units,
};
use serde_json::{json, Value};

pub const OPERATOR_TOKEN: &str = "operator-token-for-tests";

pub fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../purse/tests/data/purse-v1.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("vectors")).expect("json")
}

pub fn issuer_keys() -> IssuerKeys {
    let v = vectors();
    let mut keys = IssuerKeys::default();
    for (kv, m) in v["issuer"]["key_versions"].as_object().expect("kvs") {
        let k = |n: &str| Key::from_hex(m[n].as_str().expect("hex")).expect("key");
        keys.versions.insert(
            KeyVersion(kv.parse().expect("kv")),
            MasterKeys {
                mk_pur: k("mk_pur"),
                mk_tac: k("mk_tac"),
                mk_sam: k("mk_sam"),
            },
        );
    }
    keys
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A fresh database URL for one office: SQLite in `dir`, or a new PostgreSQL database.
pub async fn database(dir: &Path) -> String {
    match std::env::var("CLEARING_TEST_PG_URL") {
        Ok(base) => {
            use sqlx::Connection;
            let name = format!(
                "co_{}_{}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::SeqCst)
            );
            let mut c = sqlx::PgConnection::connect(&base)
                .await
                .expect("connect to CLEARING_TEST_PG_URL");
            sqlx::Executor::execute(&mut c, format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create database");
            let (prefix, _) = base.rsplit_once('/').expect("URL with a database");
            let (_, query) = base.split_once('?').map_or(("", ""), |(a, q)| (a, q));
            if query.is_empty() {
                format!("{prefix}/{name}")
            } else {
                format!("{prefix}/{name}?{query}")
            }
        }
        Err(_) => format!("sqlite:{}", dir.join("office.db").display()),
    }
}

pub fn backend() -> &'static str {
    if std::env::var("CLEARING_TEST_PG_URL").is_ok() {
        "postgresql"
    } else {
        "sqlite"
    }
}

pub struct Office {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub url: String,
    pub database: String,
    child: Child,
    pub public_key: [u8; 32],
    /// The CA (DER) the client trusts when the office serves HTTPS.
    tls_root: Option<Vec<u8>>,
}

/// A throw-away CA and a server certificate it signed for `localhost` and 127.0.0.1.
pub struct TestCa {
    pub ca_der: Vec<u8>,
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn new() -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("CA");
        let key = KeyPair::generate().expect("server key");
        let cert = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("server params")
            .signed_by(&key, &ca, &ca_key)
            .expect("server certificate");
        TestCa {
            ca_der: ca.der().to_vec(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "clearing-test-{name}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("dir");
    d
}

fn private(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_clearing-office")
}

impl Office {
    /// Writes the configuration and keys in a new directory and starts the office.
    pub async fn start(name: &str, max_batch_bytes: u64) -> Office {
        Office::launch(name, max_batch_bytes, None).await
    }

    /// The office serving HTTPS with `ca`'s server certificate; its client trusts `ca`.
    pub async fn start_tls(name: &str, max_batch_bytes: u64, ca: &TestCa) -> Office {
        Office::launch(name, max_batch_bytes, Some(ca)).await
    }

    async fn launch(name: &str, max_batch_bytes: u64, tls: Option<&TestCa>) -> Office {
        let dir = temp_dir(name);
        let database = database(&dir).await;
        private(
            &dir.join("issuer-keys.json"),
            &issuer_keys().to_json().expect("keys json"),
        );
        let out = Command::new(bin())
            .args(["hotlist-key", "--out"])
            .arg(dir.join("hotlist.key"))
            .output()
            .expect("hotlist-key");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let public = hex::decode(String::from_utf8_lossy(&out.stdout).trim()).expect("hex");
        std::fs::create_dir_all(dir.join("spool")).expect("spool");
        let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(OPERATOR_TOKEN));
        let config = dir.join("office.toml");
        let transport = match tls {
            None => "plain_http = true\n".to_string(),
            Some(ca) => {
                std::fs::write(dir.join("cert.pem"), &ca.cert_pem).expect("cert");
                private(&dir.join("key.pem"), &ca.key_pem);
                "[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n".to_string()
            }
        };
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ndatabase = \"{database}\"\nissuer_keys = \"issuer-keys.json\"\n\
                 hotlist_key = \"hotlist.key\"\noperator_token_sha256 = [\"{hash}\"]\n\
                 spool_dir = \"{}\"\nmax_batch_bytes = {max_batch_bytes}\n{transport}",
                dir.join("spool").display()
            ),
        )
        .expect("config");
        let (child, url) = spawn(&config);
        Office {
            dir,
            config,
            url,
            database,
            child,
            public_key: public.try_into().expect("32 bytes"),
            tls_root: tls.map(|ca| ca.ca_der.clone()),
        }
    }

    /// Kills the process (SIGKILL) and starts it again on the same database.
    pub fn kill_and_restart(&mut self) {
        self.kill();
        let (child, url) = spawn(&self.config);
        self.child = child;
        self.url = url;
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn import(&self, state: &Value) {
        let path = self.dir.join("state.json");
        let mut s = state.clone();
        s["format"] = json!("purse-clearing-state/1");
        private(&path, &s.to_string());
        let out = Command::new(bin())
            .args(["import", "--config"])
            .arg(&self.config)
            .arg("--state")
            .arg(&path)
            .output()
            .expect("import");
        assert!(
            out.status.success(),
            "import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Reply {
        call_trusting(
            self.tls_root.as_deref(),
            &self.url,
            method,
            path,
            token,
            body,
        )
        .await
    }

    pub async fn op(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        self.call(
            method,
            path,
            Some(OPERATOR_TOKEN),
            body.map(|b| b.to_string().into_bytes()),
        )
        .await
    }

    /// Registers merchant `m` (if new) and SAM `sam` for it; returns the SAM's credential.
    pub async fn register(&self, m: &str, sam: &str, currency: u16, key_version: u8) -> String {
        let r = self
            .op(
                "POST",
                "/v1/merchants",
                Some(json!({"id": m, "name": format!("Shop {m}")})),
            )
            .await;
        assert!(r.status == 201 || r.status == 409, "{r:?}");
        let r = self
            .op(
                "POST",
                "/v1/sams",
                Some(
                    json!({"sam_id": sam, "merchant_id": m, "currency": currency,
                            "key_version": key_version, "card_key_versions": [1, 2]}),
                ),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        r.json["credential"]
            .as_str()
            .expect("credential")
            .to_string()
    }

    pub async fn upload(&self, credential: &str, body: &[u8]) -> Reply {
        self.call("POST", "/v1/batches", Some(credential), Some(body.to_vec()))
            .await
    }
}

impl Drop for Office {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spawn(config: &Path) -> (Child, String) {
    let mut child = Command::new(bin())
        .args(["serve", "--config"])
        .arg(config)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn office");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let (addr, https) = loop {
        let line = lines
            .next()
            .expect("the office ended before listening")
            .expect("line");
        if let Some(rest) = line.strip_prefix("listening on ") {
            let addr = rest.split_whitespace().next().expect("addr").to_string();
            break (addr, rest.contains("(https)"));
        }
    };
    // Keep draining stderr so the office never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if std::env::var_os("CLEARING_TEST_LOG").is_some() {
                eprintln!("office: {line}");
            }
        }
    });
    let scheme = if https { "https" } else { "http" };
    (child, format!("{scheme}://{addr}"))
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
    pub json: Value,
}

pub async fn call(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Vec<u8>>,
) -> Reply {
    call_trusting(None, base, method, path, token, body).await
}

/// An HTTPS client (hyper-rustls, HTTP/1.1) that trusts the CA `root` (DER) only.
pub fn https_client(
    root: &[u8],
) -> Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(root.to_vec()))
        .expect("test CA");
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}

/// [`call`] over HTTPS trusting `root` when given, plain HTTP otherwise.
pub async fn call_trusting(
    root: Option<&[u8]>,
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Vec<u8>>,
) -> Reply {
    let req = request(base, method, path, token, body);
    let resp = match root {
        Some(root) => https_client(root).request(req).await,
        None => {
            let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
            client.request(req).await
        }
    };
    reply(resp.expect("HTTP exchange")).await
}

pub fn request(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Vec<u8>>,
) -> hyper::Request<Full<Bytes>> {
    let mut b = hyper::Request::builder()
        .method(method)
        .uri(format!("{base}{path}"));
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    if body.is_some() {
        b = b.header("content-type", "application/json");
    }
    b.body(Full::new(Bytes::from(body.unwrap_or_default())))
        .expect("request")
}

async fn reply(resp: hyper::Response<hyper::body::Incoming>) -> Reply {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
        json,
    }
}

pub fn codes(d: &Value) -> std::collections::BTreeSet<String> {
    d["problems"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| p["code"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// A valid batch of `n` records of `sam` (key version 1, EUR): card `first_card + i`,
/// NT `nt`, 100 cents each, made directly with the issuer's keys.
pub fn make_batch(
    keys: &IssuerKeys,
    sam: SamId,
    close_seq: u32,
    first_card: u64,
    nt: u32,
    n: usize,
) -> Batch {
    let mk = keys.get(KeyVersion(1)).expect("kv 1");
    let currency = Currency::EUR;
    let txs: Vec<BatchTx> = (0..n)
        .map(|i| {
            let card_id = CardId((first_card + i as u64).to_be_bytes());
            let mut tx = BatchTx {
                kv: KeyVersion(1),
                card_id,
                nt: Nt(nt),
                sam_tx_seq: SamTxSeq(i as u32 + 1),
                datetime: DateTime(1_795_000_000),
                mode: 1,
                unit_amount: Amount(100),
                units: Units(1),
                total: Amount(100),
                balance_after: Amount(10_000 - 100 * nt),
                s3: Mac8([0; 8]),
                tac: Mac8([0; 8]),
            };
            let kt = proof_key(&mk.k_tac(card_id), card_id, tx.nt);
            tx.tac = TacInput::of_record(card_id, &tx.record(sam), currency).mac(&kt);
            tx
        })
        .collect();
    let k_sam = mk.k_sam(sam);
    seal(CloseInput {
        sam_id: sam,
        key_version: KeyVersion(1),
        k_sam: &k_sam,
        close_seq: CloseSeq(close_seq),
        currency,
        created_at: "2026-11-24T23:59:00Z".into(),
        transactions: txs,
        unresolved: vec![],
    })
}

//! A receiver on loopback for what the plugin POSTs (webhooks, batches to the clearing
//! office): it records every request and answers with scripted statuses (then 200).
//! Plain HTTP, or HTTPS with a certificate from a test CA the plugin is told to trust.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::Http;

/// How long a test waits for a request before it fails (never reached when all is well).
const DEADLINE: Duration = Duration::from_secs(20);

/// One request as received.
#[derive(Debug)]
pub struct Received {
    pub path: String,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no header {name}: {:?}", self.headers))
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

pub struct Receiver {
    pub addr: SocketAddr,
    tls: bool,
    rx: mpsc::UnboundedReceiver<Received>,
    script: Arc<Mutex<VecDeque<u16>>>,
}

type Script = Arc<Mutex<VecDeque<u16>>>;

async fn serve_conn<S>(io: S, tx: mpsc::UnboundedSender<Received>, script: Script)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
        let tx = tx.clone();
        let script = script.clone();
        async move {
            let path = req.uri().path().to_string();
            let headers = req.headers().clone();
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            // The status is taken when the request is recorded, in arrival order.
            let status = script.lock().expect("script").pop_front().unwrap_or(200);
            let _ = tx.send(Received {
                path,
                headers,
                body,
            });
            let mut r = Response::new(Full::new(Bytes::from_static(b"{}")));
            *r.status_mut() = hyper::StatusCode::from_u16(status).expect("status");
            Ok::<_, Infallible>(r)
        }
    });
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(io), svc)
        .await;
}

impl Receiver {
    /// A plain HTTP receiver answering `script` in order, then 200.
    pub async fn start(script: &[u16]) -> Receiver {
        Receiver::start_with(script, None).await
    }

    /// An HTTPS receiver (certificate for `localhost` from `ca`).
    pub async fn start_tls(script: &[u16], ca: &TestCa) -> Receiver {
        Receiver::start_with(script, Some(ca.acceptor())).await
    }

    async fn start_with(script: &[u16], tls: Option<tokio_rustls::TlsAcceptor>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = mpsc::unbounded_channel();
        let script: Script = Arc::new(Mutex::new(script.iter().copied().collect()));
        let s2 = script.clone();
        let is_tls = tls.is_some();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (tx, script, tls) = (tx.clone(), s2.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(s) = acceptor.accept(stream).await {
                                serve_conn(s, tx, script).await;
                            }
                        }
                        None => serve_conn(stream, tx, script).await,
                    }
                });
            }
        });
        Receiver {
            addr,
            tls: is_tls,
            rx,
            script,
        }
    }

    /// The URL of `path` here (`https://localhost:…` for TLS: the name in the certificate).
    pub fn url(&self, path: &str) -> String {
        if self.tls {
            format!("https://localhost:{}{path}", self.addr.port())
        } else {
            format!("http://{}{path}", self.addr)
        }
    }

    /// Answers the next requests with these statuses.
    pub fn script(&self, statuses: &[u16]) {
        self.script.lock().expect("script").extend(statuses);
    }

    /// The next request; fails the test if none comes within the deadline.
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(DEADLINE, self.rx.recv())
            .await
            .expect("a request within the deadline")
            .expect("the receiver runs")
    }

    /// A request that already arrived, if any (no waiting).
    pub fn try_next(&mut self) -> Option<Received> {
        self.rx.try_recv().ok()
    }
}

/// A private CA and a `localhost` server certificate it signed.
pub struct TestCa {
    ca_pem: String,
    leaf_der: Vec<u8>,
    leaf_key_der: Vec<u8>,
}

impl TestCa {
    pub fn new() -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("CA");
        let leaf_key = KeyPair::generate().expect("leaf key");
        let leaf = CertificateParams::new(vec!["localhost".to_string()])
            .expect("leaf params")
            .signed_by(&leaf_key, &ca, &ca_key)
            .expect("leaf");
        TestCa {
            ca_pem: ca.pem(),
            leaf_der: leaf.der().to_vec(),
            leaf_key_der: leaf_key.serialize_der(),
        }
    }

    /// Writes the CA certificate (PEM) for the plugin's `tls_ca_file`.
    pub fn write_ca(&self, path: &Path) {
        std::fs::write(path, &self.ca_pem).expect("CA file");
    }

    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(self.leaf_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key_der.clone())),
            )
            .expect("server certificate");
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}

impl Http {
    /// Creates a single purchase whose events go to `notify_url`; returns (id, client
    /// secret, the created payment).
    pub async fn create_notifying(
        &self,
        amount: u32,
        notify_url: &str,
    ) -> (String, String, serde_json::Value) {
        let (s, v) = self
            .merchant(
                "POST",
                "/v1/payments",
                Some(&serde_json::json!({"amount": amount, "currency": "EUR", "notify_url": notify_url})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let id = v["id"].as_str().expect("id").to_string();
        let secret = v["client_secret"].as_str().expect("secret").to_string();
        (id, secret, v)
    }
}

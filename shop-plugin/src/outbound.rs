//! Outbound HTTP: the POSTs the plugin makes itself (webhook deliveries to the shop's
//! notify URLs, batches to the clearing office). hyper-util's pooled client over HTTP or
//! HTTPS (rustls with the ring provider; the public web roots, plus the operator's own
//! CA file when the receiver has a private certificate).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, USER_AGENT};
use hyper::{Method, Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use thiserror::Error;

/// How much of a receiver's answer is read.
const MAX_ANSWER: usize = 64 * 1024;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("TLS CA file {path}: {message}")]
    CaFile { path: String, message: String },
    #[error("TLS set-up: {0}")]
    Tls(String),
}

/// Why a POST did not get a 2xx. `permanent` errors cannot go away by trying again.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct PostError {
    pub message: String,
    pub permanent: bool,
}

impl PostError {
    fn permanent(message: impl Into<String>) -> PostError {
        PostError {
            message: message.into(),
            permanent: true,
        }
    }

    fn transient(message: impl Into<String>) -> PostError {
        PostError {
            message: message.into(),
            permanent: false,
        }
    }
}

/// A pooled HTTP(S) client. Cloning shares the pool.
#[derive(Clone)]
pub struct Outbound {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl Outbound {
    /// A client trusting the public web roots and the certificates of `ca_file` (PEM).
    pub fn new(ca_file: Option<&Path>, timeout: Duration) -> Result<Outbound, ClientError> {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = ca_file {
            let ca_err = |message: String| ClientError::CaFile {
                path: path.display().to_string(),
                message,
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| ca_err(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ca_err(e.to_string()))?;
            if certs.is_empty() {
                return Err(ca_err("holds no PEM certificate".into()));
            }
            for c in certs {
                roots.add(c).map_err(|e| ca_err(e.to_string()))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Outbound {
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
        })
    }

    /// POSTs a JSON body; `Ok(status)` on a 2xx answer. Redirects are not followed (a
    /// signed delivery goes where the shop said, or fails).
    pub async fn post_json(
        &self,
        url: &str,
        body: Bytes,
        headers: &[(&'static str, String)],
    ) -> Result<u16, PostError> {
        let answer = self
            .exchange(Method::POST, url, Some(body), headers)
            .await?;
        if (200..300).contains(&answer.status) {
            Ok(answer.status)
        } else {
            Err(PostError::transient(format!("HTTP {}", answer.status)))
        }
    }

    /// One request (a JSON body when given) and the answer whatever its status, its body
    /// read up to 64 KiB (a longer or cut one reads as empty). Redirects are not followed.
    pub async fn exchange(
        &self,
        method: Method,
        url: &str,
        body: Option<Bytes>,
        headers: &[(&'static str, String)],
    ) -> Result<Answer, PostError> {
        let uri: Uri = url
            .parse()
            .map_err(|_| PostError::permanent("the URL is not valid"))?;
        match uri.scheme_str() {
            Some("http") | Some("https") if uri.host().is_some() => {}
            _ => return Err(PostError::permanent("the URL is not an http(s) URL")),
        }
        let mut req = Request::builder().method(method).uri(uri).header(
            USER_AGENT,
            concat!("purse-shop-plugin/", env!("CARGO_PKG_VERSION")),
        );
        if body.is_some() {
            req = req.header(CONTENT_TYPE, "application/json");
        }
        for (k, v) in headers {
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(v),
            ) else {
                return Err(PostError::permanent(format!("header {k} is not valid")));
            };
            req = req.header(name, value);
        }
        let req = req
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| PostError::permanent(e.to_string()))?;
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| PostError::transient(error_chain(&e)))?;
            let status = resp.status().as_u16();
            let content_type = resp
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            // Read the answer whole (so the connection can be reused), within the limit.
            let body = Limited::new(resp.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map(|b| b.to_bytes());
            Ok::<_, PostError>((status, content_type, body))
        };
        let (status, content_type, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| {
                PostError::transient(format!("no answer within {} s", self.timeout.as_secs_f32()))
            })??;
        Ok(Answer {
            status,
            content_type,
            // An answer too long (or cut) is no one's JSON: kept empty.
            body: body.unwrap_or_default(),
        })
    }
}

/// A receiver's answer.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Bytes,
}

/// An error and its causes on one line (hyper's outer errors say little alone).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

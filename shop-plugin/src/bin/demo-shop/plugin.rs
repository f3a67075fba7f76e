//! The demo shop's side of the merchant API, as a real shop's server calls it: Bearer API
//! key, and an `Idempotency-Key` (the order id) so that retrying a create after a lost
//! reply never makes a second payment.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use zeroize::Zeroizing;

/// How long one call may take, and how often a create is tried.
const TIMEOUT: Duration = Duration::from_secs(10);
const ATTEMPTS: u32 = 3;

/// What a call to the plugin came back with.
pub enum Reply {
    /// An HTTP answer: status and JSON body.
    Http(u16, Value),
    /// No answer (connection refused, timeout): worth retrying with the same key.
    Unreachable(String),
}

pub struct PluginClient {
    base: String,
    api_key: Zeroizing<String>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl PluginClient {
    pub fn new(base: &str, api_key: Zeroizing<String>) -> Result<PluginClient> {
        let base = base.trim_end_matches('/').to_string();
        if !base.starts_with("http://") {
            bail!("--plugin {base}: the demo shop reaches its plugin over http:// (on this machine or a private network)");
        }
        Ok(PluginClient {
            base,
            api_key,
            client: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(CONTENT_TYPE, "application/json")
            .header(AUTHORIZATION, format!("Bearer {}", self.api_key.as_str()));
        if let Some(k) = idempotency_key {
            req = req.header("idempotency-key", k);
        }
        let req = match req.body(Full::new(Bytes::from(body.to_string()))) {
            Ok(r) => r,
            Err(e) => return Reply::Unreachable(e.to_string()),
        };
        let exchange = async {
            let resp = self.client.request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let bytes = Limited::new(resp.into_body(), 1 << 20)
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>((
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            ))
        };
        match tokio::time::timeout(TIMEOUT, exchange).await {
            Ok(Ok((s, v))) => Reply::Http(s, v),
            Ok(Err(e)) => Reply::Unreachable(e),
            Err(_) => Reply::Unreachable(format!("no answer within {} s", TIMEOUT.as_secs())),
        }
    }

    /// Creates a payment for `order`. Retries lost replies and 5xx with the same
    /// Idempotency-Key: the plugin answers a retry with the first payment.
    pub async fn create_payment(&self, order: &str, request: &Value) -> Result<Reply> {
        let mut last = None;
        for attempt in 1..=ATTEMPTS {
            let r = self
                .call(Method::POST, "/v1/payments", request, Some(order))
                .await;
            match &r {
                Reply::Http(s, _) if *s < 500 => return Ok(r),
                Reply::Http(s, _) => {
                    tracing::warn!("creating the payment of {order}: HTTP {s} (attempt {attempt})")
                }
                Reply::Unreachable(e) => {
                    tracing::warn!("creating the payment of {order}: {e} (attempt {attempt})")
                }
            }
            last = Some(r);
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        }
        last.context("no attempt made")
    }

    pub async fn cancel(&self, payment_id: &str) -> Reply {
        self.call(
            Method::POST,
            &format!("/v1/payments/{payment_id}/cancel"),
            &serde_json::json!({}),
            None,
        )
        .await
    }
}

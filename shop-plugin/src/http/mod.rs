//! The HTTP service (hyper 1, HTTP/1.1): routing, request limits, JSON in and out, and
//! the error format (`{"error": {"code", "message"}}` with a 4xx/5xx status).
//!
//! Routes: the merchant API ([`merchant`], Bearer API key, server to server) and the
//! shopper API ([`shopper`], client secret, CORS for the shop's origins), plus
//! `GET /v1/checkout.js` and `GET /healthz`.

mod merchant;
mod shopper;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::engine::{ApiError, Engine};

/// The largest request body accepted (ours are small).
pub const MAX_BODY: usize = 64 * 1024;

/// What the handlers share.
pub struct App {
    pub engine: Engine,
    /// SHA-256 (hex) of each merchant API key.
    pub api_key_hashes: Vec<String>,
    /// Origins whose pages may call the shopper API (exact `scheme://host[:port]`).
    pub allowed_origins: Vec<String>,
    /// The script shops include (`GET /v1/checkout.js`).
    pub checkout_js: &'static str,
}

pub type Resp = Response<Full<Bytes>>;

pub fn json_response(status: u16, body: &Value) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

pub fn error_response(e: &ApiError) -> Resp {
    json_response(e.status, &e.body())
}

/// Reads a JSON body of at most [`MAX_BODY`] bytes.
pub async fn read_json(
    req: Request<Incoming>,
) -> Result<(hyper::http::request::Parts, Bytes, Value), ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|_| {
            ApiError::new(
                413,
                "body_too_large",
                format!("request bodies are limited to {MAX_BODY} bytes"),
            )
        })?
        .to_bytes();
    let value = if bytes.is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
        })?
    };
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the body must be a JSON object",
        ));
    }
    Ok((parts, bytes, value))
}

/// The path split into segments, without the empty ones.
fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

pub async fn route(app: Arc<App>, req: Request<Incoming>) -> Resp {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let segs = segments(&path);
    let r = match segs.as_slice() {
        ["healthz"] if method == Method::GET => {
            Ok(json_response(200, &serde_json::json!({"ok": true})))
        }
        ["v1", "checkout.js"] if method == Method::GET => Ok(checkout_js(&app)),
        ["v1", "payments", ..] => merchant::handle(&app, req, &segs[2..]).await,
        ["v1", "checkout", ..] => shopper::handle(&app, req, &segs[2..]).await,
        _ => Err(ApiError::not_found("route")),
    };
    r.unwrap_or_else(|e| error_response(&e))
}

fn checkout_js(app: &App) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from_static(app.checkout_js.as_bytes())));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-cache"));
    r
}

/// Serves the API. Each connection runs on its own task.
pub async fn serve(app: Arc<App>, listener: TcpListener) -> std::io::Result<()> {
    serve_with(listener, move |req| route(app.clone(), req)).await
}

/// Serves `handler` on every connection (HTTP/1.1). The plugin's API is one handler;
/// the demo shop is another, and the benchmark's trivial ceiling a third.
pub async fn serve_with<H, F>(listener: TcpListener, handler: H) -> std::io::Result<()>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = Resp> + Send + 'static,
{
    loop {
        // A failed accept (out of file descriptors, a connection reset before it was
        // accepted) must not end the service: log it, let connections close, go on.
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("accepting a connection: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let reply = handler(req);
                async move { Ok::<_, Infallible>(reply.await) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!("connection from {peer}: {e}");
            }
        });
    }
}

/// Binds and serves in the background; returns the bound address (port 0 picks one).
pub async fn spawn(app: Arc<App>, addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = serve(app, listener).await {
            tracing::error!("the HTTP listener failed: {e}");
        }
    });
    Ok(local)
}

//! The HTTP service: an axum [`Router`] (on hyper 1, HTTP/1.1) with tower-http layers,
//! served by [`server`]'s accept loop (connection limit, header/idle and body timeouts).
//!
//! Routes: the merchant API ([`merchant`], Bearer API key, server to server) and the
//! shopper API ([`shopper`], client secret, CORS for the shop's origins), plus
//! `GET /v1/checkout.js` and `GET /healthz`. Every error is `{"error": {"code",
//! "message"}}` with a 4xx/5xx status ([`reply`]), also those of the framework (404 of
//! an unknown path, 405 of a known path with another method, with `Allow`).

mod body;
mod create;
mod list;
mod merchant;
mod reply;
pub mod server;
mod shopper;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::Response;
use serde_json::Value;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::engine::{ApiError, Engine};

pub use body::{read_json, MAX_BODY};
pub use server::Limits;

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
    *r.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

pub fn error_response(e: &ApiError) -> Resp {
    json_response(e.status, &e.body())
}

/// The plugin's API as one axum router.
pub fn router(app: Arc<App>) -> Router {
    let service = Router::new()
        .route(
            "/healthz",
            get(|| async { json_response(200, &serde_json::json!({"ok": true})) }),
        )
        .route("/v1/checkout.js", get(checkout_js))
        .method_not_allowed_fallback(reply::method_not_allowed);
    Router::new()
        .merge(service)
        .merge(merchant::routes(app.clone()))
        .merge(shopper::routes(app.clone()))
        .fallback(reply::not_found)
        .layer(axum::middleware::from_fn(reply::json_errors))
        .layer(TraceLayer::new_for_http())
        .with_state(app)
}

async fn checkout_js(axum::extract::State(app): axum::extract::State<Arc<App>>) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from_static(app.checkout_js.as_bytes())));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-cache"));
    r
}

/// Serves the API with the default [`Limits`].
pub async fn serve(app: Arc<App>, listener: TcpListener) -> std::io::Result<()> {
    server::serve_router(listener, Limits::default(), router(app)).await
}

/// Serves `handler` on every connection (HTTP/1.1) under the default [`Limits`]: the
/// demo shop's own routes, and the benchmark's trivial ceiling.
pub async fn serve_with<H, F>(listener: TcpListener, handler: H) -> std::io::Result<()>
where
    H: Fn(hyper::Request<hyper::body::Incoming>) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = Resp> + Send + 'static,
{
    server::serve_fn(listener, Limits::default(), handler).await
}

/// Binds and serves in the background; returns the bound address (port 0 picks one).
pub async fn spawn(app: Arc<App>, addr: SocketAddr) -> std::io::Result<SocketAddr> {
    spawn_with(app, addr, Limits::default()).await
}

/// [`spawn`] with other limits (tests of slow clients shorten the timeouts).
pub async fn spawn_with(
    app: Arc<App>,
    addr: SocketAddr,
    limits: Limits,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = server::serve_router(listener, limits, router(app)).await {
            tracing::error!("the HTTP listener failed: {e}");
        }
    });
    Ok(local)
}

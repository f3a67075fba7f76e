//! The shop plugin's side of the shared accept loop ([`http_serve`]): its limits, and
//! serving until the process ends.

use std::future::Future;

use axum::Router;
use hyper::body::{Body, Bytes, Incoming};
use hyper::{Request, Response};
use tokio::net::TcpListener;

pub use http_serve::{Limits, HEADER_READ_TIMEOUT, MAX_CONNECTIONS};

/// Serves an axum router.
pub async fn serve_router(
    listener: TcpListener,
    limits: Limits,
    router: Router,
) -> std::io::Result<()> {
    http_serve::serve_router(listener, router, limits, std::future::pending()).await;
    Ok(())
}

/// Serves `handler` on every connection, within `limits`.
pub async fn serve_fn<H, F, B>(
    listener: TcpListener,
    limits: Limits,
    handler: H,
) -> std::io::Result<()>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    http_serve::serve(listener, handler, limits, std::future::pending()).await;
    Ok(())
}

//! The accept loop: at most [`Limits::max_connections`] connections at once (a semaphore
//! taken before `accept`, so the kernel's backlog holds the rest), each served by hyper's
//! HTTP/1.1 connection with a timer, so its header read timeout holds. In hyper 1 that
//! timer starts whenever the connection waits for a request head, also between requests
//! of a kept-alive connection: it is the idle timeout as well.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::{Body, Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// What one client may hold of the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// From the moment a connection waits for a request until its head is complete
    /// (a half-sent head, or an idle kept-alive connection, is closed then).
    pub header_read_timeout: Duration,
}

/// Enough for many shops' pages at once, and far below the usual descriptor limits.
pub const MAX_CONNECTIONS: usize = 4096;
/// A browser or a shop's server sends a request head at once; 10 s is generous.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: MAX_CONNECTIONS,
            header_read_timeout: HEADER_READ_TIMEOUT,
        }
    }
}

/// Serves an axum router.
pub async fn serve_router(
    listener: TcpListener,
    limits: Limits,
    router: Router,
) -> std::io::Result<()> {
    serve_fn(listener, limits, move |req: Request<Incoming>| {
        let router = router.clone();
        async move {
            match router.oneshot(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            }
        }
    })
    .await
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
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return Ok(()); // the semaphore is never closed
        };
        // A failed accept (out of file descriptors, a connection reset before it was
        // accepted) must not end the service: log it, let connections close, go on.
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
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
            let result = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .serve_connection(TokioIo::new(stream), svc)
                .await;
            if let Err(e) = result {
                tracing::debug!("connection from {peer}: {e}");
            }
            drop(permit);
        });
    }
}

//! The accept loop both HTTP services use (the shop plugin and the clearing office).
//!
//! It owns what one client may hold of a server: at most [`Limits::max_connections`]
//! connections at once (a semaphore taken before `accept`, so the kernel's backlog holds
//! the rest), the TLS handshake (when there is one) and then each request head within
//! [`Limits::header_read_timeout`]. In hyper 1 the header timer starts whenever a
//! connection waits for a request head, also between requests of a kept-alive
//! connection: it is the idle timeout as well. Routing is the caller's (axum).

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
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// Enough for many shops' pages at once, and far below the usual descriptor limits.
pub const MAX_CONNECTIONS: usize = 4096;
/// A browser or a shop's server sends a request head at once; 10 s is generous.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What one client may hold of the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// From the moment a connection waits for a request until its head is complete
    /// (a half-sent head, or an idle kept-alive connection, is closed then). A TLS
    /// handshake gets the same time: it stands before the first head.
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: MAX_CONNECTIONS,
            header_read_timeout: HEADER_READ_TIMEOUT,
        }
    }
}

/// A bound TCP listener, with TLS or without.
pub struct Listener {
    pub tcp: TcpListener,
    pub tls: Option<TlsAcceptor>,
}

impl From<TcpListener> for Listener {
    fn from(tcp: TcpListener) -> Listener {
        Listener { tcp, tls: None }
    }
}

/// Serves an axum router until `shutdown` completes.
pub async fn serve_router(
    listener: impl Into<Listener>,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let handler = move |req: Request<Incoming>| {
        let router = router.clone();
        async move {
            match router.oneshot(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            }
        }
    };
    serve(listener, handler, limits, shutdown).await
}

/// Serves `handler` on every connection within `limits`, until `shutdown` completes
/// (then no new connection is accepted; those already open finish on their own).
pub async fn serve<H, F, B>(
    listener: impl Into<Listener>,
    handler: H,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Listener { tcp, tls } = listener.into();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => return,
            a = accept(&tcp, &slots) => a,
        };
        let Some((permit, stream, peer)) = accepted else {
            continue;
        };
        let handler = handler.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => connection(stream, handler, limits).await,
                Some(acceptor) => {
                    let handshake = acceptor.accept(stream);
                    match tokio::time::timeout(limits.header_read_timeout, handshake).await {
                        Ok(Ok(s)) => connection(s, handler, limits).await,
                        Ok(Err(e)) => tracing::debug!("TLS handshake with {peer}: {e}"),
                        Err(_) => tracing::debug!("TLS handshake with {peer} timed out"),
                    }
                }
            }
            drop(permit);
        });
    }
}

/// A slot, then a connection; `None` after a failed accept.
async fn accept(
    tcp: &TcpListener,
    slots: &Arc<Semaphore>,
) -> Option<(
    tokio::sync::OwnedSemaphorePermit,
    tokio::net::TcpStream,
    std::net::SocketAddr,
)> {
    // The semaphore is never closed.
    let permit = slots.clone().acquire_owned().await.ok()?;
    match tcp.accept().await {
        Ok((stream, peer)) => {
            let _ = stream.set_nodelay(true);
            Some((permit, stream, peer))
        }
        Err(e) => {
            // Out of file descriptors, or a connection reset before it was accepted:
            // that must not end the service. Log it, let connections close, go on.
            tracing::warn!("accepting a connection: {e}");
            drop(permit);
            tokio::time::sleep(Duration::from_millis(10)).await;
            None
        }
    }
}

async fn connection<S, H, F, B>(stream: S, handler: H, limits: Limits)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
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
        tracing::debug!("connection: {e}");
    }
}

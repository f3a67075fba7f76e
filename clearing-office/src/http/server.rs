//! The office's side of the shared accept loop ([`http_serve`]): its TLS configuration
//! from PEM files and its limits (at most [`MAX_CONNECTIONS`] connections at once; the
//! TLS handshake and each request head within [`HEADER_READ_TIMEOUT`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use zeroize::Zeroizing;

pub const MAX_CONNECTIONS: usize = 1024;
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A rustls server configuration from PEM files (the key file must be 0600).
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor> {
    let certs = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not a PEM certificate chain", cert.display()))?;
    let key_pem = Zeroizing::new(secure_files::read_private(key)?);
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .with_context(|| format!("{} is not a PEM private key", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS certificate and key do not fit together")?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `router` on every connection; with `tls`, over TLS; until the process ends.
pub async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, router: Router) {
    let limits = http_serve::Limits {
        max_connections: MAX_CONNECTIONS,
        header_read_timeout: HEADER_READ_TIMEOUT,
    };
    let listener = http_serve::Listener { tcp: listener, tls };
    http_serve::serve_router(listener, router, limits, std::future::pending()).await
}

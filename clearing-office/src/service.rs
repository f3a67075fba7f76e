//! `serve`: the configuration, keys and database wired into the HTTP service.

use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::db::Db;
use crate::http::{self, App};
use crate::intake::{spool, Intake};
use crate::keys;

/// Opens everything `config` names, binds, prints `listening on ADDR` to stderr and
/// serves until the process ends.
pub async fn serve(config: Config) -> Result<()> {
    let issuer = keys::load_issuer_keys(&config.issuer_keys)?;
    let hotlist_key = keys::load_hotlist_key(&config.hotlist_key)?;
    let tls = match &config.tls {
        Some(t) => Some(http::server::tls_acceptor(&t.cert, &t.key)?),
        None => None,
    };
    let spool_dir = spool::dir(config.spool_dir.as_deref());
    if config.spool_dir.is_some() {
        spool::clean(&spool_dir);
    }
    let db = Arc::new(Db::open(&config.database).await?);
    let app = Arc::new(App {
        db: db.clone(),
        intake: Intake {
            db,
            keys: Arc::new(issuer),
        },
        operator_token_sha256: config.operator_token_sha256.clone(),
        hotlist_key,
        spool_dir,
        max_batch_bytes: config.max_batch_bytes,
    });
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    eprintln!(
        "listening on {addr} ({})",
        if tls.is_some() { "https" } else { "http" }
    );
    http::server::serve(listener, tls, http::router(app)).await;
    Ok(())
}

//! `serve`: takes the instance lock (waiting while a `settle` holds it), opens the
//! engine, and runs the HTTP API, the webhook worker, the admin socket and the sweep of
//! expired payments.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use shop_plugin::admin::{self, Admin};
use shop_plugin::engine::{Clock, SystemClock};
use shop_plugin::files::FileLock;
use shop_plugin::http;
use shop_plugin::outbound::Outbound;
use shop_plugin::webhooks::deliver::{self, Worker};
use shop_plugin::webhooks::WebhookSecret;

use super::{load_config, open_app, settler};

pub async fn run(config_path: &Path) -> Result<()> {
    let config = load_config(config_path)?;
    let lock_path = config.lock_path();
    let _lock = match FileLock::try_exclusive(&lock_path)
        .with_context(|| format!("lock file {}", lock_path.display()))?
    {
        Some(l) => l,
        None => {
            tracing::info!(
                "waiting for {}: another shop-plugin process runs this database's SAM \
                 (a settle run, or another serve)",
                lock_path.display()
            );
            let p = lock_path.clone();
            tokio::task::spawn_blocking(move || FileLock::exclusive(&p))
                .await?
                .with_context(|| format!("lock file {}", lock_path.display()))?
        }
    };
    let secret = WebhookSecret::load(&config.webhooks.secret_file)?;
    let client = Outbound::new(
        config.tls_ca_file.as_deref(),
        Duration::from_secs(config.webhooks.timeout_secs),
    )?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let app = open_app(&config, clock.clone())?;

    if let Some(source) = app.engine.hotlist_source() {
        source.spawn(app.clone());
    }
    let admin_listener = admin::bind(&config.admin_socket())?;
    tokio::spawn(admin::serve(
        Arc::new(Admin::new(app.clone(), settler(&config)?)),
        admin_listener,
    ));
    let _webhooks = deliver::spawn(Worker {
        store: app.engine.store().clone(),
        clock,
        secret,
        backoff: config.backoff(),
        client,
        wake: app.engine.outbox_wake(),
    });
    let sweeper = app.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            every.tick().await;
            if let Err(e) = sweeper.engine.sweep_expired().await {
                tracing::warn!("expiring payments: {e}");
            }
        }
    });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    // Logged last: whoever waits for this line may use every part of the service.
    tracing::info!("shop-plugin listening on {}", listener.local_addr()?);
    http::serve(app, listener).await?;
    Ok(())
}

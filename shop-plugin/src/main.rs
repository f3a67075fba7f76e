//! `shop-plugin`: the payment service a shop runs beside its checkout.
//!
//! `serve` runs the HTTP API; the other subcommands are the operator's.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use purse::keys::SamKeys;
use shop_plugin::config::Config;
use shop_plugin::engine::{Engine, Settings, SystemClock};
use shop_plugin::http::{self, App};
use shop_plugin::store::Store;

#[derive(Parser)]
#[command(version, about = "The purse payment service beside a shop's checkout")]
struct Cli {
    /// The configuration file.
    #[arg(long, short, global = true, default_value = "shop-plugin.toml")]
    config: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the merchant and shopper API.
    Serve,
}

fn read_private(path: &std::path::Path) -> Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .permissions()
        .mode();
    anyhow::ensure!(
        mode & 0o077 == 0,
        "{} is accessible by group or others (mode {:o}); it holds keys: chmod 600 it",
        path.display(),
        mode & 0o777
    );
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

pub async fn open_app(config: &Config) -> Result<Arc<App>> {
    let keys = SamKeys::from_json(&read_private(&config.sam_keys)?)
        .with_context(|| format!("SAM keys {}", config.sam_keys.display()))?;
    let store = Store::open(&config.database)?;
    let engine = Engine::open(
        store,
        keys,
        Arc::new(SystemClock),
        Settings {
            secret_ttl_secs: config.client_secret_ttl_secs,
        },
    )?;
    Ok(Arc::new(App {
        engine,
        api_key_hashes: config.merchant.api_key_sha256.clone(),
        allowed_origins: config.allowed_origins.clone(),
        checkout_js: shop_plugin::CHECKOUT_JS,
    }))
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        match cli.cmd {
            Cmd::Serve => {
                let config = Config::load(&cli.config)?;
                let app = open_app(&config).await?;
                let listener = tokio::net::TcpListener::bind(config.listen)
                    .await
                    .with_context(|| format!("binding {}", config.listen))?;
                tracing::info!("shop-plugin listening on {}", listener.local_addr()?);
                let sweeper = app.clone();
                tokio::spawn(async move {
                    let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
                    loop {
                        every.tick().await;
                        if let Err(e) = sweeper.engine.sweep_expired().await {
                            tracing::warn!("expiring payments: {e}");
                        }
                    }
                });
                http::serve(app, listener).await?;
                Ok(())
            }
        }
    })
}

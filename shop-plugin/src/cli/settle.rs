//! `settle`: one settlement run, in this process when no server holds the database's
//! SAM, otherwise in the server through its admin socket.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use shop_plugin::admin::{self, AdminError, Request};
use shop_plugin::config::Config;
use shop_plugin::engine::SystemClock;
use shop_plugin::files::FileLock;
use shop_plugin::settlement::Report;

use super::{load_config, open_app, settler};

/// How long to keep trying when the lock is held but no server answers (a server that
/// is starting, or another `settle` that is about to finish).
const PATIENCE: Duration = Duration::from_secs(15);

pub async fn run(config_path: &Path, force: bool) -> Result<ExitCode> {
    let config = load_config(config_path)?;
    let report = settle(&config, force).await?;
    for line in report.lines() {
        println!("{line}");
    }
    Ok(
        if report.post_error.is_some() || !report.rejected.is_empty() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        },
    )
}

async fn settle(config: &Config, force: bool) -> Result<Report> {
    let lock_path = config.lock_path();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(_lock) = FileLock::try_exclusive(&lock_path)
            .with_context(|| format!("lock file {}", lock_path.display()))?
        {
            let app = open_app(config, Arc::new(SystemClock))?;
            return Ok(settler(config)?.run(&app.engine, force).await?);
        }
        match admin::call(&config.admin_socket(), &Request::Settle { force }).await {
            Ok(result) => {
                return serde_json::from_value(result)
                    .context("the server's settlement report is not valid")
            }
            Err(e) if not_listening(&e) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "another process holds {} (a running serve?) but settling through \
                         its admin socket failed",
                        lock_path.display()
                    )
                })
            }
        }
    }
}

/// No server behind the socket (yet): worth trying again.
fn not_listening(e: &AdminError) -> bool {
    matches!(e, AdminError::Io { source, .. } if matches!(
        source.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
    ))
}

//! `settle`: one settlement run, in this process when no server holds the database's
//! SAM, otherwise in the server through its admin socket.

use std::future::Future;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use shop_plugin::admin::{self, AdminError, Place, Request};
use shop_plugin::config::Config;
use shop_plugin::engine::SystemClock;
use shop_plugin::http::App;
use shop_plugin::settlement::{Report, Settler};

use super::{load_config, open_app, settler};

pub async fn run(config_path: &Path, force: bool) -> Result<ExitCode> {
    let config = load_config(config_path)?;
    let report = settle(&config, force).await?;
    for line in report.lines() {
        println!("{line}");
    }
    Ok(if report.all_delivered() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

async fn settle(config: &Config, force: bool) -> Result<Report> {
    where_the_sam_is(
        config,
        &Request::Settle { force },
        |app, settler| async move { Ok(settler.run(&app.engine, force).await?) },
    )
    .await
}

/// Runs `req` where the SAM is: as `here` in this process when it can take the instance
/// lock, else in the running server through its admin socket (its result read as `T`).
pub(super) async fn where_the_sam_is<T, F, Fut>(
    config: &Config,
    req: &Request,
    here: F,
) -> Result<T>
where
    T: DeserializeOwned,
    F: FnOnce(Arc<App>, Settler) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let lock_path = config.lock_path();
    let place = match admin::here_or_server(&lock_path, &config.admin_socket(), req).await {
        Ok(place) => place,
        // The server answered: its refusal (`code: message`) is the whole story.
        Err(e @ AdminError::Refused(_)) => return Err(e.into()),
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!(
                "another process holds {} (a running serve?) but its admin socket failed",
                lock_path.display()
            )))
        }
    };
    match place {
        Place::Here(_lock) => {
            here(open_app(config, Arc::new(SystemClock))?, settler(config)?).await
        }
        Place::Server(result) => {
            serde_json::from_value(result).context("the server's answer is not valid")
        }
    }
}

//! `events list` and `events retry`: the webhook outbox for the operator. A retry is a
//! database write, so it works beside a running server, which is then woken through its
//! admin socket to send at once.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Result};
use serde_json::json;
use shop_plugin::admin::{self, Request};
use shop_plugin::engine::{Clock, SystemClock};
use shop_plugin::files::FileLock;
use shop_plugin::webhooks::outbox::{self, EventRow};

use super::{load_config, open_store, time};

pub async fn list(config_path: &Path, failed: bool, limit: u32, json: bool) -> Result<ExitCode> {
    let store = open_store(&load_config(config_path)?)?;
    let limit = limit.clamp(1, 10_000);
    let rows = store.read(move |c| outbox::list(c, failed, limit)).await?;
    if json {
        for e in &rows {
            println!("{}", row_json(e));
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<28} {:<22} {:<28} {:<9} {:>8} {:<20} last error",
        "id", "type", "payment", "state", "attempts", "next attempt"
    );
    for e in &rows {
        let next = if e.state() == "pending" {
            time(e.next_attempt_at)
        } else {
            "-".into()
        };
        println!(
            "{:<28} {:<22} {:<28} {:<9} {:>8} {:<20} {}",
            e.id,
            e.kind,
            e.payment_id,
            e.state(),
            e.attempts,
            next,
            e.last_error.as_deref().unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn row_json(e: &EventRow) -> serde_json::Value {
    json!({
        "id": e.id, "type": e.kind, "payment": e.payment_id, "state": e.state(),
        "created": e.created_at, "attempts": e.attempts, "next_attempt_at": e.next_attempt_at,
        "delivered_at": e.delivered_at, "failed_at": e.failed_at, "last_error": e.last_error,
    })
}

pub async fn retry(config_path: &Path, ids: Vec<String>, all_failed: bool) -> Result<ExitCode> {
    let config = load_config(config_path)?;
    let store = open_store(&config)?;
    let now = SystemClock.now();
    if all_failed {
        let n = store.read(|c| outbox::list(c, true, u32::MAX)).await?.len();
        store.commit(vec![outbox::requeue_failed(now)]).await?;
        println!("re-queued {n} failed event(s)");
    } else {
        for id in &ids {
            let id2 = id.clone();
            let Some(e) = store.read(move |c| outbox::get(c, &id2)).await? else {
                bail!("no event {id}");
            };
            match e.state() {
                "delivered" => bail!("event {id} was delivered already"),
                "no_url" => bail!("event {id} has no notify URL: there is nothing to send"),
                _ => {}
            }
        }
        store
            .commit(
                ids.iter()
                    .map(|id| outbox::requeue(id.clone(), now))
                    .collect(),
            )
            .await?;
        for id in &ids {
            println!("re-queued {id}");
        }
    }
    // A running server sends them now; otherwise they go when `serve` starts (a server
    // that cannot be told finds them within a minute).
    if FileLock::try_exclusive(&config.lock_path())?.is_none() {
        match admin::call(&config.admin_socket(), &Request::WakeWebhooks {}).await {
            Ok(_) => println!("the running server was told to send them now"),
            Err(e) => println!("the server was not told ({e}); it sends them within a minute"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

//! `payments list` and `totals`: what the database says, read beside a running server.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;
use shop_plugin::payment::Status;
use shop_plugin::store::rows::{self, ListFilter};

use super::{load_config, open_store, time};

pub async fn payments(
    config_path: &Path,
    status: Option<Status>,
    limit: u32,
    json: bool,
) -> Result<ExitCode> {
    let store = open_store(&load_config(config_path)?)?;
    let f = ListFilter {
        status,
        limit: limit.clamp(1, 10_000),
        ..ListFilter::default()
    };
    let list = store.read(move |c| rows::list_payments(c, &f)).await?;
    if json {
        for p in &list {
            println!("{}", p.merchant_view());
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<28} {:<11} {:<10} {:>10} {:<4} {:>13} {:<20} order_reference",
        "id", "status", "mode", "amount", "cur", "charged", "created"
    );
    for p in &list {
        let v = p.merchant_view();
        println!(
            "{:<28} {:<11} {:<10} {:>10} {:<4} {:>13} {:<20} {}",
            p.id,
            p.status.as_str(),
            p.mode_name(),
            p.amount().0,
            v["currency"].as_str().unwrap_or(""),
            format!("{}x={}", p.units.0, p.total.0),
            time(p.created_at),
            p.order_ref.as_deref().unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn totals(config_path: &Path, json: bool) -> Result<ExitCode> {
    let store = open_store(&load_config(config_path)?)?;
    let (states, unresolved, last_close) = store
        .read(|c| {
            let states = rows::open_totals(c)?;
            let unresolved = rows::unresolved(c)?;
            let last: Option<(i64, i64)> = c
                .query_row(
                    "SELECT close_seq, created_at FROM batches ORDER BY close_seq DESC LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .ok();
            Ok((states, unresolved, last))
        })
        .await?;
    if json {
        let v = json!({
            "last_close": last_close.map(|(s, t)| json!({"close_seq": s, "created_at": t})),
            "states": states.iter().map(|(s, n, sum)| json!({"state": s, "count": n, "total": sum})).collect::<Vec<_>>(),
            "unresolved": unresolved.iter().map(|u| json!({"sam_tx_seq": u.sam_tx_seq, "card_id": u.card_id, "payment": u.payment_id})).collect::<Vec<_>>(),
        });
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    match last_close {
        Some((s, t)) => println!("open period since close {s} at {}", time(t)),
        None => println!("open period (no period closed yet)"),
    }
    println!("{:<10} {:>7} {:>15}", "state", "count", "confirmed total");
    for (state, n, sum) in &states {
        println!("{state:<10} {n:>7} {sum:>15}");
    }
    println!("(amounts in minor units; completed transactions go into the next batch)");
    println!("unresolved: {}", unresolved.len());
    for u in &unresolved {
        println!(
            "  sam_tx_seq {} card {} payment {}",
            u.sam_tx_seq, u.card_id, u.payment_id
        );
    }
    Ok(ExitCode::SUCCESS)
}

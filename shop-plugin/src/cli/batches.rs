//! `batches list` (each batch and the clearing office's decision: accepted, rejected
//! with why, not yet sent) and `batches correct <close_seq>` (close a rejected period
//! again without the records the office refused, then upload).

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use shop_plugin::engine::SystemClock;
use shop_plugin::files::FileLock;
use shop_plugin::settlement::batches::{self, BatchRow};
use shop_plugin::settlement::office::Decision;

use super::{load_config, open_app, open_store, settler, time};

/// The state of a batch in words.
fn state(r: &BatchRow) -> (String, Vec<String>) {
    let decision = r
        .answer
        .as_deref()
        .and_then(|a| serde_json::from_str::<Decision>(a).ok());
    match (r.posted_at, r.decision.as_deref()) {
        (Some(at), Some("accepted")) => (format!("accepted {}", time(at)), vec![]),
        (Some(at), Some(_)) => (
            format!("rejected {}", time(at)),
            decision.map(|d| d.why()).unwrap_or_default(),
        ),
        (Some(at), None) => (
            format!("posted {} (no decision recorded)", time(at)),
            vec![],
        ),
        (None, _) => {
            let tries = match (&r.last_error, r.attempts) {
                (Some(e), n) => format!(" ({n} tries, last: {e})"),
                _ => String::new(),
            };
            (format!("not yet sent{tries}"), vec![])
        }
    }
}

pub async fn list(config_path: &Path, json: bool) -> Result<ExitCode> {
    let config = load_config(config_path)?;
    let store = open_store(&config)?;
    let rows = store.read(batches::list).await?;
    for r in &rows {
        let (s, why) = state(r);
        if json {
            let answer: serde_json::Value = r
                .answer
                .as_deref()
                .and_then(|a| serde_json::from_str(a).ok())
                .unwrap_or(serde_json::Value::Null);
            println!(
                "{}",
                serde_json::json!({"close_seq": r.close_seq, "closed_at": time(r.created_at),
                    "state": s, "decision": r.decision, "answer": answer, "file": r.file})
            );
        } else {
            println!("{:>6}  closed {}  {s}", r.close_seq, time(r.created_at));
            for w in why {
                println!("        {w}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Corrects in this process (the SAM is needed): refused while a server holds it.
pub async fn correct(config_path: &Path, close_seq: u32) -> Result<ExitCode> {
    let config = load_config(config_path)?;
    let lock_path = config.lock_path();
    let Some(_lock) = FileLock::try_exclusive(&lock_path)
        .with_context(|| format!("lock file {}", lock_path.display()))?
    else {
        anyhow::bail!(
            "another process holds {} (a running serve?): stop it to correct a batch, or set \
             settlement.auto_correct so that its settlement runs correct by policy",
            lock_path.display()
        );
    };
    let app = open_app(&config, Arc::new(SystemClock))?;
    let s = settler(&config)?;
    let c = s.correct(&app.engine, close_seq).await?;
    println!(
        "corrected batch {}: closed again without SAM_TxSeq {:?} (their payments failed: \
         clearing_refused)",
        c.close_seq, c.excluded
    );
    let report = s.run(&app.engine, false).await?;
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

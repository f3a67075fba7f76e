//! `batches list` (each SAM's batches and the clearing office's decision: accepted,
//! rejected with why, not yet sent) and `batches correct <close_seq> [--sam <SAM_ID>]`
//! (close a rejected period
//! again without the records the office refused, then upload; in the running server
//! when one holds the SAM).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use shop_plugin::admin::Request;
use shop_plugin::settlement::batches::{self, BatchRow};
use shop_plugin::settlement::office::Decision;
use shop_plugin::settlement::Correction;

use super::settle::where_the_sam_is;
use super::{load_config, open_store, time};

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
                serde_json::json!({"sam_id": r.sam_id, "close_seq": r.close_seq,
                    "closed_at": time(r.created_at),
                    "state": s, "decision": r.decision, "answer": answer, "file": r.file})
            );
        } else {
            println!(
                "{}  {:>6}  closed {}  {s}",
                r.sam_id,
                r.close_seq,
                time(r.created_at)
            );
            for w in why {
                println!("        {w}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Corrects in this process when no server holds the SAM, otherwise in the server
/// through its admin socket; either way a settlement run then uploads the batch.
pub async fn correct(
    config_path: &Path,
    close_seq: u32,
    sam_id: Option<String>,
) -> Result<ExitCode> {
    let config = load_config(config_path)?;
    let req = Request::Correct {
        close_seq,
        sam_id: sam_id.clone(),
    };
    let c: Correction = where_the_sam_is(&config, &req, |app, settler| async move {
        Ok(settler
            .correct_and_run(&app.engine, sam_id.as_deref(), close_seq)
            .await?)
    })
    .await?;
    for line in c.lines() {
        println!("{line}");
    }
    Ok(if c.report.all_delivered() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

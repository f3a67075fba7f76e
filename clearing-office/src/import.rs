//! `clearing-office import`: the state of `purse-issuer clear` (`purse-clearing-state/1`)
//! into the database in one transaction: each accepted batch as an accepted batch row
//! (its body unknown: a later upload of the same close_seq is a conflict), each SAM's
//! last close_seq, and every settled (CardID, NT) as a record of batch 0, so the unique
//! key refuses it again.

use std::path::Path;

use anyhow::{Context, Result};
use purse::clearing::ClearingState;
use purse::settlement::rfc3339;

use crate::db::batches::{insert_batch, set_response, BatchRow};
use crate::db::{id64, Db};

/// What was imported: batches, SAMs, (CardID, NT) pairs.
pub async fn import(db: &Db, state_path: &Path) -> Result<(usize, usize, usize)> {
    let text = secure_files::read_private(state_path)?;
    let state = ClearingState::from_json(&text)
        .with_context(|| format!("{} is not a clearing-state file", state_path.display()))?;
    let _w = db.write_lock().await;
    let mut txn = db.begin().await?;
    let day = rfc3339(crate::db::now().max(0) as u64)[..10].to_string();
    let mut rows: Vec<BatchRow> = state
        .batches
        .iter()
        .map(|b| BatchRow {
            sam_id: b.sam_id,
            close_seq: b.close_seq,
            body_sha256: "imported".into(),
            decision: "accepted",
            merchant_id: String::new(),
            currency: b.currency.numeric(),
            tx_count: i64::from(b.count),
            gross: i64::try_from(b.sum.0).unwrap_or(i64::MAX),
            problem_count: 0,
            received_at: crate::db::now(),
            day: day.clone(),
        })
        .collect();
    // A SAM whose last close_seq has no audit entry (the vectors' shape) still needs it.
    for (sam, last) in &state.last_close_seq {
        if !rows
            .iter()
            .any(|r| r.sam_id == *sam && r.close_seq == *last)
        {
            rows.push(BatchRow {
                sam_id: *sam,
                close_seq: *last,
                body_sha256: "imported".into(),
                decision: "accepted",
                merchant_id: String::new(),
                currency: 0,
                tx_count: 0,
                gross: 0,
                problem_count: 0,
                received_at: crate::db::now(),
                day: day.clone(),
            });
        }
    }
    for r in &rows {
        let id = insert_batch(&mut txn, r).await?;
        let response = serde_json::json!({"imported": true, "sam_id": r.sam_id.to_hex(), "close_seq": r.close_seq.0});
        set_response(&mut txn, id, r, &response.to_string()).await?;
    }
    for (card, nt) in &state.accepted {
        sqlx::query(
            "INSERT INTO transactions (card_id, nt, batch_id, sam_id, idx, kv, sam_tx_seq, datetime,
                 mode, unit_amount, units, total, balance_after)
             VALUES ($1, $2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) ON CONFLICT (card_id, nt) DO NOTHING",
        )
        .bind(id64(card.0))
        .bind(i64::from(nt.0))
        .execute(&mut *txn)
        .await?;
    }
    txn.commit().await.context("committing the import")?;
    Ok((rows.len(), state.last_close_seq.len(), state.accepted.len()))
}

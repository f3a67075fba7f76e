//! The uploads of one SAM's batches to the clearing office: in close_seq order, each
//! tried a bounded number of times within a run (the delay doubling) until the office
//! decides; a rejection is corrected by policy (once per run) or stops that SAM's uploads
//! until the operator corrects it.

use bytes::Bytes;

use super::office::{OfficeLink, Outcome};
use super::{batches, load, stored_decision, BatchId, Rejected, Report, SettleError, Settler};
use crate::engine::Engine;

impl Settler {
    /// Uploads every batch of SAM `sam` not yet delivered, in order, stopping at the
    /// first one without an acceptance (see the module's rule).
    pub(super) async fn upload(
        &self,
        engine: &Engine,
        link: &OfficeLink,
        sam: &str,
        report: &mut Report,
    ) -> Result<(), SettleError> {
        let store = engine.store().clone();
        let mut corrected_now = false;
        'rows: loop {
            let rows = store.read(batches::list).await?;
            for row in rows.iter().filter(|r| r.sam_id == sam) {
                match (row.posted_at, row.decision.as_deref()) {
                    // Accepted, or posted before decisions were recorded.
                    (Some(_), Some("accepted") | None) => continue,
                    (Some(_), Some(_)) => {
                        let decision = stored_decision(row);
                        let why = decision.as_ref().map(|d| d.why()).unwrap_or_default();
                        match decision.and_then(|d| d.refused_records()) {
                            Some(_) if self.auto_correct && !corrected_now => {
                                report.corrected.push(
                                    self.correct(engine, Some(&row.sam_id), row.close_seq)
                                        .await?,
                                );
                                // Once per run: a correction rejected again waits for
                                // the operator.
                                corrected_now = true;
                                continue 'rows;
                            }
                            _ => {
                                report.rejected.push(Rejected {
                                    sam_id: row.sam_id.clone(),
                                    close_seq: row.close_seq,
                                    why,
                                });
                                return Ok(());
                            }
                        }
                    }
                    (None, _) => {}
                }
                let (batch, bytes) = load(row)?;
                let sam_id = batch.sam_id.to_hex();
                let mut delay = link.first_delay;
                let mut tries = 0;
                let outcome = loop {
                    tries += 1;
                    let o = link
                        .upload(
                            &self.client,
                            &sam_id,
                            row.close_seq,
                            Bytes::from(bytes.clone()),
                        )
                        .await;
                    match o {
                        Outcome::Retry(e) if tries < link.attempts.max(1) => {
                            tracing::warn!(
                                "batch {}: no decision from the clearing office ({e}): \
                                 trying again in {:?}",
                                row.close_seq,
                                delay
                            );
                            store
                                .commit(vec![batches::set_failed_try(
                                    row.sam_id.clone(),
                                    row.close_seq,
                                    e,
                                )])
                                .await?;
                            tokio::time::sleep(delay).await;
                            delay = delay.saturating_mul(2);
                        }
                        other => break other,
                    }
                };
                match outcome {
                    Outcome::Decided(d, raw) => {
                        let accepted = d.accepted();
                        let word = if accepted { "accepted" } else { "rejected" };
                        tracing::info!("batch {}: {word} by the clearing office", row.close_seq);
                        store
                            .commit(vec![batches::set_decision(
                                row.sam_id.clone(),
                                row.close_seq,
                                engine.now(),
                                word,
                                raw,
                            )])
                            .await?;
                        if accepted {
                            report.posted.push(BatchId {
                                sam_id: row.sam_id.clone(),
                                close_seq: row.close_seq,
                            });
                        } else {
                            // Decide again on the stored row: correction or stop.
                            continue 'rows;
                        }
                    }
                    Outcome::Retry(e) | Outcome::Refused(e) => {
                        store
                            .commit(vec![batches::set_failed_try(
                                row.sam_id.clone(),
                                row.close_seq,
                                e.clone(),
                            )])
                            .await?;
                        let line = format!("batch {} of SAM {}: {e}", row.close_seq, row.sam_id);
                        report.post_error = Some(match report.post_error.take() {
                            Some(earlier) => format!("{earlier}; {line}"),
                            None => line,
                        });
                        return Ok(());
                    }
                }
            }
            return Ok(());
        }
    }
}

//! The SAM's side of the close (sam-protocol CLOSE, streamed): running time-cycles are
//! STOPped first (a close ends them in the SAM), then CLOSE BEGIN freezes the period's
//! totals, every record of the period goes back with its tag in `SAM_TxSeq` order, and
//! CLOSE END signs `TR`. The batch is the records streamed and the SAM's signed totals.
//! A close interrupted after CLOSE BEGIN (no batch stored for the SAM's last close) is
//! streamed again (`How = 01`) by the next one.

use std::sync::atomic::Ordering;

use purse::settlement::{rfc3339, Batch, UnresolvedTx};
use purse::{CloseSeq, SamTxSeq};

use super::{sam_error, CardSam};
use crate::engine::{ApiError, Engine};
use crate::sam::{codec, Counted, SamError};
use crate::store::sam_rows;

/// The batch file of `records` under the SAM's `TR || TRMAC`.
fn batch(card: &CardSam, records: &[Counted], signed: &[u8], now: i64) -> Result<Batch, SamError> {
    let created_at = rfc3339(now.max(0) as u64);
    Ok(codec::batch(
        &card.identity(),
        records,
        signed,
        &created_at,
    )?)
}

impl Engine {
    async fn period_records(
        &self,
        card: &CardSam,
        period: CloseSeq,
    ) -> Result<Vec<Counted>, ApiError> {
        let sam_id = card.identity().sam_id;
        self.store
            .read(move |c| sam_rows::records_of(c, sam_id, period))
            .await
            .map_err(|_| ApiError::unavailable())
    }

    /// STOPs every running time-cycle of this SAM with no command in flight.
    async fn stop_running(&self, card: &CardSam) -> Result<(), ApiError> {
        let sam_id = card.identity().sam_id;
        let ids = self
            .store
            .read(move |c| sam_rows::running_payments(c, sam_id))
            .await
            .map_err(|_| ApiError::unavailable())?;
        self.at_close_seam(crate::engine::CloseStage::Listed).await;
        let (guards, mut payments) = self.lock_all(ids).await?;
        self.at_close_seam(crate::engine::CloseStage::Locked).await;
        for p in payments.iter_mut() {
            if p.status != crate::payment::Status::Running || p.pending_command.is_some() {
                continue;
            }
            let committed = self.with_sams(|| self.card_stop(p))?;
            self.durable(committed).await?;
        }
        drop(guards);
        Ok(())
    }

    /// Closes the SAM's open period (or finishes one a crash interrupted): the batch,
    /// stored durably with the new close_seq. Running time-cycles are stopped first, so
    /// they settle in the period they ran in; one whose first unit is confirmed while
    /// they are being stopped makes the close stop again before CLOSE BEGIN.
    pub(crate) async fn card_close(&self, card: &CardSam) -> Result<Batch, ApiError> {
        let begun = loop {
            // Every write queued before this barrier is durable after it: the listing
            // of running time-cycles sees them.
            self.durable(self.store.submit(Vec::new())).await?;
            let before = self.runs_started.load(Ordering::SeqCst);
            self.stop_running(card).await?;
            if let Some(begun) = self.with_sams(|| self.close_begin(card, before))? {
                break begun;
            }
        };
        let (close_seq, signed, records) = match begun {
            Err(last) => {
                let records = self.period_records(card, last).await?;
                let (_, signed) = self
                    .with_sams(|| card.lock().close(true, last, &records))
                    .map_err(|e| sam_error(&e))?;
                (last, signed, records)
            }
            Ok((seq, count, sum)) => {
                // Every completion the SAM counted before CLOSE BEGIN was queued for the
                // database under the SAM's lock, before this: once this barrier is durable,
                // they all are.
                self.durable(self.store.submit(Vec::new())).await?;
                let records = self.period_records(card, seq).await?;
                let ours: u64 = records
                    .iter()
                    .filter_map(|c| c.batch_tx().ok())
                    .map(|t| u64::from(t.total.0))
                    .sum();
                if records.len() as u64 != u64::from(count) || ours != sum {
                    tracing::error!(
                        "close {}: the SAM counted {count} completions for {sum}, the database \
                     holds {} for {ours}",
                        seq.0,
                        records.len()
                    );
                    return Err(ApiError::conflict(
                        "records_missing",
                        "the database lacks records the security module counted in this period",
                    ));
                }
                let signed = self
                    .with_sams(|| {
                        let mut sam = card.lock();
                        let streamed = records
                            .chunks(codec::RECORDS_PER_APDU)
                            .try_for_each(|chunk| sam.send(codec::close_record(chunk)).map(|_| ()))
                            .and_then(|()| sam.send(codec::close_end()));
                        match streamed {
                            Ok(s) => Ok(s),
                            // The stream was lost (the SAM was reset): stream the period again.
                            Err(_) => sam.close(true, seq, &records).map(|c| c.1),
                        }
                    })
                    .map_err(|e| sam_error(&e))?;
                (seq, signed, records)
            }
        };
        let now = self.now();
        let mut batch = batch(card, &records, &signed, now).map_err(|e| sam_error(&e))?;
        batch.unresolved = self.unresolved(card).await?;
        let body = serde_json::to_string(&batch).map_err(|_| ApiError::unavailable())?;
        let ops = vec![crate::store::rows::insert_batch(
            card.identity().sam_id,
            close_seq,
            now,
            body,
        )];
        self.durable(self.store.submit(ops)).await?;
        Ok(batch)
    }

    /// Under the SAM's lock: CLOSE BEGIN of the open period (`Ok`), or the SAM's last
    /// closed period whose batch a crash kept from the database (`Err`, to stream again);
    /// `None` when a time-cycle began running since `before` (stop it first).
    #[allow(clippy::type_complexity)]
    fn close_begin(
        &self,
        card: &CardSam,
        before: u64,
    ) -> Result<Option<Result<(CloseSeq, u32, u64), CloseSeq>>, ApiError> {
        let sam_id = card.identity().sam_id;
        let mut sam = card.lock();
        if self.runs_started.load(Ordering::SeqCst) != before {
            return Ok(None);
        }
        let status = card.noted(sam.status()).map_err(|e| sam_error(&e))?;
        let last = status.last_close_seq;
        let unfinished = last.0 > 0
            && !self
                .store
                .read_now(move |c| sam_rows::has_batch(c, sam_id, last))
                .map_err(|_| ApiError::unavailable())?;
        if unfinished {
            return Ok(Some(Err(last)));
        }
        let close_seq = CloseSeq(last.0.saturating_add(1));
        let begun = codec::close_begun(
            &sam.send(codec::close_begin(false, close_seq))
                .map_err(|e| sam_error(&e))?,
        )
        .map_err(|e| sam_error(&e.into()))?;
        Ok(Some(Ok(begun)))
    }

    /// The transactions with a card command in flight (informative in the batch: the
    /// clearing office settles them if the shop never learns their outcome).
    async fn unresolved(&self, card: &CardSam) -> Result<Vec<UnresolvedTx>, ApiError> {
        let sam_id = card.identity().sam_id;
        let open = self
            .store
            .read(move |c| sam_rows::in_flight(c, sam_id))
            .await
            .map_err(|_| ApiError::unavailable())?;
        Ok(open
            .into_iter()
            .filter_map(|(s, unit)| {
                Some(UnresolvedTx {
                    kv: s.kv?,
                    card_id: s.card_id?,
                    nt: s.nt?,
                    sam_tx_seq: s.sam_tx_seq?,
                    unit_amount: purse::Amount(unit),
                })
            })
            .collect())
    }

    /// The batch of the SAM's last closed period again, over the records it verified
    /// minus `excluded` (the correction of a batch the clearing office rejected).
    pub(crate) async fn card_reclose(
        &self,
        card: &CardSam,
        previous: &Batch,
        excluded: &[SamTxSeq],
    ) -> Result<Batch, ApiError> {
        let records: Vec<Counted> = self
            .period_records(card, previous.close_seq)
            .await?
            .into_iter()
            .filter(|c| {
                c.tx_record()
                    .is_ok_and(|r| !excluded.contains(&r.sam_tx_seq))
            })
            .collect();
        let (_, signed) = self
            .with_sams(|| card.lock().close(true, previous.close_seq, &records))
            .map_err(|e| match e {
                SamError::Status(_) => ApiError::conflict("not_correctable", e.to_string()),
                e => sam_error(&e),
            })?;
        batch(card, &records, &signed, self.now()).map_err(|e| sam_error(&e))
    }
}

//! Closing the open period (spec section 6) and correcting a rejected one; the SAM's side
//! of both is in `card/close.rs`. The close first stops every running time-cycle (their
//! payments end `succeeded` at their confirmed units), then the SAM signs the period's
//! totals over the records streamed back to it; the batch and the new close_seq are
//! stored in one transaction before anyone sees the batch. A time-cycle whose first unit
//! is confirmed while the close runs is ended by the SAM's close: its next tick finds it
//! ended and the payment ends then ([`ClosePause`] lets a test hit that moment).
//!
//! A rejected batch is corrected by closing its period again without the records the
//! clearing office refused ([`Engine::correct_period`]): their payments go from
//! `succeeded` to `failed` with the failure `clearing_refused`, the one documented case
//! where a terminal state changes (the money never reaches the merchant, so the shop
//! must know), with the event `payment.clearing_refused`, in the same transaction as the
//! corrected batch.

use std::sync::Arc;

use purse::settlement::Batch;
use purse::{CloseSeq, SamTxSeq};
use tokio::sync::Notify;

use super::{ApiError, Engine};
use crate::payment::{Failure, Status};
use crate::settlement::batches;
use crate::store::rows;
use crate::store::Op;

/// Where a paused close stops (see [`ClosePause`]).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseStage {
    /// It has read which time-cycles run, and taken no lock yet.
    Listed,
    /// It holds their payments' locks and has loaded them; the SAM comes next.
    Locked,
}

/// A test seam: the next close stops at a [`CloseStage`] until resumed. Lets a test run
/// another request at exactly that point instead of hoping a sleep hits it.
#[doc(hidden)]
#[derive(Default)]
pub struct ClosePause {
    reached: Notify,
    resume: Notify,
}

impl ClosePause {
    /// Returns once the close is paused.
    pub async fn reached(&self) {
        self.reached.notified().await;
    }

    /// Lets the paused close go on.
    pub fn resume(&self) {
        self.resume.notify_one();
    }
}

impl Engine {
    /// Pauses the next close at its seam (see [`ClosePause`]).
    #[doc(hidden)]
    pub fn pause_next_close(&self, at: CloseStage) -> Arc<ClosePause> {
        let pause = Arc::new(ClosePause::default());
        *self.close_pause.lock().unwrap_or_else(|e| e.into_inner()) = Some((at, pause.clone()));
        pause
    }

    pub(super) async fn at_close_seam(&self, stage: CloseStage) {
        let pause = {
            let mut seam = self.close_pause.lock().unwrap_or_else(|e| e.into_inner());
            match seam.take() {
                Some((at, p)) if at == stage => Some(p),
                other => {
                    *seam = other;
                    None
                }
            }
        };
        if let Some(p) = pause {
            p.reached.notify_one();
            p.resume.notified().await;
        }
    }

    /// Closes the open period of every SAM and returns their batches, durable. A SAM
    /// that does not answer keeps its period open for the next close; the others close.
    pub async fn close_period(&self) -> Result<Vec<Batch>, ApiError> {
        self.check_alive()?;
        let mut batches = Vec::new();
        let mut failed = None;
        for card in self.sams.iter() {
            match self.card_close(card).await {
                Ok(b) => batches.push(b),
                Err(e) => {
                    tracing::error!(
                        "close of SAM {}: {}: {}",
                        card.identity().sam_id.to_hex(),
                        e.code,
                        e.message
                    );
                    failed = Some(e);
                }
            }
        }
        match (batches.is_empty(), failed) {
            (true, Some(e)) => Err(e),
            _ => Ok(batches),
        }
    }
}

impl Engine {
    /// Closes period `previous.close_seq` again without the records `excluded`
    /// (SAM_TxSeqs) and stores the corrected batch in place of the rejected one (as not
    /// yet sent), with the excluded payments failed `clearing_refused`, in one
    /// transaction (the office's rejection and the old body are kept).
    pub async fn correct_period(
        &self,
        previous: &Batch,
        excluded: &[u32],
    ) -> Result<Batch, ApiError> {
        self.check_alive()?;
        let seqs: Vec<SamTxSeq> = excluded.iter().copied().map(SamTxSeq).collect();
        let card = self.sam_of(previous.sam_id)?;
        let ids = self
            .payment_ids(previous.sam_id, seqs.iter().copied())
            .await?;
        let (guards, mut payments) = self.lock_all(ids).await?;
        let batch = self.card_reclose(card, previous, &seqs).await?;
        let now = self.now();
        let CloseSeq(close_seq) = batch.close_seq;
        let body = serde_json::to_string(&batch).map_err(|_| ApiError::unavailable())?;
        let excluded_json = serde_json::to_string(excluded).map_err(|_| ApiError::unavailable())?;
        let mut ops: Vec<Op> = vec![batches::correct(
            previous.sam_id.to_hex(),
            close_seq,
            now,
            body,
            excluded_json,
        )];
        for p in payments.iter_mut() {
            if p.status != Status::Succeeded {
                // Not a payment the batch settled as paid: nothing to take back.
                tracing::warn!(
                    "payment {} of a refused record is {:?}: left as it is",
                    p.id,
                    p.status
                );
                continue;
            }
            p.status = Status::Failed;
            p.failure = Some(Failure {
                code: rows::CLEARING_REFUSED.into(),
                message: format!(
                    "the clearing office refused this payment's record in batch {close_seq} \
                     (it cannot verify it): the merchant is not paid for it"
                ),
            });
            p.next_due_at = None;
            p.updated_at = now;
            ops.push(rows::put_clearing_refused(p));
            ops.push(self.event(p, "payment.clearing_refused"));
        }
        let committed = self.store.submit(ops);
        self.durable(committed).await?;
        drop(guards);
        Ok(batch)
    }
}

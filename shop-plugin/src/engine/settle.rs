//! Closing the open period (spec section 6): the SAM seals the batch; the batch, the new
//! close_seq, the SAM's records and the payments of the time-cycles the close ended are
//! stored in one transaction before anyone sees the batch.
//!
//! The close ends every running time-cycle, so it holds those payments' locks. Which
//! ones run is read before the locks are taken (awaits); a first unit confirmed in
//! between makes one more: the set is checked again under the SAM's lock and the close
//! starts over when it grew, so every time-cycle it ends has its payment updated. It
//! also ends payments an earlier close left running (databases from before that check).
//!
//! A rejected batch is corrected by closing its period again without the records the
//! clearing office refused ([`Engine::correct_period`]): their payments go from
//! `succeeded` to `failed` with the failure `clearing_refused`, the one documented case
//! where a terminal state changes (the money never reaches the merchant, so the shop
//! must know), with the event `payment.clearing_refused`, in the same transaction as the
//! corrected batch.

use std::collections::BTreeSet;
use std::sync::Arc;

use purse::sam::{Sam, TxState};
use purse::settlement::{rfc3339, Batch};
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

fn running(sam: &Sam) -> BTreeSet<SamTxSeq> {
    sam.open_txs()
        .filter(|t| t.state == TxState::Running)
        .map(|t| t.sam_tx_seq)
        .collect()
}

impl Engine {
    /// Pauses the next close at its seam (see [`ClosePause`]).
    #[doc(hidden)]
    pub fn pause_next_close(&self, at: CloseStage) -> Arc<ClosePause> {
        let pause = Arc::new(ClosePause::default());
        *self.close_pause.lock().unwrap_or_else(|e| e.into_inner()) = Some((at, pause.clone()));
        pause
    }

    async fn at_close_seam(&self, stage: CloseStage) {
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

    /// Closes the period and returns its batch, durable.
    pub async fn close_period(&self) -> Result<Batch, ApiError> {
        self.check_alive()?;
        if let Some(card) = self.card() {
            return self.card_close(card).await;
        }
        loop {
            let listed = running(&*self.sam()?);
            self.at_close_seam(CloseStage::Listed).await;
            let mut ids = self.payment_ids(listed.iter().copied()).await?;
            ids.extend(
                self.store
                    .read(rows::running_but_completed)
                    .await
                    .map_err(|_| ApiError::unavailable())?,
            );
            let (guards, mut payments) = self.lock_all(ids).await?;
            self.at_close_seam(CloseStage::Locked).await;
            let now = self.now();
            let (batch, committed) = {
                let mut sam = self.sam()?;
                // A time-cycle that started running since the listing: its payment is
                // not locked. Start over (the guards go with this iteration).
                if !running(&sam).is_subset(&listed) {
                    continue;
                }
                let close = sam.close_period(rfc3339(now.max(0) as u64));
                let mut ops: Vec<Op> = close.durable.iter().map(rows::put_sam).collect();
                ops.push(rows::set_meta(
                    "last_close_seq",
                    i64::from(close.close_seq.0),
                ));
                let body =
                    serde_json::to_string(&close.batch).map_err(|_| ApiError::unavailable())?;
                ops.push(rows::insert_batch(close.close_seq, now, body));
                // No transaction runs after a close: every loaded time-cycle with no
                // command in flight has ended, by this close or by an earlier one that
                // left its payment running (a database from before the race's fix).
                for p in payments.iter_mut().filter(|p| {
                    p.status == Status::Running
                        && p.pending_command.is_none()
                        && p.sam_tx_seq
                            .and_then(|seq| sam.tx(seq))
                            .is_none_or(|t| t.state == TxState::Completed)
                }) {
                    p.status = Status::Succeeded;
                    p.next_due_at = None;
                    p.updated_at = now;
                    ops.push(rows::put_payment(p));
                    ops.push(self.event(p, "payment.succeeded"));
                }
                (close.batch, self.store.submit(ops))
            };
            self.durable(committed).await?;
            drop(guards);
            return Ok(batch);
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
        let ids = self.payment_ids(seqs.iter().copied()).await?;
        let (guards, mut payments) = self.lock_all(ids).await?;
        let batch = match self.card() {
            Some(card) => self.card_reclose(card, previous, &seqs).await?,
            None => self
                .sam()?
                .reclose(previous, &seqs)
                .map_err(|e| ApiError::conflict("not_correctable", e.to_string()))?,
        };
        let now = self.now();
        let CloseSeq(close_seq) = batch.close_seq;
        let body = serde_json::to_string(&batch).map_err(|_| ApiError::unavailable())?;
        let excluded_json = serde_json::to_string(excluded).map_err(|_| ApiError::unavailable())?;
        let mut ops: Vec<Op> = vec![batches::correct(close_seq, now, body, excluded_json)];
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

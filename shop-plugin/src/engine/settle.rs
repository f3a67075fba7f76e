//! Closing the open period (spec section 6): the SAM seals the batch; the batch, the new
//! close_seq, the SAM's records and the payments of the time-cycles the close ended are
//! stored in one transaction before anyone sees the batch.
//!
//! The close ends every running time-cycle, so it holds those payments' locks. Which
//! ones run is read before the locks are taken (awaits); a first unit confirmed in
//! between makes one more: the set is checked again under the SAM's lock and the close
//! starts over when it grew, so every time-cycle it ends has its payment updated. It
//! also ends payments an earlier close left running (databases from before that check).

use std::collections::BTreeSet;
use std::sync::Arc;

use purse::sam::{Sam, TxState};
use purse::settlement::{rfc3339, Batch};
use purse::SamTxSeq;
use tokio::sync::Notify;

use super::{ApiError, Engine};
use crate::payment::Status;
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
        loop {
            let listed = running(&self.sam());
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
                let mut sam = self.sam();
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

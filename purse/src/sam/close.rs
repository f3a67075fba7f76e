//! Closing a period (spec section 6) and recording the clearing office's decision on a
//! transaction that recovery could not resolve.

use super::error::SamError;
use super::tx::{Durable, TxState};
use super::Sam;
use crate::settlement::{seal, Batch, CloseInput};
use crate::types::{CloseSeq, SamTxSeq};

/// A closed period: store the batch, `close_seq` and every changed transaction in one
/// atomic write, then hand the batch to the clearing office.
#[derive(Debug)]
pub struct Close {
    pub close_seq: CloseSeq,
    pub batch: Batch,
    pub durable: Vec<Durable>,
}

impl Sam {
    /// Closes the open period: running time-cycles end at their last confirmed unit;
    /// every completed, not yet settled transaction goes into the batch; transactions
    /// with a command in flight are listed as unresolved (in every batch until resolved
    /// or decided).
    pub fn close_period(&mut self, created_at: String) -> Close {
        let close_seq = CloseSeq(self.last_close_seq.0.saturating_add(1));
        let sam_id = self.keys.sam_id;
        let mut durable = Vec::new();
        let mut transactions = Vec::new();
        let mut unresolved = Vec::new();
        let seqs: Vec<SamTxSeq> = self.open.keys().copied().collect();
        for seq in seqs {
            let Some(mut tx) = self.open.get(&seq).cloned() else {
                continue;
            };
            let mut changed = false;
            if tx.state == TxState::Running {
                tx.state = TxState::Completed;
                changed = true;
            }
            if tx.settles() {
                if let Some(b) = tx.batch_tx(sam_id) {
                    transactions.push(b);
                }
                tx.settled_in = Some(close_seq);
                changed = true;
            }
            if tx.state == TxState::Pending {
                unresolved.push(tx.unresolved());
            }
            if changed {
                durable.push(self.put(tx.clone()));
            }
            // Final transactions leave memory once settled (or with nothing to settle).
            if tx.is_done() {
                self.open.remove(&seq);
            }
        }
        self.last_close_seq = close_seq;
        let batch = seal(CloseInput {
            sam_id,
            key_version: self.keys.key_version,
            k_sam: &self.keys.k_sam,
            close_seq,
            currency: self.keys.currency,
            created_at,
            transactions,
            unresolved,
        });
        Close {
            close_seq,
            batch,
            durable,
        }
    }

    /// Records the clearing office's decision on a pending transaction: `debited` means
    /// the command in flight reached the card (the office settles that unit itself).
    /// Either way, units the SAM confirmed earlier settle in the next batch.
    pub fn record_clearing_decision(
        &mut self,
        seq: SamTxSeq,
        debited: bool,
    ) -> Result<Durable, SamError> {
        let mut tx = self
            .open
            .get(&seq)
            .cloned()
            .ok_or(SamError::UnknownTx(seq))?;
        if tx.state != TxState::Pending {
            return Err(SamError::NotPending(seq));
        }
        tx.in_flight = None;
        tx.clearing_decision = Some(debited);
        tx.state = match (tx.confirmed.is_some(), debited) {
            (true, _) => TxState::Completed,
            (false, true) => TxState::Cleared,
            (false, false) => TxState::Voided,
        };
        Ok(self.put(tx))
    }
}

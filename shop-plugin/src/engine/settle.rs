//! Closing the open period (spec section 6): the SAM seals the batch; the batch, the new
//! close_seq, the SAM's records and the payments of the time-cycles the close ended are
//! stored in one transaction before anyone sees the batch.

use purse::sam::TxState;
use purse::settlement::{rfc3339, Batch};
use purse::SamTxSeq;

use super::{ApiError, Engine};
use crate::payment::Status;
use crate::store::rows;
use crate::store::Op;

impl Engine {
    /// Closes the period and returns its batch, durable.
    pub async fn close_period(&self) -> Result<Batch, ApiError> {
        self.check_alive()?;
        let now = self.now();
        // The close ends running time-cycles: hold their payments' locks through it.
        let running: Vec<SamTxSeq> = self
            .sam()
            .open_txs()
            .filter(|t| t.state == TxState::Running)
            .map(|t| t.sam_tx_seq)
            .collect();
        let mut ids = Vec::new();
        for seq in running {
            let p = self
                .store
                .read(move |c| rows::payment_by_tx(c, seq))
                .await
                .map_err(|_| ApiError::unavailable())?;
            ids.extend(p.map(|p| p.id));
        }
        ids.sort();
        let mut guards = Vec::new();
        for id in &ids {
            guards.push(self.lock(id).await);
        }
        let mut payments = Vec::new();
        for id in &ids {
            payments.push(self.load(id).await?);
        }
        let (batch, committed) = {
            let mut sam = self.sam();
            let close = sam.close_period(rfc3339(now.max(0) as u64));
            let mut ops: Vec<Op> = close.durable.iter().map(rows::put_sam).collect();
            ops.push(rows::set_meta(
                "last_close_seq",
                i64::from(close.close_seq.0),
            ));
            let body = serde_json::to_string(&close.batch).map_err(|_| ApiError::unavailable())?;
            ops.push(rows::insert_batch(close.close_seq, now, body));
            for d in &close.durable {
                let ended = payments.iter_mut().find(|p| {
                    p.sam_tx_seq == Some(d.tx.sam_tx_seq)
                        && p.status == Status::Running
                        && p.pending_command.is_none()
                });
                if let (Some(p), TxState::Completed) = (ended, d.tx.state) {
                    p.status = Status::Succeeded;
                    p.next_due_at = None;
                    p.updated_at = now;
                    ops.push(rows::put_payment(p));
                    ops.push(self.event(p, "payment.succeeded"));
                }
            }
            (close.batch, self.store.submit(ops))
        };
        self.durable(committed).await?;
        drop(guards);
        Ok(batch)
    }
}

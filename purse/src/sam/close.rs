//! Closing a period (spec section 6), closing a rejected period again without the records
//! the clearing office refused, and recording the clearing office's decision on a
//! transaction that recovery could not resolve.

use subtle::ConstantTimeEq;
use thiserror::Error;

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

    /// Closes period `previous.close_seq` again, under the same close_seq, without the
    /// records `exclude` (SAM_TxSeqs): the correction of a batch the clearing office
    /// rejected because it cannot verify those records (spec 7: the SAM closes the period
    /// again without them). `previous` must be a batch this SAM sealed (its TRMAC and
    /// journal are checked first, so this never seals records the SAM did not), of a
    /// period it closed. The records, the unresolved list and `created_at` stay as they
    /// were; totals, `J` and `TRMAC` are computed again. The SAM's state does not change:
    /// the left-out records stay settled in that close_seq on the SAM's side (the shop
    /// marks their payments refused).
    pub fn reclose(&self, previous: &Batch, exclude: &[SamTxSeq]) -> Result<Batch, RecloseError> {
        if previous.sam_id != self.keys.sam_id
            || previous.key_version != self.keys.key_version
            || previous.currency != self.keys.currency
        {
            return Err(RecloseError::OtherSam);
        }
        if previous.close_seq.0 == 0 || previous.close_seq.0 > self.last_close_seq.0 {
            return Err(RecloseError::NotClosed(previous.close_seq));
        }
        let reseal = |transactions| {
            seal(CloseInput {
                sam_id: previous.sam_id,
                key_version: previous.key_version,
                k_sam: &self.keys.k_sam,
                close_seq: previous.close_seq,
                currency: previous.currency,
                created_at: previous.created_at.clone(),
                transactions,
                unresolved: previous.unresolved.clone(),
            })
        };
        let again = reseal(previous.transactions.clone());
        let mac_ok: bool = again.totals.mac.0.ct_eq(&previous.totals.mac.0).into();
        if !mac_ok || again != *previous {
            return Err(RecloseError::NotSealed);
        }
        if let Some(s) = exclude
            .iter()
            .find(|s| !previous.transactions.iter().any(|t| t.sam_tx_seq == **s))
        {
            return Err(RecloseError::NotInBatch(*s));
        }
        Ok(reseal(
            previous
                .transactions
                .iter()
                .filter(|t| !exclude.contains(&t.sam_tx_seq))
                .cloned()
                .collect(),
        ))
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

/// Why [`Sam::reclose`] refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecloseError {
    #[error("the batch is not this SAM's (SAM_ID, key version or currency)")]
    OtherSam,
    #[error("close_seq {0} is not a period this SAM closed")]
    NotClosed(CloseSeq),
    #[error("the batch's TRMAC or journal does not verify: this SAM did not seal it")]
    NotSealed,
    #[error("SAM_TxSeq {0} is not in the batch")]
    NotInBatch(SamTxSeq),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Key;
    use crate::keys::{IssuerKeys, MasterKeys, SamKeys};
    use crate::settlement::{BatchTx, TotalsRecord};
    use crate::types::{Amount, CardId, Currency, DateTime, KeyVersion, Mac8, Nt, SamId, Units};

    fn sam() -> Sam {
        let mut issuer = IssuerKeys::default();
        issuer.versions.insert(
            KeyVersion(1),
            MasterKeys {
                mk_pur: Key::from_bytes([1; 16]),
                mk_tac: Key::from_bytes([2; 16]),
                mk_sam: Key::from_bytes([3; 16]),
            },
        );
        Sam::new(
            SamKeys::issue(
                &issuer,
                SamId([0x5a, 0, 0, 0, 0, 0, 0, 9]),
                Currency::EUR,
                KeyVersion(1),
                &[KeyVersion(1)],
            )
            .expect("sam keys"),
        )
    }

    fn tx(seq: u32) -> BatchTx {
        BatchTx {
            kv: KeyVersion(1),
            card_id: CardId([0x10, 0, 0, 0, 0, 0, 0, seq as u8]),
            nt: Nt(1),
            sam_tx_seq: SamTxSeq(seq),
            datetime: DateTime(1_795_000_000),
            mode: 1,
            unit_amount: Amount(100 * seq),
            units: Units(1),
            total: Amount(100 * seq),
            balance_after: Amount(1000),
            s3: Mac8([0; 8]),
            tac: Mac8([seq as u8; 8]),
        }
    }

    /// The SAM's close of a period holding records 1..=3, sealed with its key.
    fn closed(s: &mut Sam) -> Batch {
        let c = s.close_period("2026-11-24T23:59:00Z".into());
        seal(CloseInput {
            sam_id: c.batch.sam_id,
            key_version: c.batch.key_version,
            k_sam: &s.keys.k_sam,
            close_seq: c.close_seq,
            currency: c.batch.currency,
            created_at: c.batch.created_at,
            transactions: vec![tx(1), tx(2), tx(3)],
            unresolved: vec![],
        })
    }

    #[test]
    fn a_reclose_leaves_the_refused_records_out_under_the_same_close_seq() {
        let mut s = sam();
        let b = closed(&mut s);
        let again = s.reclose(&b, &[SamTxSeq(2)]).expect("reclose");
        assert_eq!(again.close_seq, b.close_seq);
        assert_eq!(again.created_at, b.created_at);
        let seqs: Vec<u32> = again.transactions.iter().map(|t| t.sam_tx_seq.0).collect();
        assert_eq!(seqs, [1, 3]);
        assert_eq!((again.totals.count, again.totals.sum.0), (2, 400));
        assert_eq!(
            TotalsRecord::claimed(&again).mac(&s.keys.k_sam),
            again.totals.mac
        );
        assert_ne!(again.totals.mac, b.totals.mac);
        // The SAM's state is untouched: the next close is close_seq 2.
        assert_eq!(s.last_close_seq(), CloseSeq(1));
    }

    #[test]
    fn a_reclose_refuses_what_the_sam_did_not_seal() {
        let mut s = sam();
        let b = closed(&mut s);
        let mut forged = b.clone();
        forged.transactions[0].total = Amount(1);
        assert_eq!(s.reclose(&forged, &[]), Err(RecloseError::NotSealed));
        assert_eq!(
            s.reclose(&b, &[SamTxSeq(9)]),
            Err(RecloseError::NotInBatch(SamTxSeq(9)))
        );
        let mut later = b.clone();
        later.close_seq = CloseSeq(2);
        assert_eq!(
            s.reclose(&later, &[]),
            Err(RecloseError::NotClosed(CloseSeq(2)))
        );
        let mut other = b;
        other.sam_id = SamId([1; 8]);
        assert_eq!(s.reclose(&other, &[]), Err(RecloseError::OtherSam));
    }
}

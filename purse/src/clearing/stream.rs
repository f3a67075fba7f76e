//! The checks of spec section 7 for a reader that sees a batch's records one at a time:
//! [`StreamVerifier::new`] checks the batch as a whole from its [`BatchHead`], `push`
//! takes each record in order, `check_tac` verifies one record's TAC (pure and `Sync`,
//! so callers may run it on many cores), and `finish` compares the journal and totals.
//!
//! Memory stays bounded by the batch's distinct (CardID, NT) pairs (the in-batch
//! duplicate check), never by the records themselves. Whether a pair was settled by an
//! earlier batch is the caller's question (a database index, or [`super::ClearingState`]).

use std::collections::HashMap;

use subtle::ConstantTimeEq;

use super::{Problem, TxRef, MAX_JSON_INT};
use crate::crypto::Key;
use crate::keys::IssuerKeys;
use crate::macs::{proof_key, TacInput};
use crate::settlement::{journal_key, journal_next, Batch, BatchTx, Totals, TotalsRecord, FORMAT};
use crate::types::{CardId, CloseSeq, Currency, Journal, KeyVersion, Nt, SamId, SamTxSeq};

/// Everything of a batch but its records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchHead {
    pub format: String,
    pub sam_id: SamId,
    pub close_seq: CloseSeq,
    pub currency: Currency,
    pub key_version: KeyVersion,
    pub totals: Totals,
}

impl BatchHead {
    pub fn of(batch: &Batch) -> BatchHead {
        BatchHead {
            format: batch.format.clone(),
            sam_id: batch.sam_id,
            close_seq: batch.close_seq,
            currency: batch.currency,
            key_version: batch.key_version,
            totals: batch.totals.clone(),
        }
    }

    /// The totals record the batch claims.
    fn claimed(&self) -> TotalsRecord {
        TotalsRecord {
            sam_id: self.sam_id,
            close_seq: self.close_seq,
            first_tx_seq: self.totals.first_tx_seq,
            last_tx_seq: self.totals.last_tx_seq,
            count: self.totals.count,
            sum: self.totals.sum,
            currency: self.currency,
            journal: self.totals.journal,
        }
    }
}

/// The running state of the checks over one batch.
pub struct StreamVerifier<'k> {
    head: BatchHead,
    keys: &'k IssuerKeys,
    /// `KJ`, when the SAM's key version is known.
    kj: Option<Key>,
    journal: Journal,
    index: usize,
    prev: Option<SamTxSeq>,
    sum: u64,
    first: Option<SamTxSeq>,
    last: Option<SamTxSeq>,
    first_seen: HashMap<(CardId, Nt), usize>,
}

impl<'k> StreamVerifier<'k> {
    /// Checks the batch as a whole (format, sum range, key version, TRMAC, close_seq
    /// against `last_close_seq`, the SAM's last accepted one, 0 for none) and returns the
    /// verifier with the problems found so far.
    pub fn new(
        head: &BatchHead,
        keys: &'k IssuerKeys,
        last_close_seq: CloseSeq,
    ) -> (StreamVerifier<'k>, Vec<Problem>) {
        let mut out = Vec::new();
        if head.format != FORMAT {
            out.push(Problem::Format {
                got: head.format.clone(),
            });
        }
        // TR holds Sum in 8 bytes, but the JSON form must keep it exact (spec 6).
        if head.totals.sum.0 > MAX_JSON_INT {
            out.push(Problem::SumRange {
                value: head.totals.sum.0,
            });
        }
        let kj = match keys.get(head.key_version) {
            Err(_) => {
                out.push(Problem::UnknownSamKeyVersion {
                    key_version: head.key_version,
                });
                None
            }
            Ok(mk) => {
                let k_sam = mk.k_sam(head.sam_id);
                if !head.totals.mac.verify(&head.claimed().mac(&k_sam)) {
                    out.push(Problem::TrMac {
                        sam_id: head.sam_id,
                        key_version: head.key_version,
                    });
                }
                Some(journal_key(&k_sam, head.sam_id))
            }
        };
        if last_close_seq.0.checked_add(1).map(CloseSeq) != Some(head.close_seq) {
            out.push(Problem::CloseSeq {
                sam_id: head.sam_id,
                got: head.close_seq,
                last: last_close_seq,
            });
        }
        let v = StreamVerifier {
            head: head.clone(),
            keys,
            kj,
            journal: Journal([0; 16]),
            index: 0,
            prev: None,
            sum: 0,
            first: None,
            last: None,
            first_seen: HashMap::new(),
        };
        (v, out)
    }

    /// The index the next pushed record will have in `transactions`.
    pub fn next_index(&self) -> usize {
        self.index
    }

    /// The TAC of the record at `index` with `K_TAC` of the card's own key version, over
    /// the batch's SAM_ID and currency: a record moved to another SAM's batch or another
    /// currency fails here. Independent of every other record.
    pub fn check_tac(&self, index: usize, tx: &BatchTx) -> Option<Problem> {
        let tx_ref = TxRef::of(index, tx);
        let Ok(mk) = self.keys.get(tx.kv) else {
            return Some(Problem::UnknownCardKeyVersion {
                tx: tx_ref,
                kv: tx.kv,
            });
        };
        let kt = proof_key(&mk.k_tac(tx.card_id), tx.card_id, tx.nt);
        let expected =
            TacInput::of_record(tx.card_id, &tx.record(self.head.sam_id), self.head.currency)
                .mac(&kt);
        (!tx.tac.verify(&expected)).then_some(Problem::Tac {
            tx: tx_ref,
            kv: tx.kv,
            sam_id: self.head.sam_id,
            currency: self.head.currency,
        })
    }

    /// Takes the next record: its order, mode, units and total, a (CardID, NT) seen
    /// earlier in the batch, and the journal and totals it adds to. The TAC is
    /// [`StreamVerifier::check_tac`]'s.
    pub fn push(&mut self, tx: &BatchTx, out: &mut Vec<Problem>) {
        let index = self.index;
        let tx_ref = TxRef::of(index, tx);
        if let Some(prev) = self.prev {
            if tx.sam_tx_seq <= prev {
                out.push(Problem::Order {
                    tx: tx_ref,
                    prev_index: index - 1,
                    prev_sam_tx_seq: prev,
                });
            }
        }
        check_amounts(tx_ref, tx, out);
        match self.first_seen.get(&(tx.card_id, tx.nt)) {
            Some(&first_index) => out.push(Problem::DuplicateInBatch {
                tx: tx_ref,
                first_index,
            }),
            None => {
                self.first_seen.insert((tx.card_id, tx.nt), index);
            }
        }
        if let Some(kj) = &self.kj {
            self.journal = journal_next(kj, self.head.sam_id, &self.journal, tx);
        }
        self.sum = self.sum.saturating_add(u64::from(tx.total.0));
        self.first = Some(self.first.map_or(tx.sam_tx_seq, |f| f.min(tx.sam_tx_seq)));
        self.last = Some(self.last.map_or(tx.sam_tx_seq, |l| l.max(tx.sam_tx_seq)));
        self.prev = Some(tx.sam_tx_seq);
        self.index += 1;
    }

    /// After the last record: the journal `J`, and count, sum, first_tx_seq and
    /// last_tx_seq against the records.
    pub fn finish(self, out: &mut Vec<Problem>) {
        let t = &self.head.totals;
        // J is a MAC chain: compare it in constant time like the other MACs. Unknown
        // K_SAM was reported already.
        if self.kj.is_some() && !bool::from(self.journal.0.ct_eq(&t.journal.0)) {
            out.push(Problem::Journal { count: self.index });
        }
        if usize::try_from(t.count).ok() != Some(self.index) {
            out.push(Problem::Count {
                claimed: t.count,
                actual: self.index,
            });
        }
        if t.sum.0 != self.sum {
            out.push(Problem::Sum {
                claimed: t.sum.0,
                actual: self.sum,
            });
        }
        // With no records both are 0 (spec 6).
        let actual_first = self.first.unwrap_or(SamTxSeq(0));
        let actual_last = self.last.unwrap_or(SamTxSeq(0));
        if (t.first_tx_seq, t.last_tx_seq) != (actual_first, actual_last) {
            out.push(Problem::TxSeqRange {
                claimed_first: t.first_tx_seq,
                claimed_last: t.last_tx_seq,
                actual_first,
                actual_last,
            });
        }
    }
}

/// Mode 1 with one unit or mode 2 with at least one, and `total = units * unit_amount`.
/// Checked even when the TAC verifies: a faulty card can MAC inconsistent values.
fn check_amounts(tx_ref: TxRef, tx: &BatchTx, out: &mut Vec<Problem>) {
    match tx.mode {
        1 if tx.units.0 != 1 => out.push(Problem::Units {
            tx: tx_ref,
            mode: tx.mode,
            units: tx.units,
        }),
        2 if tx.units.0 == 0 => out.push(Problem::Units {
            tx: tx_ref,
            mode: tx.mode,
            units: tx.units,
        }),
        1 | 2 => {}
        mode => out.push(Problem::Mode { tx: tx_ref, mode }),
    }
    // In u64 so that a huge units x unit_amount cannot wrap onto a plausible total.
    if u64::from(tx.units.0) * u64::from(tx.unit_amount.0) != u64::from(tx.total.0) {
        out.push(Problem::Total {
            tx: tx_ref,
            units: tx.units,
            unit_amount: tx.unit_amount,
            total: tx.total,
        });
    }
}

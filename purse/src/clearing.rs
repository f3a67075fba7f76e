//! Clearing-office verification of a settlement batch (spec section 7).
//!
//! [`verify`] runs every check of section 7 against the issuer's master keys and the
//! office's [`ClearingState`], and reports every problem it finds rather than the first:
//! the SAM operator corrects a rejected batch and resubmits it under the same close_seq,
//! so they need the whole list at once. [`ClearingState::accept`] records an accepted
//! batch. Files are the caller's: [`parse_batch`] reads a batch from text and refuses
//! what section 6 forbids (integers >= 2^53, another format).

mod parse;
mod problem;
mod state;

use std::collections::HashMap;

use subtle::ConstantTimeEq;

pub use parse::{parse_batch, BatchParseError, MAX_JSON_INT};
pub use problem::{Problem, TxRef};
pub use state::{AcceptedBatch, ClearingState, StateError, STATE_FORMAT};

use crate::keys::IssuerKeys;
use crate::macs::{proof_key, TacInput};
use crate::settlement::{journal, journal_key, Batch, BatchTx, TotalsRecord, FORMAT};
use crate::types::{CardId, CloseSeq, Nt, SamTxSeq};

/// Checks a batch against spec section 7; an empty list means the batch is acceptable.
/// Problems come in a fixed order: the batch as a whole (format, key version, TRMAC,
/// close_seq, journal), then the records in order, then the totals.
pub fn verify(batch: &Batch, keys: &IssuerKeys, state: &ClearingState) -> Vec<Problem> {
    let mut problems = Vec::new();
    check_batch(batch, keys, state, &mut problems);
    check_order(&batch.transactions, &mut problems);
    for (index, tx) in batch.transactions.iter().enumerate() {
        check_tac(batch, index, tx, keys, &mut problems);
        check_amounts(index, tx, &mut problems);
    }
    check_duplicates(&batch.transactions, state, &mut problems);
    check_totals(batch, &mut problems);
    problems
}

impl ClearingState {
    /// Verifies a batch and, when it has no problem, records it. On rejection the state
    /// is unchanged.
    pub fn clear(&mut self, batch: &Batch, keys: &IssuerKeys) -> Result<(), Vec<Problem>> {
        let problems = verify(batch, keys, self);
        if problems.is_empty() {
            self.accept(batch);
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// Format, TRMAC, close_seq and the journal chain.
fn check_batch(batch: &Batch, keys: &IssuerKeys, state: &ClearingState, out: &mut Vec<Problem>) {
    if batch.format != FORMAT {
        out.push(Problem::Format {
            got: batch.format.clone(),
        });
    }
    // TR holds Sum in 8 bytes, but the JSON form must keep it exact (spec 6).
    if batch.totals.sum.0 > MAX_JSON_INT {
        out.push(Problem::SumRange {
            value: batch.totals.sum.0,
        });
    }
    match keys.get(batch.key_version) {
        Err(_) => out.push(Problem::UnknownSamKeyVersion {
            key_version: batch.key_version,
        }),
        Ok(mk) => {
            let k_sam = mk.k_sam(batch.sam_id);
            let trmac = TotalsRecord::claimed(batch).mac(&k_sam);
            if !batch.totals.mac.verify(&trmac) {
                out.push(Problem::TrMac {
                    sam_id: batch.sam_id,
                    key_version: batch.key_version,
                });
            }
            let kj = journal_key(&k_sam, batch.sam_id);
            let j = journal(&kj, batch.sam_id, &batch.transactions);
            // J is a MAC chain: compare it in constant time like the other MACs.
            if !bool::from(j.0.ct_eq(&batch.totals.journal.0)) {
                out.push(Problem::Journal {
                    count: batch.transactions.len(),
                });
            }
        }
    }
    let last = state.last_close_seq(batch.sam_id);
    if last.0.checked_add(1).map(CloseSeq) != Some(batch.close_seq) {
        out.push(Problem::CloseSeq {
            sam_id: batch.sam_id,
            got: batch.close_seq,
            last,
        });
    }
}

/// Records must come in strictly ascending sam_tx_seq.
fn check_order(txs: &[BatchTx], out: &mut Vec<Problem>) {
    for (index, pair) in txs.windows(2).enumerate() {
        if let [prev, tx] = pair {
            if tx.sam_tx_seq <= prev.sam_tx_seq {
                out.push(Problem::Order {
                    tx: TxRef::of(index + 1, tx),
                    prev_index: index,
                    prev_sam_tx_seq: prev.sam_tx_seq,
                });
            }
        }
    }
}

/// The TAC with `K_TAC` of the card's own key version, over the batch's SAM_ID and
/// currency: a record moved to another SAM's batch or another currency fails here.
fn check_tac(batch: &Batch, index: usize, tx: &BatchTx, keys: &IssuerKeys, out: &mut Vec<Problem>) {
    let tx_ref = TxRef::of(index, tx);
    let Ok(mk) = keys.get(tx.kv) else {
        out.push(Problem::UnknownCardKeyVersion {
            tx: tx_ref,
            kv: tx.kv,
        });
        return;
    };
    let kt = proof_key(&mk.k_tac(tx.card_id), tx.card_id, tx.nt);
    let expected =
        TacInput::of_record(tx.card_id, &tx.record(batch.sam_id), batch.currency).mac(&kt);
    if !tx.tac.verify(&expected) {
        out.push(Problem::Tac {
            tx: tx_ref,
            kv: tx.kv,
            sam_id: batch.sam_id,
            currency: batch.currency,
        });
    }
}

/// Mode 1 with one unit or mode 2 with at least one, and `total = units * unit_amount`.
/// Checked even when the TAC verifies: a faulty card can MAC inconsistent values.
fn check_amounts(index: usize, tx: &BatchTx, out: &mut Vec<Problem>) {
    let tx_ref = TxRef::of(index, tx);
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

/// No (CardID, NT) twice in the batch, nor one any accepted batch of any SAM settled.
fn check_duplicates(txs: &[BatchTx], state: &ClearingState, out: &mut Vec<Problem>) {
    let mut first: HashMap<(CardId, Nt), usize> = HashMap::with_capacity(txs.len());
    for (index, tx) in txs.iter().enumerate() {
        let tx_ref = TxRef::of(index, tx);
        if let Some(&first_index) = first.get(&(tx.card_id, tx.nt)) {
            out.push(Problem::DuplicateInBatch {
                tx: tx_ref,
                first_index,
            });
        } else {
            first.insert((tx.card_id, tx.nt), index);
        }
        if state.is_accepted(tx.card_id, tx.nt) {
            out.push(Problem::AlreadyAccepted { tx: tx_ref });
        }
    }
}

/// count, sum, first_tx_seq and last_tx_seq against the records.
fn check_totals(batch: &Batch, out: &mut Vec<Problem>) {
    let txs = &batch.transactions;
    let t = &batch.totals;
    if usize::try_from(t.count).ok() != Some(txs.len()) {
        out.push(Problem::Count {
            claimed: t.count,
            actual: txs.len(),
        });
    }
    let actual_sum = txs
        .iter()
        .fold(0u64, |s, tx| s.saturating_add(u64::from(tx.total.0)));
    if t.sum.0 != actual_sum {
        out.push(Problem::Sum {
            claimed: t.sum.0,
            actual: actual_sum,
        });
    }
    // With no records both are 0 (spec 6), which is what min/max default to.
    let actual_first = txs
        .iter()
        .map(|t| t.sam_tx_seq)
        .min()
        .unwrap_or(SamTxSeq(0));
    let actual_last = txs
        .iter()
        .map(|t| t.sam_tx_seq)
        .max()
        .unwrap_or(SamTxSeq(0));
    if (t.first_tx_seq, t.last_tx_seq) != (actual_first, actual_last) {
        out.push(Problem::TxSeqRange {
            claimed_first: t.first_tx_seq,
            claimed_last: t.last_tx_seq,
            actual_first,
            actual_last,
        });
    }
}

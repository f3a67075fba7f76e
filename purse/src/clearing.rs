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
mod stream;
mod wire;

pub use parse::{parse_batch, BatchParseError, MAX_JSON_INT};
pub use problem::{Problem, TxRef};
pub use state::{AcceptedBatch, ClearingState, StateError, STATE_FORMAT};
pub use stream::{BatchHead, StreamVerifier};
pub use wire::WireProblem;

use crate::keys::IssuerKeys;
use crate::settlement::Batch;

/// Checks a batch against spec section 7; an empty list means the batch is acceptable.
/// Problems come in a fixed order: the batch as a whole (format, key version, TRMAC,
/// close_seq), then the records in order, then the journal and the totals. The checks are
/// those of [`StreamVerifier`], which a caller that cannot hold a batch in memory feeds
/// record by record.
pub fn verify(batch: &Batch, keys: &IssuerKeys, state: &ClearingState) -> Vec<Problem> {
    let head = BatchHead::of(batch);
    let (mut v, mut problems) =
        StreamVerifier::new(&head, keys, state.last_close_seq(batch.sam_id));
    for tx in &batch.transactions {
        let index = v.next_index();
        if let Some(p) = v.check_tac(index, tx) {
            problems.push(p);
        }
        v.push(tx, &mut problems);
        if state.is_accepted(tx.card_id, tx.nt) {
            problems.push(Problem::AlreadyAccepted {
                tx: TxRef::of(index, tx),
            });
        }
    }
    v.finish(&mut problems);
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

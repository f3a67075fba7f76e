//! The clearing office's file side: a settlement batch file is checked against the
//! issuer key file and the local clearing-state file (`purse-clearing-state/1`), and an
//! accepted batch is recorded there atomically. A rejected batch leaves the state as it
//! was, so the SAM operator can correct it and resubmit it under the same close_seq.

use std::fmt;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use purse::clearing::{parse_batch, verify, ClearingState};
use purse::settlement::Batch;
use purse::{CloseSeq, Currency, SamId, SamTxSeq};

use super::keys::load_issuer_keys;
use super::lockfile::{exists, lock};
use crate::files::{read_private, write_atomic};

/// What `clear` decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClearOutcome {
    Accepted(Summary),
    Rejected(Rejection),
}

/// One line about an accepted batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub sam_id: SamId,
    pub close_seq: CloseSeq,
    pub currency: Currency,
    pub count: usize,
    pub sum: u64,
    pub first_tx_seq: SamTxSeq,
    pub last_tx_seq: SamTxSeq,
    pub unresolved: usize,
    /// False for a dry run: the batch would be accepted, but nothing was recorded.
    pub recorded: bool,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: SAM {} close_seq {}: {} transaction(s), {}",
            if self.recorded {
                "accepted"
            } else {
                "acceptable (dry run, not recorded)"
            },
            self.sam_id,
            self.close_seq,
            self.count,
            self.currency.format_minor(self.sum),
        )?;
        if self.count > 0 {
            write!(f, ", SAM_TxSeq {}..{}", self.first_tx_seq, self.last_tx_seq)?;
        }
        write!(f, ", {} unresolved", self.unresolved)
    }
}

/// Why a batch was refused: each problem as its stable code and a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// What was refused: the batch's SAM and close_seq, or the file when it did not parse.
    pub subject: String,
    pub problems: Vec<(&'static str, String)>,
}

fn summary(batch: &Batch, recorded: bool) -> Summary {
    Summary {
        sam_id: batch.sam_id,
        close_seq: batch.close_seq,
        currency: batch.currency,
        count: batch.transactions.len(),
        sum: batch.totals.sum.0,
        first_tx_seq: batch.totals.first_tx_seq,
        last_tx_seq: batch.totals.last_tx_seq,
        unresolved: batch.unresolved.len(),
        recorded,
    }
}

/// Reads the clearing state, or starts an empty one when the file does not exist yet.
pub fn read_state(path: &Path) -> Result<ClearingState> {
    if !exists(path)? {
        return Ok(ClearingState::default());
    }
    let text = read_private(path)?;
    ClearingState::from_json(&text)
        .with_context(|| format!("{} is not a clearing-state file", path.display()))
}

/// Verifies the batch file at `batch_path` (spec section 7) and, when it is acceptable
/// and `record` is set, records it in the state file (created if absent). `Err` is for
/// trouble with the office's own files; a bad batch is `Ok(Rejected)`.
pub fn clear(
    keys_path: &Path,
    state_path: &Path,
    batch_path: &Path,
    record: bool,
) -> Result<ClearOutcome> {
    let keys = load_issuer_keys(keys_path)?;
    let text = fs::read_to_string(batch_path)
        .with_context(|| format!("reading batch {}", batch_path.display()))?;
    let batch = match parse_batch(&text) {
        Ok(b) => b,
        Err(e) => {
            return Ok(ClearOutcome::Rejected(Rejection {
                subject: format!("batch file {}", batch_path.display()),
                problems: vec![(e.code(), e.to_string())],
            }))
        }
    };
    // Held from reading the state to writing it: two batches cleared at once must not
    // both pass the duplicate check against the same old state.
    let _lock = lock(state_path)?;
    let mut state = read_state(state_path)?;
    let problems = verify(&batch, &keys, &state);
    if !problems.is_empty() {
        return Ok(ClearOutcome::Rejected(Rejection {
            subject: format!(
                "batch close_seq {} of SAM {}",
                batch.close_seq, batch.sam_id
            ),
            problems: problems.iter().map(|p| (p.code(), p.to_string())).collect(),
        }));
    }
    if record {
        state.accept(&batch);
        let json = state.to_json();
        anyhow::ensure!(
            !json.is_empty(),
            "the clearing state could not be serialized"
        );
        write_atomic(state_path, json.as_bytes(), 0o600)?;
    }
    Ok(ClearOutcome::Accepted(summary(&batch, record)))
}

//! The clearing office's durable record: the last accepted close_seq of each SAM, every
//! (CardID, NT) any accepted batch settled, and an audit line per accepted batch.
//!
//! The fields `last_close_seq` and `accepted` have the shape of the vectors'
//! `accepted_state`, so that shape deserializes directly; the file form adds a format tag.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::settlement::Batch;
use crate::types::{CardId, CloseSeq, Currency, KeyVersion, Mac8, Nt, SamId, SamTxSeq, Sum};

pub const STATE_FORMAT: &str = "purse-clearing-state/1";

/// What the clearing office has accepted so far.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearingState {
    /// The last accepted close_seq of each SAM; a SAM that is absent has none (0).
    #[serde(default)]
    pub last_close_seq: BTreeMap<SamId, CloseSeq>,
    /// Every (CardID, NT) settled by an accepted batch of any SAM: a card proves each NT
    /// once, so a second claim on it is a replay, whichever SAM makes it.
    #[serde(default)]
    pub accepted: BTreeSet<(CardId, Nt)>,
    /// One entry per accepted batch, oldest first. Verification does not need it; the
    /// operator does, to answer "what was settled when".
    #[serde(default)]
    pub batches: Vec<AcceptedBatch>,
}

/// The audit entry of one accepted batch: what its TRMAC covers, and the TRMAC itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedBatch {
    pub sam_id: SamId,
    pub close_seq: CloseSeq,
    pub key_version: KeyVersion,
    pub currency: Currency,
    pub count: u32,
    pub sum: Sum,
    pub first_tx_seq: SamTxSeq,
    pub last_tx_seq: SamTxSeq,
    pub created_at: String,
    pub trmac: Mac8,
}

/// The state file could not be read.
#[derive(Debug, Error)]
pub enum StateError {
    #[error("not a clearing-state file of format {STATE_FORMAT}: {0}")]
    Json(String),
    #[error("clearing-state format is {got:?}, expected {STATE_FORMAT:?}")]
    Format { got: String },
}

#[derive(Serialize)]
struct FileOut<'a> {
    format: &'a str,
    #[serde(flatten)]
    state: &'a ClearingState,
}

#[derive(Deserialize)]
struct FileIn {
    format: String,
    #[serde(flatten)]
    state: ClearingState,
}

impl ClearingState {
    /// The last accepted close_seq of `sam`, 0 when none was accepted.
    pub fn last_close_seq(&self, sam: SamId) -> CloseSeq {
        self.last_close_seq.get(&sam).copied().unwrap_or_default()
    }

    /// Whether an accepted batch already settled this (CardID, NT).
    pub fn is_accepted(&self, card_id: CardId, nt: Nt) -> bool {
        self.accepted.contains(&(card_id, nt))
    }

    /// Records an accepted batch. Call it only for a batch [`super::verify`] found no
    /// problem in (or use [`ClearingState::clear`], which does both); it does not check.
    pub fn accept(&mut self, batch: &Batch) {
        self.last_close_seq.insert(batch.sam_id, batch.close_seq);
        self.accepted
            .extend(batch.transactions.iter().map(|t| (t.card_id, t.nt)));
        self.batches.push(AcceptedBatch {
            sam_id: batch.sam_id,
            close_seq: batch.close_seq,
            key_version: batch.key_version,
            currency: batch.currency,
            count: batch.totals.count,
            sum: batch.totals.sum,
            first_tx_seq: batch.totals.first_tx_seq,
            last_tx_seq: batch.totals.last_tx_seq,
            created_at: batch.created_at.clone(),
            trmac: batch.totals.mac,
        });
    }

    /// The `purse-clearing-state/1` file form.
    pub fn to_json(&self) -> String {
        let out = FileOut {
            format: STATE_FORMAT,
            state: self,
        };
        // Compact: the accepted pairs grow with every batch. Every field serializes
        // (string map keys, no floats), so this cannot fail.
        serde_json::to_string(&out)
            .map(|j| j + "\n")
            .unwrap_or_default()
    }

    pub fn from_json(s: &str) -> Result<ClearingState, StateError> {
        let f: FileIn = serde_json::from_str(s).map_err(|e| StateError::Json(e.to_string()))?;
        if f.format != STATE_FORMAT {
            return Err(StateError::Format { got: f.format });
        }
        Ok(f.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_the_vectors_accepted_state_shape() {
        let s: ClearingState = serde_json::from_str(
            r#"{"last_close_seq": {"5a00000000000001": 2},
                "accepted": [["1000000000000001", 1], ["1000000000000003", 1]]}"#,
        )
        .unwrap();
        let sam = SamId::from_hex("5a00000000000001").unwrap();
        assert_eq!(s.last_close_seq(sam), CloseSeq(2));
        assert_eq!(s.last_close_seq(SamId([0; 8])), CloseSeq(0));
        assert!(s.is_accepted(CardId::from_hex("1000000000000003").unwrap(), Nt(1)));
        assert!(!s.is_accepted(CardId::from_hex("1000000000000003").unwrap(), Nt(2)));
    }

    #[test]
    fn file_form_roundtrips_and_checks_its_format() {
        let mut s = ClearingState::default();
        s.last_close_seq.insert(SamId([1; 8]), CloseSeq(7));
        s.accepted.insert((CardId([2; 8]), Nt(3)));
        let j = s.to_json();
        assert!(j.contains(STATE_FORMAT));
        assert_eq!(ClearingState::from_json(&j).unwrap(), s);
        let other = j.replace(STATE_FORMAT, "purse-clearing-state/9");
        assert!(matches!(
            ClearingState::from_json(&other),
            Err(StateError::Format { .. })
        ));
        assert!(ClearingState::from_json("{}").is_err());
    }
}

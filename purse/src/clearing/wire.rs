//! A problem as it crosses HTTP in the clearing office's decision on a batch
//! (`schema/clearing-office.openapi.yaml`, `Problem`): its stable code, a sentence, and
//! the record it is about. The office writes it, the shop plugin reads it; one type.

use serde::{Deserialize, Serialize};

use super::Problem;

/// One problem of a decision. Read tolerantly: a field the office adds later is ignored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireProblem {
    pub code: String,
    pub message: String,
    /// The record's place in the batch's `transactions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nt: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sam_tx_seq: Option<u32>,
}

impl From<&Problem> for WireProblem {
    fn from(p: &Problem) -> WireProblem {
        let tx = p.tx();
        WireProblem {
            code: p.code().into(),
            message: p.to_string(),
            index: tx.map(|t| t.index as u64),
            card_id: tx.map(|t| t.card_id.to_hex()),
            nt: tx.map(|t| t.nt.0),
            sam_tx_seq: tx.map(|t| t.sam_tx_seq.0),
        }
    }
}

impl WireProblem {
    /// A problem of the office's own (not of spec 7), about the batch as a whole.
    pub fn office(code: &str, message: String) -> WireProblem {
        WireProblem {
            code: code.into(),
            message,
            index: None,
            card_id: None,
            nt: None,
            sam_tx_seq: None,
        }
    }
}

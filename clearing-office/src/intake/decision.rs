//! The office's answer to an upload: the decision, the typed problems (codes as
//! `purse::clearing` names them, plus the office's own registration checks) and, for an
//! accepted batch, the merchant's payout line. Stored with the batch and sent again,
//! byte for byte, when the same batch is uploaded again.

use purse::clearing::Problem;
use purse::Currency;
use serde::{Deserialize, Serialize};

/// At most this many problems are listed (`problem_count` tells how many there were).
pub const MAX_LISTED: usize = 1000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub batch_id: i64,
    pub sam_id: String,
    pub close_seq: u32,
    /// `accepted` or `rejected`.
    pub decision: String,
    pub body_sha256: String,
    pub received_at: String,
    pub transaction_count: u64,
    pub gross: u64,
    pub currency: String,
    pub unresolved_count: u64,
    pub problem_count: u64,
    pub problems: Vec<ProblemOut>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payout: Option<PayoutLine>,
}

/// One problem of a decision (the wire type the shop plugin reads too).
pub use purse::clearing::WireProblem as ProblemOut;

/// What the merchant is paid for an accepted batch (no fee is charged: `net = gross`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayoutLine {
    pub merchant_id: String,
    pub currency: String,
    pub gross: u64,
    pub fee: u64,
    pub net: u64,
}

/// The currency's alphabetic code, or its number when it has none.
pub fn currency_code(c: Currency) -> String {
    c.alpha()
        .map_or_else(|| c.numeric().to_string(), str::to_string)
}

/// Collects problems, keeping the first [`MAX_LISTED`] and counting all.
#[derive(Default)]
pub struct Problems {
    pub listed: Vec<ProblemOut>,
    pub count: u64,
}

impl Problems {
    pub fn push(&mut self, p: ProblemOut) {
        self.count += 1;
        if self.listed.len() < MAX_LISTED {
            self.listed.push(p);
        }
    }

    pub fn extend<'a>(&mut self, ps: impl IntoIterator<Item = &'a Problem>) {
        for p in ps {
            self.push(p.into());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

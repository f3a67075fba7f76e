//! Everything that can be wrong with a settlement batch: one typed [`Problem`] per failed
//! check of spec section 7 (plus the format rules of section 6), each with a stable code.
//!
//! Messages name the record (index, sam_tx_seq, card, nt) so that an operator can find
//! it, and never contain the MAC the office computed: echoing a correct TAC or TRMAC
//! back to whoever submitted a forged batch would hand them the forgery.

use core::fmt;

use thiserror::Error;

use crate::settlement::{BatchTx, FORMAT};
use crate::types::{Amount, CardId, CloseSeq, Currency, KeyVersion, Nt, SamId, SamTxSeq, Units};

/// The record a problem is about: its position in `transactions` and the values an
/// operator looks it up by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxRef {
    pub index: usize,
    pub sam_tx_seq: SamTxSeq,
    pub card_id: CardId,
    pub nt: Nt,
}

impl TxRef {
    pub fn of(index: usize, tx: &BatchTx) -> TxRef {
        TxRef {
            index,
            sam_tx_seq: tx.sam_tx_seq,
            card_id: tx.card_id,
            nt: tx.nt,
        }
    }
}

impl fmt::Display for TxRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "transactions[{}] (sam_tx_seq {}, card {}, nt {})",
            self.index, self.sam_tx_seq, self.card_id, self.nt
        )
    }
}

/// One reason to reject a batch. [`Problem::code`] is stable; the message is for people.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Problem {
    #[error("format is {got:?}, expected {FORMAT:?}")]
    Format { got: String },

    #[error("totals.sum {value} is not below 2^53: it cannot be exact in JSON")]
    SumRange { value: u64 },

    #[error(
        "key_version {key_version} is not one of the issuer's key versions: \
         K_SAM is unknown, so TRMAC and the journal cannot be checked"
    )]
    UnknownSamKeyVersion { key_version: KeyVersion },

    #[error(
        "totals.mac (TRMAC) does not verify with K_SAM of SAM {sam_id}, key version {key_version}"
    )]
    TrMac {
        sam_id: SamId,
        key_version: KeyVersion,
    },

    /// `last` is 0 when no batch of this SAM was accepted yet.
    #[error(
        "close_seq {got} of SAM {sam_id} is not the last accepted close_seq + 1 \
         (last accepted: {last}, 0 for none)"
    )]
    CloseSeq {
        sam_id: SamId,
        got: CloseSeq,
        last: CloseSeq,
    },

    #[error("totals.journal (J) does not recompute over the {count} records as listed")]
    Journal { count: usize },

    #[error(
        "{tx}: sam_tx_seq is not above sam_tx_seq {prev_sam_tx_seq} of transactions[{prev_index}]"
    )]
    Order {
        tx: TxRef,
        prev_index: usize,
        prev_sam_tx_seq: SamTxSeq,
    },

    #[error(
        "{tx}: card key version {kv} is not one of the issuer's key versions: \
         its TAC cannot be checked"
    )]
    UnknownCardKeyVersion { tx: TxRef, kv: KeyVersion },

    #[error(
        "{tx}: TAC does not verify with K_TAC of key version {kv}, SAM {sam_id} \
         and currency {currency}"
    )]
    Tac {
        tx: TxRef,
        kv: KeyVersion,
        sam_id: SamId,
        currency: Currency,
    },

    #[error("{tx}: (card, nt) already appears in transactions[{first_index}]")]
    DuplicateInBatch { tx: TxRef, first_index: usize },

    #[error("{tx}: (card, nt) was already settled by an accepted batch")]
    AlreadyAccepted { tx: TxRef },

    #[error("{tx}: mode {mode} is neither 1 (single purchase) nor 2 (time-cycle)")]
    Mode { tx: TxRef, mode: u8 },

    #[error("{tx}: units {units} in mode {mode} (mode 1 needs exactly 1, mode 2 at least 1)")]
    Units { tx: TxRef, mode: u8, units: Units },

    #[error("{tx}: total {total} is not units {units} x unit_amount {unit_amount}")]
    Total {
        tx: TxRef,
        units: Units,
        unit_amount: Amount,
        total: Amount,
    },

    #[error("totals.count {claimed} does not match the {actual} records")]
    Count { claimed: u32, actual: usize },

    #[error("totals.sum {claimed} does not match {actual}, the sum of the records' totals")]
    Sum { claimed: u64, actual: u64 },

    #[error(
        "totals.first_tx_seq / last_tx_seq {claimed_first} / {claimed_last} are not \
         {actual_first} / {actual_last}, the smallest / largest sam_tx_seq (0 / 0 with no records)"
    )]
    TxSeqRange {
        claimed_first: SamTxSeq,
        claimed_last: SamTxSeq,
        actual_first: SamTxSeq,
        actual_last: SamTxSeq,
    },
}

impl Problem {
    /// The stable code of the check that failed. The codes of spec section 7 are those
    /// of the conformance vectors' `clearing.codes`.
    pub fn code(&self) -> &'static str {
        match self {
            Problem::Format { .. } => "E_FORMAT",
            Problem::SumRange { .. } => "E_INT_RANGE",
            Problem::UnknownSamKeyVersion { .. } | Problem::UnknownCardKeyVersion { .. } => {
                "E_KEY_VERSION"
            }
            Problem::TrMac { .. } => "E_TRMAC",
            Problem::CloseSeq { .. } => "E_CLOSE_SEQ",
            Problem::Journal { .. } => "E_JOURNAL",
            Problem::Order { .. } => "E_ORDER",
            Problem::Tac { .. } => "E_TAC",
            Problem::DuplicateInBatch { .. } | Problem::AlreadyAccepted { .. } => "E_DUPLICATE",
            Problem::Mode { .. } => "E_MODE",
            Problem::Units { .. } => "E_UNITS",
            Problem::Total { .. } => "E_TOTAL",
            Problem::Count { .. } => "E_COUNT",
            Problem::Sum { .. } => "E_SUM",
            Problem::TxSeqRange { .. } => "E_TX_SEQ_RANGE",
        }
    }

    /// The record the problem is about, when it is about one.
    pub fn tx(&self) -> Option<&TxRef> {
        match self {
            Problem::Order { tx, .. }
            | Problem::UnknownCardKeyVersion { tx, .. }
            | Problem::Tac { tx, .. }
            | Problem::DuplicateInBatch { tx, .. }
            | Problem::AlreadyAccepted { tx }
            | Problem::Mode { tx, .. }
            | Problem::Units { tx, .. }
            | Problem::Total { tx, .. } => Some(tx),
            _ => None,
        }
    }
}

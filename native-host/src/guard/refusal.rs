//! Why the guard refused a command, and the catalogue code the extension is told.

use std::time::Duration;

use purse::{Amount, Mode, Nt, StatusWord, Units};
use thiserror::Error;

use crate::catalogue::ErrorCode;

/// A command the guard refused; nothing was sent to the card.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("not a purse command (the card would answer {0})")]
    NotPurse(StatusWord),
    #[error("SELECT of another application ({0}): only the purse may be selected")]
    ForeignAid(String),
    #[error("INITIALIZE in mode {asked:?}, but the shopper confirmed {confirmed:?}")]
    ModeMismatch { asked: Mode, confirmed: Mode },
    #[error("INITIALIZE for {asked} per unit, but the shopper confirmed {confirmed}")]
    AmountMismatch { asked: Amount, confirmed: Amount },
    #[error("INITIALIZE for up to {asked} units, but the shopper confirmed {confirmed}")]
    CapMismatch { asked: Units, confirmed: Units },
    #[error("a status-only INITIALIZE (mode 00) is for recovery sessions only")]
    StatusOnlyInPayment,
    #[error(
        "a recovery session only takes a status-only INITIALIZE (mode 00, U = 0, MaxUnits = 0)"
    )]
    ChargingInRecovery,
    #[error("a recovery session never debits")]
    DebitInRecovery,
    #[error("{0} outside a purchase session that a confirmed INITIALIZE opened")]
    OutOfSession(&'static str),
    #[error("TICK {k} is beyond the confirmed cap of {cap} units")]
    TickBeyondCap { k: Units, cap: Units },
    #[error("{spent} of the {cap} confirmed units are charged or in doubt: no further unit")]
    CapReached { spent: u32, cap: Units },
    #[error("unit {unit} of the time-cycle is due in {}.{:03} s (one unit every {period} s was confirmed)", wait.as_secs(), wait.subsec_millis())]
    TooEarly {
        unit: u32,
        wait: Duration,
        period: u32,
    },
    #[error("GET TRANSACTION PROOF is for recovery sessions only")]
    ProofInPayment,
    #[error("GET TRANSACTION PROOF of NT {asked}, but this recovery is about NT {nt}")]
    ProofOfAnotherNt { asked: Nt, nt: Nt },
    #[error("GET TRANSACTION PROOF before a status-only INITIALIZE was answered in this session")]
    ProofBeforeInitialize,
    #[error("GET TRANSACTION PROOF of NT {asked}, not below the card's next NT {card_nt}")]
    ProofNotBelowCardNt { asked: Nt, card_nt: Nt },
    #[error("the card's record is {0}: withheld")]
    RecordWithheld(&'static str),
}

impl Refusal {
    pub fn code(&self) -> ErrorCode {
        match self {
            Refusal::ModeMismatch { .. }
            | Refusal::AmountMismatch { .. }
            | Refusal::CapMismatch { .. } => ErrorCode::AmountMismatch,
            Refusal::TickBeyondCap { .. } | Refusal::CapReached { .. } => ErrorCode::CapExceeded,
            Refusal::TooEarly { .. } => ErrorCode::TooEarly,
            Refusal::ProofInPayment
            | Refusal::ProofOfAnotherNt { .. }
            | Refusal::ProofBeforeInitialize
            | Refusal::ProofNotBelowCardNt { .. }
            | Refusal::RecordWithheld(_) => ErrorCode::ProofNotAllowed,
            _ => ErrorCode::CommandNotAllowed,
        }
    }
}

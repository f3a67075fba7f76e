//! Why the SAM refuses a purchase or an operation.

use thiserror::Error;

use crate::apdu::StatusWord;
use crate::types::{Amount, Currency, KeyVersion, SamTxSeq, Units};

/// Why `authorize` refused: nothing was allocated and no DEBIT was built.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Refusal {
    #[error("the card refused INITIALIZE: {0}")]
    CardStatus(StatusWord),
    #[error("no answer from the card to INITIALIZE")]
    NoAnswer,
    #[error("the card's INITIALIZE answer is malformed")]
    Malformed,
    #[error("card key version {0} is not accepted by this SAM")]
    UnknownKeyVersion(KeyVersion),
    #[error("S1 does not verify: the answer is not from a genuine card of this session")]
    BadS1,
    #[error("the card holds {card}, this SAM takes {sam}")]
    WrongCurrency { card: Currency, sam: Currency },
    #[error("insufficient funds: balance {balance}, price {price}")]
    InsufficientFunds { balance: Amount, price: Amount },
    #[error("SAM_TxSeq space exhausted: this SAM can authorize no more transactions")]
    TxSeqExhausted,
}

/// An operation that does not fit the transaction's state.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SamError {
    #[error("no open transaction with SAM_TxSeq {0}")]
    UnknownTx(SamTxSeq),
    #[error("transaction {0} has no command in flight")]
    NothingInFlight(SamTxSeq),
    #[error("transaction {0} is not a running time-cycle")]
    NotRunning(SamTxSeq),
    #[error("unit {k} of transaction {seq} is due at {due_at}, the clock says {now}")]
    NotDue {
        seq: SamTxSeq,
        k: Units,
        due_at: u64,
        now: u64,
    },
    #[error("transaction {seq} reached its cap of {max} units")]
    CapReached { seq: SamTxSeq, max: Units },
    #[error("transaction {0} is not pending: there is nothing for the clearing office to decide")]
    NotPending(SamTxSeq),
    #[error("the order is not valid: {0}")]
    BadOrder(&'static str),
}

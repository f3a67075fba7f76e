//! Persistent card state and its JSON file format `purse-card-state/1`.
// STUB: owned by the card helper.
use crate::commands::TxRecord;
use crate::crypto::Key;
use crate::types::{Amount, CardId, Currency, KeyVersion, Nt};

/// The card keeps exactly the 16 records with the highest NTs.
pub const LOG_CAPACITY: usize = 16;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardState {
    pub card_id: CardId,
    pub kv: KeyVersion,
    pub currency: Currency,
    pub balance: Amount,
    pub nt_last: Nt,
    pub k_pur: Key,
    pub k_tac: Key,
    /// Ascending by NT, at most [`LOG_CAPACITY`].
    pub log: Vec<TxRecord>,
}

#[derive(Debug, thiserror::Error)]
pub enum CardStateError {
    #[error("stub")]
    Stub,
}

impl CardState {
    /// The `purse-card-state/1` JSON form (holds the card keys: store it 0600).
    pub fn to_json(&self) -> String {
        String::new()
    }

    pub fn from_json(_s: &str) -> Result<CardState, CardStateError> {
        Err(CardStateError::Stub)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("card state could not be stored: {0}")]
pub struct StoreError(pub String);

/// Where the card's persistent state goes before the card answers.
pub trait CardStore {
    fn persist(&mut self, state: &CardState) -> Result<(), StoreError>;
}

/// A store that keeps nothing beyond the card's own memory (tests, in-process cards).
#[derive(Debug, Default, Clone, Copy)]
pub struct MemoryStore;

impl CardStore for MemoryStore {
    fn persist(&mut self, _state: &CardState) -> Result<(), StoreError> {
        Ok(())
    }
}

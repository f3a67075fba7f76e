//! The card's persistent state (spec 3): identity, keys, balance, `NT_last` and the
//! transaction log, with its invariants, and the [`CardStore`] every change goes through.
//!
//! The JSON file form `purse-card-state/1` lives in [`super::json`].

use thiserror::Error;

use crate::commands::TxRecord;
use crate::crypto::Key;
use crate::types::{Amount, CardId, Currency, KeyVersion, Nt};

/// The card keeps exactly the 16 records with the highest NTs.
pub const LOG_CAPACITY: usize = 16;

/// Everything the card keeps across power cycles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardState {
    pub card_id: CardId,
    pub kv: KeyVersion,
    pub currency: Currency,
    pub balance: Amount,
    pub nt_last: Nt,
    pub k_pur: Key,
    pub k_tac: Key,
    /// Ascending by NT, at most [`LOG_CAPACITY`]: the records of the highest debited NTs.
    pub log: Vec<TxRecord>,
}

/// Why a card state (usually a `purse-card-state/1` file) was refused.
///
/// Messages name fields and counts only, never a field's value, so no key material
/// can end up in a log.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CardStateError {
    #[error("card state is not valid JSON (line {line}, column {column})")]
    Syntax { line: usize, column: usize },
    #[error("card state must be a JSON object")]
    NotAnObject,
    #[error("card state format is not purse-card-state/1")]
    Format,
    #[error("card state: missing field `{0}`")]
    MissingField(&'static str),
    #[error("card state: unknown field `{0}`")]
    UnknownField(String),
    #[error("card state: `{field}` must be {expected}")]
    Field {
        field: &'static str,
        expected: &'static str,
    },
    #[error("card state: log entry {index}: {problem}")]
    LogEntry { index: usize, problem: &'static str },
    #[error("card state: log entry {index} says NT {nt} but its record holds NT {record_nt}")]
    RecordNt { index: usize, nt: Nt, record_nt: Nt },
    #[error("card state: the log holds {0} records, at most {LOG_CAPACITY}")]
    LogTooLong(usize),
    #[error("card state: log NT {nt} does not follow NT {previous} (ascending, unique)")]
    LogOrder { previous: Nt, nt: Nt },
    #[error("card state: log has a record for NT 0, which no debit uses")]
    RecordNtZero,
    #[error("card state: log has a record for NT {nt}, above nt_last {nt_last}")]
    RecordAfterNtLast { nt: Nt, nt_last: Nt },
}

impl CardState {
    /// A freshly personalised card: `NT_last` 0 and no records.
    pub fn new(
        card_id: CardId,
        kv: KeyVersion,
        currency: Currency,
        balance: Amount,
        k_pur: Key,
        k_tac: Key,
    ) -> CardState {
        CardState {
            card_id,
            kv,
            currency,
            balance,
            nt_last: Nt(0),
            k_pur,
            k_tac,
            log: Vec::new(),
        }
    }

    /// Checks the log invariants: at most [`LOG_CAPACITY`] records, strictly ascending
    /// NTs, each in `1..=nt_last` (only a debit writes a record, and it uses up its NT).
    pub fn validate(&self) -> Result<(), CardStateError> {
        if self.log.len() > LOG_CAPACITY {
            return Err(CardStateError::LogTooLong(self.log.len()));
        }
        let mut previous: Option<Nt> = None;
        for r in &self.log {
            if r.nt.0 == 0 {
                return Err(CardStateError::RecordNtZero);
            }
            if r.nt > self.nt_last {
                return Err(CardStateError::RecordAfterNtLast {
                    nt: r.nt,
                    nt_last: self.nt_last,
                });
            }
            if let Some(p) = previous.filter(|p| *p >= r.nt) {
                return Err(CardStateError::LogOrder {
                    previous: p,
                    nt: r.nt,
                });
            }
            previous = Some(r.nt);
        }
        Ok(())
    }

    /// The record `R(nt)`, if the card still holds it.
    pub fn record(&self, nt: Nt) -> Option<&TxRecord> {
        self.log.iter().find(|r| r.nt == nt)
    }

    /// Writes `R(NT)` (replacing an older version of it, as a TICK does) and keeps only
    /// the [`LOG_CAPACITY`] highest NTs.
    pub fn put_record(&mut self, record: TxRecord) {
        // A linear scan rather than a binary search: it stays correct (if not sorted)
        // even on a state that was built by hand without validation.
        match self.log.iter().position(|r| r.nt >= record.nt) {
            Some(i) if self.log[i].nt == record.nt => self.log[i] = record,
            Some(i) => self.log.insert(i, record),
            None => self.log.push(record),
        }
        let excess = self.log.len().saturating_sub(LOG_CAPACITY);
        self.log.drain(..excess);
    }
}

/// The store refused or failed to keep the new state; the card changed nothing.
#[derive(Debug, Error)]
#[error("card state could not be stored: {0}")]
pub struct StoreError(pub String);

/// Where the card's persistent state goes before the card answers (spec 3: a debit is
/// atomic; the emulator writes a new file, fsyncs and renames).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{DateTime, Mac8, SamId, SamTxSeq, Units};

    fn record(nt: u32) -> TxRecord {
        TxRecord {
            nt: Nt(nt),
            sam_id: SamId([0x5a; 8]),
            sam_tx_seq: SamTxSeq(nt),
            datetime: DateTime(1_795_000_000),
            mode: 1,
            u: Amount(10),
            units: Units(1),
            total: Amount(10),
            balance_after: Amount(990),
            s3: Mac8([3; 8]),
            tac: Mac8([4; 8]),
        }
    }

    fn card() -> CardState {
        CardState::new(
            CardId([1; 8]),
            KeyVersion(1),
            Currency::EUR,
            Amount(1000),
            Key::from_bytes([2; 16]),
            Key::from_bytes([3; 16]),
        )
    }

    #[test]
    fn log_keeps_the_16_highest_and_overwrites() {
        let mut s = card();
        for nt in 1..=20 {
            s.put_record(record(nt));
        }
        s.nt_last = Nt(20);
        assert_eq!(s.log.len(), LOG_CAPACITY);
        assert_eq!(s.log[0].nt, Nt(5));
        assert_eq!(s.log[15].nt, Nt(20));
        let mut r = record(20);
        r.units = Units(2);
        s.put_record(r.clone());
        assert_eq!(s.log.len(), LOG_CAPACITY);
        assert_eq!(s.record(Nt(20)), Some(&r));
        assert!(s.validate().is_ok());
    }

    #[test]
    fn validate_rejects_broken_logs() {
        let mut s = card();
        s.nt_last = Nt(3);
        s.log = vec![record(2), record(2)];
        assert!(matches!(s.validate(), Err(CardStateError::LogOrder { .. })));
        s.log = vec![record(4)];
        assert!(matches!(
            s.validate(),
            Err(CardStateError::RecordAfterNtLast { .. })
        ));
        s.log = vec![record(0)];
        assert_eq!(s.validate(), Err(CardStateError::RecordNtZero));
        s.nt_last = Nt(40);
        s.log = (1..=17).map(record).collect();
        assert_eq!(s.validate(), Err(CardStateError::LogTooLong(17)));
    }
}

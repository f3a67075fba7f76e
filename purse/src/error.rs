//! Errors of parsing values that come from outside the library.

use thiserror::Error;

/// A field could not be parsed at a boundary (hex, lengths, codes).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ParseError {
    #[error("{field}: expected {expected} bytes, got {got}")]
    Length {
        field: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("{0}: not valid hex")]
    Hex(&'static str),
    #[error("not an ISO 4217 currency: {0}")]
    Currency(String),
    #[error("not a purse mode: {0}")]
    Mode(u8),
}

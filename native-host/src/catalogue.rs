//! The stable error catalogue of the native-messaging protocol: one code per thing that
//! can go wrong, each with a sentence a shopper understands. Codes never change meaning;
//! new ones may be added in a later protocol version. The technical detail of a
//! particular failure travels separately (the `detail` field) and never holds secrets.

use serde::{Deserialize, Serialize};

/// An error code as it appears on the wire (`"code": "no_card"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    NoPcscService,
    NoReader,
    NoCard,
    CardRemoved,
    UnsupportedCard,
    Timeout,
    Busy,
    UserCancelled,
    AmountMismatch,
    CurrencyMismatch,
    CapExceeded,
    TooEarly,
    CommandNotAllowed,
    ProofNotAllowed,
    VersionMismatch,
    NoSession,
    CardError,
    BadFrame,
    MessageTooLarge,
    InvalidJson,
    InvalidRequest,
    UnknownCommand,
    Internal,
}

impl ErrorCode {
    /// Every code, in catalogue order.
    pub const ALL: [ErrorCode; 23] = [
        ErrorCode::NoPcscService,
        ErrorCode::NoReader,
        ErrorCode::NoCard,
        ErrorCode::CardRemoved,
        ErrorCode::UnsupportedCard,
        ErrorCode::Timeout,
        ErrorCode::Busy,
        ErrorCode::UserCancelled,
        ErrorCode::AmountMismatch,
        ErrorCode::CurrencyMismatch,
        ErrorCode::CapExceeded,
        ErrorCode::TooEarly,
        ErrorCode::CommandNotAllowed,
        ErrorCode::ProofNotAllowed,
        ErrorCode::VersionMismatch,
        ErrorCode::NoSession,
        ErrorCode::CardError,
        ErrorCode::BadFrame,
        ErrorCode::MessageTooLarge,
        ErrorCode::InvalidJson,
        ErrorCode::InvalidRequest,
        ErrorCode::UnknownCommand,
        ErrorCode::Internal,
    ];

    /// The wire name, e.g. `no_card`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NoPcscService => "no_pcsc_service",
            ErrorCode::NoReader => "no_reader",
            ErrorCode::NoCard => "no_card",
            ErrorCode::CardRemoved => "card_removed",
            ErrorCode::UnsupportedCard => "unsupported_card",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Busy => "busy",
            ErrorCode::UserCancelled => "user_cancelled",
            ErrorCode::AmountMismatch => "amount_mismatch",
            ErrorCode::CurrencyMismatch => "currency_mismatch",
            ErrorCode::CapExceeded => "cap_exceeded",
            ErrorCode::TooEarly => "too_early",
            ErrorCode::CommandNotAllowed => "command_not_allowed",
            ErrorCode::ProofNotAllowed => "proof_not_allowed",
            ErrorCode::VersionMismatch => "version_mismatch",
            ErrorCode::NoSession => "no_session",
            ErrorCode::CardError => "card_error",
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::MessageTooLarge => "message_too_large",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::UnknownCommand => "unknown_command",
            ErrorCode::Internal => "internal",
        }
    }

    /// What the shopper is told.
    pub fn sentence(self) -> &'static str {
        match self {
            ErrorCode::NoPcscService => {
                "The smart-card service of this computer is not running. Start it (pcscd) and try again."
            }
            ErrorCode::NoReader => "No card reader was found. Connect your card reader and try again.",
            ErrorCode::NoCard => "There is no purse card in the reader. Insert your purse card.",
            ErrorCode::CardRemoved => {
                "The card left the reader before the payment was finished. Put it back: the shop will check with the card whether anything was charged."
            }
            ErrorCode::UnsupportedCard => "This card is not a purse card that can pay here.",
            ErrorCode::Timeout => "This took too long and was stopped. Please try again.",
            ErrorCode::Busy => {
                "The card is busy with another payment. Finish or cancel that payment first."
            }
            ErrorCode::UserCancelled => "You cancelled the payment. Nothing more will be charged.",
            ErrorCode::AmountMismatch => {
                "The shop asked your card for a different amount than the one you confirmed. It was blocked and nothing was charged for it."
            }
            ErrorCode::CurrencyMismatch => {
                "Your card holds a different currency than the payment asks for."
            }
            ErrorCode::CapExceeded => {
                "The shop asked for more than you confirmed. It was blocked and nothing more was charged."
            }
            ErrorCode::TooEarly => {
                "The shop asked for the next unit before its time was up. It was blocked and nothing more was charged."
            }
            ErrorCode::ProofNotAllowed => {
                "The shop asked to read a record on your card that is not about its own payment. It was blocked: your other payments stay private."
            }
            ErrorCode::CommandNotAllowed => {
                "The shop sent your card a command that is not part of a purse payment. It was blocked."
            }
            ErrorCode::VersionMismatch => {
                "The browser extension and the card-reader program on this computer do not match. Please update both."
            }
            ErrorCode::NoSession => "There is no payment in progress for this request.",
            ErrorCode::CardError => {
                "The card reader could not talk to the card. Check the card and the reader, and try again."
            }
            ErrorCode::BadFrame => {
                "The browser's message to the card-reader program arrived cut off or garbled."
            }
            ErrorCode::MessageTooLarge => {
                "The browser's message to the card-reader program was too large."
            }
            ErrorCode::InvalidJson => "The browser's message to the card-reader program was not readable.",
            ErrorCode::InvalidRequest => {
                "The browser's request to the card-reader program was incomplete or wrong."
            }
            ErrorCode::UnknownCommand => {
                "The browser asked the card-reader program for something it does not know. Please update it."
            }
            ErrorCode::Internal => "Something went wrong in the card-reader program on this computer.",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One error: its code and the technical detail of this occurrence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub code: ErrorCode,
    pub detail: String,
}

impl Failure {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Failure {
        Failure {
            code,
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl std::error::Error for Failure {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert!(seen.insert(c.as_str()), "{c} twice");
            assert!(c.sentence().ends_with('.'), "{c}");
        }
    }
}

//! The hotlist: the flagged cards, signed with the office's Ed25519 key so that a shop
//! can check it with the office's public key from its configuration, whoever served it.
//!
//! The signed document `purse-hotlist/1` is shared with the shops and lives in
//! [`purse::hotlist`]; the office signs it (`GET /v1/hotlist`), this module only names it
//! for the office's callers.

pub use purse::hotlist::{message, sign, verify, Hotlist, FORMAT};

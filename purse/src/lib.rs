//! The purse protocol v1, sans-IO.
//!
//! Pure functions and state machines: the ISO 7816 APDU codec ([`apdu`]), the purse
//! command set ([`commands`]), AES-CMAC crypto ([`crypto`], [`macs`]), the card applet
//! ([`card`]), the SAM ([`sam`]), the surrogate that turns SAM output into card commands
//! ([`surrogate`]), settlement batches ([`settlement`]) and their clearing ([`clearing`]).
//! No I/O happens here: the callers (card emulator, native host, shop plugin, issuer
//! tool) own sockets, readers, files and databases.

pub mod apdu;
pub mod commands;
pub mod crypto;
pub mod error;
pub mod hotlist;
pub mod keys;
pub mod macs;
pub mod types;

pub use apdu::{ApduError, StatusWord};
pub use crypto::Key;
pub use error::ParseError;
pub use types::*;
pub mod card;
pub mod clearing;
pub mod sam;
pub mod sam_applet;
pub mod settlement;
pub mod surrogate;

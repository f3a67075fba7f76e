//! The issuer / clearing-office side: the parts of the system that stand in for the card
//! issuer (keys, card and SAM personalisation, clearing) on this machine. The emulated
//! cards themselves live in the `card-emulators` crate.

/// Key, card and batch files (one implementation for every binary).
pub use secure_files as files;
pub mod office;
pub mod pcsc_link;
pub mod sam_terminal;

//! The issuer / clearing-office side and the card emulator: the parts of the system that
//! stand in for the card issuer and for a physical card on this machine.

pub mod emulator;
/// Key, card and batch files (one implementation for every binary).
pub use secure_files as files;
pub mod office;
pub mod pcsc_link;

//! The issuer / clearing-office side and the card emulator: the parts of the system that
//! stand in for the card issuer and for a physical card on this machine.

pub mod emulator;
pub mod files;
pub mod office;
pub mod pcsc_link;

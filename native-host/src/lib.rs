//! The browser's native-messaging host: the shopper's side of a purse payment.
//!
//! The extension starts `native-host` and speaks native messaging to it on stdin/stdout.
//! The host answers questions about the reader and card, and relays the shop's purse
//! APDUs to the card under the amount guard: only the purse application, only what the
//! shopper confirmed.
//!
//! Sans-IO core: [`frame`] (native-messaging framing), [`message`] (the versioned
//! protocol), [`catalogue`] (the error codes), [`guard`] (which APDUs pass),
//! [`session`] (one held card), [`t0`] (a T=0 card's response chaining). I/O shell: [`serve`] (stdin/stdout loop), [`readers`]
//! (PC/SC), [`held`] (answers kept until acknowledged), [`manifest`] and [`install`]
//! (the browsers' host manifests), [`doctor`].

pub mod catalogue;
pub mod doctor;
pub mod frame;
pub mod guard;
pub mod held;
pub mod install;
pub mod manifest;
pub mod message;
pub mod readers;
pub mod serve;
pub mod session;
pub mod t0;

//! The chip cards of the system as virtual cards behind vsmartcard's vpcd: the purse card
//! (the applet [`purse::card::Card`], binary `card-emulator`) and, sharing the same
//! plumbing, the SAM card (binary `sam-emulator`). Each sits in one of pcscd's "Virtual
//! PCD" readers, keeps its state in a 0600 file written before it answers, and has a
//! control socket that lets tests insert, remove and pull the card at chosen moments.
//!
//! Modules: [`applet`] (what the loop runs), [`purse_card`] and [`sam_card`] (the two
//! cards), [`framing`] (the vpcd wire format, pure), [`vpcd`] (the TCP link and its
//! latency-critical socket options), [`run`] (the loop), [`control`] (the test control
//! socket), [`wake`] (waking the loop from threads and signals), [`store`] (the state
//! files), [`sam_store`] (the SAM card file and its journal), [`atr`] (the ATRs), [`t0`] (answering as a T=0 card, pure), [`cli`] (the
//! binaries' shared options).

pub mod applet;
pub mod atr;
pub mod cli;
pub mod control;
pub mod framing;
pub mod purse_card;
pub mod run;
pub mod sam_card;
pub mod sam_store;
pub mod store;
pub mod t0;
pub mod vpcd;
pub mod wake;

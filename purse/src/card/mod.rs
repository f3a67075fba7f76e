//! The purse card applet (spec sections 3 and 4): a pure APDU-in / APDU-out state
//! machine. Persistent state ([`CardState`]) is kept apart from the volatile session;
//! every change of persistent state goes through a [`CardStore`] before the card answers.

mod applet;
mod json;
mod session;
mod state;

pub use applet::Card;
pub use json::CARD_STATE_FORMAT;
pub use state::{CardState, CardStateError, CardStore, MemoryStore, StoreError, LOG_CAPACITY};

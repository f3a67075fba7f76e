//! The issuer and clearing-office operations behind the `purse-issuer` tool: master keys
//! per key version ([`keys`]), SAM key files ([`keys`]), card state files ([`cards`]) and
//! the clearing of settlement batches against a local clearing state ([`clearing`]).
//!
//! Each public function does the file work of one subcommand and returns what there is
//! to report; the binary parses arguments and prints. Every file that holds keys, a card
//! or the clearing state is written atomically with mode 0600 and read only when no
//! other user can read it ([`crate::files`]); nothing here ever formats a key.

pub mod cards;
pub mod clearing;
pub mod keys;
mod lockfile;

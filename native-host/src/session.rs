//! A session: one card in one reader, held by this host for a payment or a recovery,
//! with the guard that decides what reaches the card. Pure state; the PC/SC handle that
//! keeps the card lives with the I/O shell ([`crate::serve`]).

use std::time::Duration;

use purse::commands::{CardCommand, SelectInfo};

use crate::guard::{Guard, Purpose};
use crate::held::{HeldCommand, HeldResponse};
use crate::message::reply::SessionView;

pub struct Session {
    pub id: String,
    pub reader: String,
    /// The card's SELECT answer when the session opened.
    pub card: SelectInfo,
    pub guard: Guard,
    /// The session ends when no request for it came for this long.
    pub idle_timeout: Duration,
}

impl Session {
    pub fn new(
        id: String,
        reader: String,
        card: SelectInfo,
        purpose: Purpose,
        idle_timeout: Duration,
    ) -> Session {
        let guard = Guard::new(purpose, Some(card.kv));
        Session {
            id,
            reader,
            card,
            guard,
            idle_timeout,
        }
    }

    pub fn purpose_name(&self) -> &'static str {
        purpose_name(self.guard.purpose())
    }

    pub fn view(&self) -> SessionView {
        SessionView {
            session: self.id.clone(),
            purpose: self.purpose_name(),
            reader: self.reader.clone(),
        }
    }

    /// The record to keep for the card's answer to `cmd`, if it is a DEBIT or TICK.
    pub fn held_record(
        &self,
        cmd: &CardCommand,
        apdu: &[u8],
        response: &[u8],
        held_id: String,
        at: u64,
    ) -> Option<HeldResponse> {
        let (command, k) = match cmd {
            CardCommand::Debit(_) => (HeldCommand::Debit, 1),
            CardCommand::Tick(t) => (HeldCommand::Tick, t.k.0),
            _ => return None,
        };
        Some(HeldResponse {
            held_id,
            session: self.id.clone(),
            card_id: self.card.card_id.to_hex(),
            nt: self.guard.purchase_nt().map(|n| n.0),
            command,
            k,
            command_apdu: hex::encode_upper(apdu),
            response: hex::encode_upper(response),
            at,
        })
    }
}

pub fn purpose_name(p: Purpose) -> &'static str {
    match p {
        Purpose::Payment(_) => "payment",
        Purpose::Recovery { .. } => "recovery",
    }
}

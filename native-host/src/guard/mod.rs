//! The APDU guard, sans-IO: which commands from the shop may reach the shopper's card.
//!
//! Only the purse application passes: SELECT of the purse AID, INITIALIZE, DEBIT, DEBIT
//! TICK and GET TRANSACTION PROOF, structurally valid (the one decoder of
//! `purse::commands`). A payment session carries what the shopper confirmed (mode, unit
//! amount, cap, currency, a time-cycle's period): every INITIALIZE must ask exactly that,
//! the DEBITs and TICKs charged (or possibly charged, when their answer was lost) never
//! exceed the cap, however often the shop re-initializes, and a time-cycle's units come
//! no faster than the confirmed period ([`pace`]). A recovery session moves no money:
//! only SELECT, status-only INITIALIZE (mode 00, U = 0, MaxUnits = 0) and GET
//! TRANSACTION PROOF of the one record the recovery is about ([`proof`]).
//!
//! The guard follows the card's session (spec 3) from the answers it sees, so a DEBIT or
//! TICK passes only inside a session that a confirmed INITIALIZE opened.

mod pace;
mod proof;
mod refusal;

use std::time::Instant;

use purse::commands::{CardCommand, InitializeResponse, SelectInfo};
use purse::{Amount, Currency, KeyVersion, Mode, Nt, StatusWord, Units, AID};

pub use pace::{Pace, Period, IDLE_MARGIN, MAX_PERIOD_SECS, TOLERANCE};
use proof::StatusSeen;
pub use refusal::Refusal;

/// What the shopper confirmed for a payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Confirmed {
    pub mode: Mode,
    pub unit_amount: Amount,
    pub max_units: Units,
    pub currency: Currency,
    /// A time-cycle's period (one unit per period); `None` for a single purchase.
    pub period: Option<Period>,
}

impl Confirmed {
    /// A confirmation is for a purchase (single or time-cycle) with amounts the card
    /// would accept.
    pub fn validate(&self) -> Result<(), String> {
        if self.mode == Mode::StatusOnly {
            return Err("a payment is single or time_cycle".into());
        }
        if !self.mode.accepts(self.unit_amount, self.max_units) {
            return Err(format!(
                "mode {:?} does not take unit_amount {} with max_units {}",
                self.mode, self.unit_amount, self.max_units
            ));
        }
        match (self.mode, self.period) {
            (Mode::TimeCycle, None) => Err("a time_cycle needs its period_seconds".into()),
            (Mode::Single, Some(_)) => Err("a single purchase has no period_seconds".into()),
            _ => Ok(()),
        }
    }
}

/// Why a session exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Payment(Confirmed),
    /// Status-only INITIALIZE and the proof of transaction `nt` (the NT of the payment
    /// whose answer was lost), for the shop's recovery of that payment.
    Recovery {
        nt: Nt,
    },
}

/// What the card made of the last command: its response APDU, or no answer at all
/// (card pulled, reader failure). A failed exchange is never a status word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer<'a> {
    Response(&'a [u8]),
    Failed,
}

impl Answer<'_> {
    fn split(&self) -> Option<(&[u8], StatusWord)> {
        match self {
            Answer::Response([data @ .., a, b]) => {
                Some((data, StatusWord(u16::from_be_bytes([*a, *b]))))
            }
            _ => None,
        }
    }
}

/// The card's session as far as the guard has seen it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CardSession {
    None,
    Purchase { mode: Mode, debited: bool, nt: Nt },
    StatusOnly,
}

/// What a relayed command did to the money.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Nothing charged.
    None,
    /// The card confirmed one unit (a DEBIT or TICK answered 9000).
    Charged,
    /// A DEBIT or TICK whose answer was lost: maybe charged.
    InDoubt,
}

/// The guard of one session.
#[derive(Clone, Debug)]
pub struct Guard {
    purpose: Purpose,
    card_kv: Option<KeyVersion>,
    card_session: CardSession,
    charged: u32,
    in_doubt: u32,
    pace: Pace,
    /// From the last status-only INITIALIZE the card answered (recovery sessions).
    status_seen: Option<StatusSeen>,
}

impl Guard {
    /// A guard for a card of key version `card_kv` (from the host's own SELECT).
    pub fn new(purpose: Purpose, card_kv: Option<KeyVersion>) -> Guard {
        Guard {
            purpose,
            card_kv,
            card_session: CardSession::None,
            charged: 0,
            in_doubt: 0,
            pace: Pace::default(),
            status_seen: None,
        }
    }

    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    /// Units the card confirmed in this session.
    pub fn charged(&self) -> u32 {
        self.charged
    }

    /// Units whose answer was lost.
    pub fn in_doubt(&self) -> u32 {
        self.in_doubt
    }

    /// The NT of the purchase the card is in, if any (for the held responses).
    pub fn purchase_nt(&self) -> Option<Nt> {
        match self.card_session {
            CardSession::Purchase { nt, .. } => Some(nt),
            _ => None,
        }
    }

    /// Decides whether `apdu` may go to the card at `now`.
    pub fn check(&self, apdu: &[u8], now: Instant) -> Result<CardCommand, Refusal> {
        let cmd = CardCommand::decode(apdu, self.card_kv).map_err(Refusal::NotPurse)?;
        match (&cmd, self.purpose) {
            (CardCommand::Select { aid }, _) => {
                if *aid != AID {
                    return Err(Refusal::ForeignAid(hex::encode_upper(aid)));
                }
            }
            (CardCommand::GetProof { nt }, p) => proof::check(p, self.status_seen, *nt)?,
            (CardCommand::Initialize(init), Purpose::Recovery { .. }) => {
                if init.mode != Mode::StatusOnly || !init.mode.accepts(init.u, init.max_units) {
                    return Err(Refusal::ChargingInRecovery);
                }
            }
            (CardCommand::Debit(_) | CardCommand::Tick(_), Purpose::Recovery { .. }) => {
                return Err(Refusal::DebitInRecovery);
            }
            (CardCommand::Initialize(init), Purpose::Payment(c)) => {
                if init.mode == Mode::StatusOnly {
                    return Err(Refusal::StatusOnlyInPayment);
                }
                if init.mode != c.mode {
                    return Err(Refusal::ModeMismatch {
                        asked: init.mode,
                        confirmed: c.mode,
                    });
                }
                if init.u != c.unit_amount {
                    return Err(Refusal::AmountMismatch {
                        asked: init.u,
                        confirmed: c.unit_amount,
                    });
                }
                if init.max_units != c.max_units {
                    return Err(Refusal::CapMismatch {
                        asked: init.max_units,
                        confirmed: c.max_units,
                    });
                }
            }
            (CardCommand::Debit(_), Purpose::Payment(c)) => {
                if !matches!(
                    self.card_session,
                    CardSession::Purchase { debited: false, .. }
                ) {
                    return Err(Refusal::OutOfSession("DEBIT"));
                }
                self.room_for_one_more(c)?;
                self.on_pace(c, 0, now)?;
            }
            (CardCommand::Tick(t), Purpose::Payment(c)) => {
                if t.k > c.max_units {
                    return Err(Refusal::TickBeyondCap {
                        k: t.k,
                        cap: c.max_units,
                    });
                }
                if !matches!(
                    self.card_session,
                    CardSession::Purchase {
                        mode: Mode::TimeCycle,
                        debited: true,
                        ..
                    }
                ) {
                    return Err(Refusal::OutOfSession("TICK"));
                }
                self.room_for_one_more(c)?;
                self.on_pace(c, u32::from(t.k.0), now)?;
            }
        }
        Ok(cmd)
    }

    fn room_for_one_more(&self, c: Confirmed) -> Result<(), Refusal> {
        let spent = self.charged + self.in_doubt;
        if spent >= u32::from(c.max_units.0) {
            return Err(Refusal::CapReached {
                spent,
                cap: c.max_units,
            });
        }
        Ok(())
    }

    /// A time-cycle's next unit (the session's n-th, or the TICK's k if higher) is not
    /// due before its time.
    fn on_pace(&self, c: Confirmed, k: u32, now: Instant) -> Result<(), Refusal> {
        let Some(period) = c.period else {
            return Ok(());
        };
        let unit = (self.charged + self.in_doubt + 1).max(k);
        self.pace
            .check(period, unit, now)
            .map_err(|wait| Refusal::TooEarly {
                unit,
                wait,
                period: period.secs(),
            })
    }

    /// Whether the card's `response` to `cmd` may be relayed: a record that GET
    /// TRANSACTION PROOF read is withheld unless it is the recovery's own.
    pub fn screen(&self, cmd: &CardCommand, response: &[u8]) -> Result<(), Refusal> {
        let CardCommand::GetProof { nt } = cmd else {
            return Ok(());
        };
        match Answer::Response(response).split() {
            Some((data, sw)) if sw.is_ok() => proof::screen(self.status_seen, *nt, data),
            _ => Ok(()),
        }
    }

    /// Follows the card's session and the money after `cmd` (which [`Guard::check`]
    /// passed) got `answer` at `now`.
    pub fn observe(&mut self, cmd: &CardCommand, answer: Answer<'_>, now: Instant) -> Effect {
        let effect = self.follow(cmd, answer);
        if effect != Effect::None {
            self.pace.charged(now);
        }
        effect
    }

    fn follow(&mut self, cmd: &CardCommand, answer: Answer<'_>) -> Effect {
        let split = answer.split();
        let ok = matches!(split, Some((_, sw)) if sw.is_ok());
        let data = split.map(|(d, _)| d).unwrap_or(&[]);
        let charging = matches!(cmd, CardCommand::Debit(_) | CardCommand::Tick(_));
        if matches!(cmd, CardCommand::Initialize(_)) {
            // Only this INITIALIZE's answer, when it is a status-only one, counts.
            self.status_seen = None;
        }
        if split.is_none() {
            // No answer: whatever the card did is unknown, its session too.
            self.card_session = CardSession::None;
            if charging {
                self.in_doubt += 1;
                return Effect::InDoubt;
            }
            return Effect::None;
        }
        if !ok {
            // Every status word other than 9000 ends the card's session; none debits.
            self.card_session = CardSession::None;
            return Effect::None;
        }
        match cmd {
            CardCommand::Select { .. } => {
                if let Ok(info) = SelectInfo::parse(data) {
                    self.card_kv = Some(info.kv);
                }
                self.card_session = CardSession::None;
                Effect::None
            }
            CardCommand::Initialize(init) => {
                let answer = InitializeResponse::parse(data);
                if let (Mode::StatusOnly, Ok(r)) = (init.mode, &answer) {
                    self.status_seen = Some(StatusSeen {
                        sam_id: init.sam_id,
                        card_nt: r.nt,
                    });
                }
                self.card_session = match (init.mode, answer) {
                    (Mode::StatusOnly, _) => CardSession::StatusOnly,
                    (mode, Ok(r)) => CardSession::Purchase {
                        mode,
                        debited: false,
                        nt: r.nt,
                    },
                    // A 9000 with a malformed body: treat the session as unknown.
                    (_, Err(_)) => CardSession::None,
                };
                Effect::None
            }
            CardCommand::Debit(_) | CardCommand::Tick(_) => {
                if let CardSession::Purchase { debited, .. } = &mut self.card_session {
                    *debited = true;
                }
                self.charged += 1;
                Effect::Charged
            }
            CardCommand::GetProof { .. } => Effect::None,
        }
    }
}

#[cfg(test)]
mod tests;

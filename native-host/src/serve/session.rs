//! A session in the shell: the card connected exclusively and held in a PC/SC
//! transaction from `open_session` until it closes (by request, `cancel`, idle timeout,
//! the card leaving, or the browser going away). Every APDU passes the guard before it
//! reaches the card; every DEBIT/TICK answer is kept before it is relayed.

use std::io::Write;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use pcsc::Disposition;

use super::{log, now_secs, random_id, Exit, Flow, Host, Inbound};
use crate::catalogue::{ErrorCode, Failure};
use crate::guard::{Answer, Purpose, Refusal};
use crate::message::reply::{CloseReason, Reply};
use crate::message::request::{Parsed, Request};
use crate::message::{CardView, Id};
use crate::readers::{select_purse, transmit};
use crate::session::{purpose_name, Session};

/// How a session's loop ended.
enum End {
    /// Back to the main loop, with what to tell the extension once the card is released
    /// (the reply is sent only after the transaction ended and the card was disconnected,
    /// so a "closed" reply means the card is free for the next client).
    Closed(Option<Id>, Reply),
    /// The host must exit.
    Exit(Exit),
}

impl<W: Write> Host<W> {
    pub(super) fn open_session(
        &mut self,
        id: Option<Id>,
        reader: Option<&str>,
        purpose: Purpose,
        idle_timeout: Duration,
    ) -> Flow {
        let reader = match self.pcsc.choose(reader) {
            Ok(r) => r,
            Err(f) => return self.fail(id, &f),
        };
        let mut connected = match self.pcsc.connect(&reader, true) {
            Ok(c) => c,
            Err(f) => return self.fail(id, &f),
        };
        let Some(card) = connected.card_mut() else {
            return self.fail(id, &Failure::new(ErrorCode::Internal, "card handle gone"));
        };
        // Held for the whole session: nobody else's command can come between ours.
        let tx = match card.transaction() {
            Ok(tx) => tx,
            Err(e) => return self.fail(id, &crate::readers::failure(e, "SCardBeginTransaction")),
        };
        // Our own SELECT ends whatever card session someone left behind.
        let info = match select_purse(&tx) {
            Ok(info) => info,
            Err(f) => return self.fail(id, &f),
        };
        if let Purpose::Payment(c) = purpose {
            if c.currency != info.currency {
                let f = Failure::new(
                    ErrorCode::CurrencyMismatch,
                    format!(
                        "the card holds {}, the payment is in {}",
                        info.currency, c.currency
                    ),
                );
                return self.fail(id, &f);
            }
        }
        let mut session = Session::new(random_id(), reader, info, purpose, idle_timeout);
        log!(
            "session {} opened for {} on '{}' (card {})",
            session.id,
            purpose_name(purpose),
            session.reader,
            session.card.card_id
        );
        let opened = Reply::SessionOpened {
            session: session.id.clone(),
            purpose: purpose_name(purpose),
            reader: session.reader.clone(),
            card: CardView::from(&session.card),
            idle_timeout_ms: u64::try_from(session.idle_timeout.as_millis()).unwrap_or(u64::MAX),
        };
        if let Flow::Exit(e) = self.send(id, opened) {
            return Flow::Exit(e);
        }
        self.busy = Some(session.view());
        let end = self.run_session(&tx, &mut session);
        self.busy = None;
        let _ = tx.end(Disposition::LeaveCard);
        drop(connected);
        log!(
            "session {} ended: {} unit(s) charged, {} in doubt",
            session.id,
            session.guard.charged(),
            session.guard.in_doubt()
        );
        match end {
            End::Closed(id, reply) => self.send(id, reply),
            End::Exit(e) => Flow::Exit(e),
        }
    }

    fn run_session(&mut self, card: &pcsc::Card, session: &mut Session) -> End {
        loop {
            let inbound = match self.rx.recv_timeout(session.idle_timeout) {
                Ok(i) => i,
                Err(RecvTimeoutError::Timeout) => {
                    log!(
                        "session {}: idle for {:?}",
                        session.id,
                        session.idle_timeout
                    );
                    return self.closed(None, session, CloseReason::Timeout);
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return End::Exit(Exit::Broken("the input thread stopped".into()))
                }
            };
            let Parsed { id, request } = match inbound {
                Inbound::Message(p) => p,
                other => match self.transport(other) {
                    Flow::Continue => continue,
                    Flow::Exit(e) => return End::Exit(e),
                },
            };
            let flow = match request {
                Err(f) => self.fail(id, &f),
                Ok(Request::Apdu { session: s, apdu }) if s == session.id => {
                    match self.relay(id, card, session, &apdu) {
                        Some(end) => return end,
                        None => continue,
                    }
                }
                Ok(Request::CloseSession { session: s }) if s == session.id => {
                    return self.closed(id, session, CloseReason::Closed);
                }
                Ok(Request::Cancel) => {
                    self.hook.clear();
                    log!("session {}: cancelled by the shopper", session.id);
                    return End::Closed(
                        id,
                        Reply::Cancelled {
                            session: Some(session.id.clone()),
                        },
                    );
                }
                Ok(r) => self.common(id, r),
            };
            if let Flow::Exit(e) = flow {
                return End::Exit(e);
            }
        }
    }

    /// The session ended: the extension is told (a reply to `id`, or an event) once the
    /// card is released.
    fn closed(&mut self, id: Option<Id>, session: &Session, reason: CloseReason) -> End {
        End::Closed(
            id,
            Reply::SessionClosed {
                session: session.id.clone(),
                reason,
            },
        )
    }

    /// One APDU through the guard to the card. `Some` when the session is over.
    fn relay(
        &mut self,
        id: Option<Id>,
        card: &pcsc::Card,
        session: &mut Session,
        apdu: &[u8],
    ) -> Option<End> {
        let ins = apdu.get(1).copied().unwrap_or(0);
        let cmd = match session.guard.check(apdu, Instant::now()) {
            Ok(cmd) => cmd,
            Err(refusal) => return self.refused(id, session, ins, &refusal),
        };
        match transmit(card, apdu) {
            Ok(response) => {
                session
                    .guard
                    .observe(&cmd, Answer::Response(&response), Instant::now());
                log!(
                    "session {}: INS {ins:02X} -> {}",
                    session.id,
                    hex::encode_upper(&response[response.len().saturating_sub(2)..])
                );
                if let Err(refusal) = session.guard.screen(&cmd, &response) {
                    return self.refused(id, session, ins, &refusal);
                }
                let held_id = self.keep(session, &cmd, apdu, &response);
                let reply = Reply::Apdu {
                    session: session.id.clone(),
                    response: hex::encode_upper(&response),
                    held_id,
                };
                match self.send(id, reply) {
                    Flow::Continue => None,
                    Flow::Exit(e) => Some(End::Exit(e)),
                }
            }
            Err(f) => {
                // A failed exchange, never a status word: the shop's SAM treats it as a
                // lost answer. The card session is gone with it: so is ours.
                session.guard.observe(&cmd, Answer::Failed, Instant::now());
                log!("session {}: INS {ins:02X} failed: {f}", session.id);
                if let Flow::Exit(e) = self.fail(id, &f) {
                    return Some(End::Exit(e));
                }
                let reason = match f.code {
                    ErrorCode::CardRemoved | ErrorCode::NoCard => CloseReason::CardRemoved,
                    _ => CloseReason::CardError,
                };
                Some(self.closed(None, session, reason))
            }
        }
    }

    /// Tells the extension what the guard refused (a command, or a card answer it
    /// withheld); the session goes on.
    fn refused(
        &mut self,
        id: Option<Id>,
        session: &Session,
        ins: u8,
        refusal: &Refusal,
    ) -> Option<End> {
        log!("session {}: refused INS {ins:02X}: {refusal}", session.id);
        let f = Failure::new(refusal.code(), refusal.to_string());
        match self.send(id, Reply::error(&f)) {
            Flow::Continue => None,
            Flow::Exit(e) => Some(End::Exit(e)),
        }
    }

    /// Keeps a DEBIT/TICK answer until the extension acknowledges it. A failure to keep
    /// it never withholds the answer: the shop's recovery covers a lost one.
    fn keep(
        &mut self,
        session: &Session,
        cmd: &purse::commands::CardCommand,
        apdu: &[u8],
        response: &[u8],
    ) -> Option<String> {
        let store = self.held.as_ref()?;
        let record = session.held_record(cmd, apdu, response, random_id(), now_secs())?;
        let held_id = record.held_id.clone();
        match store.add(record) {
            Ok(()) => Some(held_id),
            Err(e) => {
                log!("could not keep the card's answer: {e}");
                None
            }
        }
    }
}

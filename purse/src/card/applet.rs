//! The card applet: one APDU in, one response out (spec 3 and 4). It owns the volatile
//! state (selection and session), the status-word precedence beyond the structural checks
//! of [`CardCommand::decode`], the session-ending rules, and the commit of a charge.

use super::session::{Charge, Session};
use super::state::{CardState, CardStore};
use crate::apdu::{Response, StatusWord};
use crate::commands::{is_select_class, CardCommand, InitializeCmd, SelectInfo};
use crate::types::{Nt, Rnd, AID, APP_VERSION};

/// What the card holds in RAM only: lost on reset and power-off.
#[derive(Debug, Default)]
struct Volatile {
    selected: bool,
    session: Option<Session>,
}

/// The purse applet of one card.
pub struct Card {
    state: CardState,
    volatile: Volatile,
    rng: Box<dyn FnMut() -> Rnd + Send>,
}

impl core::fmt::Debug for Card {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Card")
            .field("state", &self.state)
            .field("volatile", &self.volatile)
            .finish_non_exhaustive()
    }
}

impl Card {
    /// A card with `state`, just powered on: nothing selected. `rng` gives `RND_C`; it is
    /// drawn once per successful INITIALIZE and never otherwise.
    pub fn new(state: CardState, rng: Box<dyn FnMut() -> Rnd + Send>) -> Card {
        Card {
            state,
            volatile: Volatile::default(),
            rng,
        }
    }

    /// The persistent state, as last persisted.
    pub fn state(&self) -> &CardState {
        &self.state
    }

    /// Whether the purse is selected (diagnostics and tests).
    pub fn is_selected(&self) -> bool {
        self.volatile.selected
    }

    /// Whether a purchase session is open (diagnostics and tests).
    pub fn has_session(&self) -> bool {
        self.volatile.session.is_some()
    }

    /// Reset or power cycle: the session ends and nothing is selected.
    pub fn reset(&mut self) {
        self.volatile = Volatile::default();
    }

    /// Processes one command APDU and returns `data || SW`. A charge is persisted through
    /// `store` before it takes effect; if that fails the card answers 6581, unchanged.
    pub fn process(&mut self, apdu: &[u8], store: &mut dyn CardStore) -> Vec<u8> {
        let select_class = is_select_class(apdu);
        if select_class {
            // Every 00 A4 ends the session; only a 9000 leaves the purse selected.
            self.volatile.session = None;
        }
        let response = self.handle(apdu, store);
        if select_class {
            self.volatile.selected = response.sw.is_ok();
        }
        if !response.sw.is_ok() {
            self.volatile.session = None;
        }
        response.to_bytes()
    }

    fn handle(&mut self, apdu: &[u8], store: &mut dyn CardStore) -> Response {
        // 6E00, 6D00, 6A86 (P2 against the card's own KV) and 6700, in that order.
        let cmd = match CardCommand::decode(apdu, Some(self.state.kv)) {
            Ok(cmd) => cmd,
            Err(sw) => return Response::status(sw),
        };
        let charge = match cmd {
            CardCommand::Select { aid } => return self.select(&aid),
            // Every other command needs the purse selected: 6985 before any data check.
            _ if !self.volatile.selected => Err(StatusWord::CONDITIONS_NOT_SATISFIED),
            CardCommand::Initialize(c) => return self.initialize(&c),
            CardCommand::GetProof { nt } => return self.get_proof(nt),
            CardCommand::Debit(c) => self.session().and_then(|s| s.debit(&c, &self.state)),
            CardCommand::Tick(c) => self.session().and_then(|s| s.tick(&c, &self.state)),
        };
        match charge {
            Ok(charge) => self.commit(charge, store),
            Err(sw) => Response::status(sw),
        }
    }

    fn select(&self, aid: &[u8; 7]) -> Response {
        if *aid != AID {
            return Response::status(StatusWord::FILE_NOT_FOUND);
        }
        let info = SelectInfo {
            app_version: APP_VERSION,
            kv: self.state.kv,
            card_id: self.state.card_id,
            currency: self.state.currency,
            balance: self.state.balance,
            nt_last: self.state.nt_last,
        };
        Response::ok(info.encode())
    }

    /// INITIALIZE: 6985 (NT exhausted) before 6A80 (mode and data). Only then is `RND_C`
    /// drawn; `NT_last` stays as it is, an NT is used up by a debit only.
    fn initialize(&mut self, cmd: &InitializeCmd) -> Response {
        let Some(nt) = self.state.nt_last.next() else {
            return Response::status(StatusWord::CONDITIONS_NOT_SATISFIED);
        };
        if !cmd.mode.accepts(cmd.u, cmd.max_units) {
            return Response::status(StatusWord::WRONG_DATA);
        }
        let rnd_c = (self.rng)();
        let (session, response) = Session::open(&self.state, cmd, nt, rnd_c);
        self.volatile.session = Some(session);
        Response::ok(response.encode())
    }

    /// GET TRANSACTION PROOF: leaves the session as it is when it succeeds.
    fn get_proof(&self, nt: Nt) -> Response {
        match self.state.record(nt) {
            Some(r) => Response::ok(r.encode()),
            None => Response::status(StatusWord::RECORD_NOT_FOUND),
        }
    }

    fn session(&self) -> Result<&Session, StatusWord> {
        self.volatile
            .session
            .as_ref()
            .ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)
    }

    /// Balance, `NT_last` and `R(NT)` change together or not at all: the new state is
    /// persisted first and only then becomes the card's.
    fn commit(&mut self, charge: Charge, store: &mut dyn CardStore) -> Response {
        let mut next = self.state.clone();
        next.balance = charge.record.balance_after;
        next.nt_last = charge.record.nt;
        next.put_record(charge.record);
        if store.persist(&next).is_err() {
            return Response::status(StatusWord::MEMORY_FAILURE);
        }
        self.state = next;
        if let Some(s) = self.volatile.session.as_mut() {
            s.charged(charge.debited);
        }
        Response::ok(charge.response.encode())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::state::{MemoryStore, StoreError};
    use crate::commands::{DebitCmd, InitializeResponse};
    use crate::crypto::Key;
    use crate::macs::{s2, session_key, SessionParams};
    use crate::types::{
        Amount, CardId, Currency, DateTime, KeyVersion, Mode, Rnd, SamId, SamTxSeq, Units,
    };

    struct Failing;
    impl CardStore for Failing {
        fn persist(&mut self, _: &CardState) -> Result<(), StoreError> {
            Err(StoreError("read-only".into()))
        }
    }

    fn card() -> Card {
        let state = CardState::new(
            CardId([1; 8]),
            KeyVersion(1),
            Currency::EUR,
            Amount(500),
            Key::from_bytes([2; 16]),
            Key::from_bytes([3; 16]),
        );
        Card::new(state, Box::new(|| Rnd([9; 16])))
    }

    /// SELECT and INITIALIZE mode 01 for `u`; returns the DEBIT with a correct S2.
    fn open(card: &mut Card, store: &mut dyn CardStore, u: u32) -> Vec<u8> {
        let init = InitializeCmd {
            mode: Mode::Single,
            kv: KeyVersion(1),
            sam_id: SamId([5; 8]),
            rnd_s: Rnd([7; 16]),
            u: Amount(u),
            max_units: Units(1),
        };
        assert_eq!(
            card.process(&CardCommand::select().encode(), store).len(),
            22
        );
        let resp = card.process(&CardCommand::Initialize(init.clone()).encode(), store);
        let ir = InitializeResponse::parse(&resp[..resp.len() - 2]).unwrap();
        let k_pur = &card.state().k_pur;
        let ks = session_key(
            k_pur,
            ir.card_id,
            ir.nt,
            init.sam_id,
            &init.rnd_s,
            &ir.rnd_c,
        );
        let p = SessionParams {
            card_id: ir.card_id,
            nt: ir.nt,
            sam_id: init.sam_id,
            mode: init.mode,
            u: init.u,
            max_units: init.max_units,
        };
        let (seq, dt) = (SamTxSeq(1), DateTime(1_795_000_000));
        let s2 = s2(&ks, &p, seq, dt);
        CardCommand::Debit(DebitCmd {
            sam_tx_seq: seq,
            datetime: dt,
            s2,
        })
        .encode()
    }

    #[test]
    fn a_failed_persist_changes_nothing_and_ends_the_session() {
        let mut card = card();
        let debit = open(&mut card, &mut Failing, 100);
        let before = card.state().clone();
        assert_eq!(card.process(&debit, &mut Failing), vec![0x65, 0x81]);
        assert_eq!(card.state(), &before);
        assert!(card.is_selected() && !card.has_session());
        assert_eq!(card.process(&debit, &mut Failing), vec![0x69, 0x85]);
    }

    #[test]
    fn a_debit_moves_balance_nt_and_record_together() {
        let mut card = card();
        let debit = open(&mut card, &mut MemoryStore, 100);
        let resp = card.process(&debit, &mut MemoryStore);
        assert_eq!(&resp[resp.len() - 2..], &[0x90, 0x00]);
        let s = card.state();
        assert_eq!((s.balance, s.nt_last, s.log.len()), (Amount(400), Nt(1), 1));
        // GET TRANSACTION PROOF keeps the (debited) session: DEBIT twice is still 6985.
        let proof = CardCommand::GetProof { nt: Nt(1) }.encode();
        assert_eq!(card.process(&proof, &mut MemoryStore).len(), 53);
        assert!(card.has_session());
        assert_eq!(card.process(&debit, &mut MemoryStore), vec![0x69, 0x85]);
        assert!(card.is_selected() && !card.has_session());
        card.reset();
        assert!(!card.is_selected() && !card.has_session());
    }

    #[test]
    fn the_card_can_move_between_threads() {
        fn is_send<T: Send>() {}
        is_send::<Card>();
    }
}

//! `purse_issuer::sam_terminal` against the SAM applet and the card applet in process
//! (the same command bytes `pcsc-pay --sam-reader` sends through PC/SC): every flow the
//! demo prints, a lost DEBIT answer recovered, and the close's batch accepted by the
//! clearing checks; a refusal of the SAM surfaces with its status word.

use purse::card::{Card, MemoryStore};
use purse::clearing::ClearingState;
use purse::sam::Order;
use purse::sam_applet::host::Outcome;
use purse::sam_applet::{MemorySamStore, SamApplet};
use purse::surrogate::{CardLink, LinkError, LocalCard};
use purse::{Amount, CardId, DateTime, Rnd, SamId, Units};
use purse_issuer::sam_terminal::{Debited, SamTerminal, TerminalError};
use testkit::{new_card_state, new_sam_card_state, test_issuer_keys};

/// The SAM applet as a card in a reader: one APDU in, its answer out.
struct InProcessSam {
    applet: SamApplet,
    n: u8,
}

impl CardLink for InProcessSam {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, LinkError> {
        self.n = self.n.wrapping_add(1);
        Ok(self
            .applet
            .process(apdu, Rnd([self.n; 16]), &mut MemorySamStore))
    }
}

/// The purse card; with `lose_debit`, it debits but its answer never arrives (pulled).
struct Purse<'a> {
    card: &'a mut Card,
    lose_debit: bool,
}

impl CardLink for Purse<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, LinkError> {
        let answer = LocalCard {
            card: self.card,
            store: &mut MemoryStore,
        }
        .transmit(apdu)?;
        if self.lose_debit && apdu.get(1) == Some(&0x54) {
            return Err(LinkError("the card left during the exchange".into()));
        }
        Ok(answer)
    }
}

const T0: u32 = 1_795_000_000;

fn terminal() -> SamTerminal<InProcessSam> {
    let applet = SamApplet::new(new_sam_card_state(SamId([0x5A, 0, 0, 0, 0, 0, 0, 1])));
    SamTerminal::select(InProcessSam { applet, n: 0 }).expect("SAM SELECT")
}

fn card() -> Card {
    let mut n = 0u8;
    let state = new_card_state(CardId([0x10, 0, 0, 0, 0, 0, 0, 1]), Amount(10_000));
    Card::new(
        state,
        Box::new(move || {
            n = n.wrapping_add(1);
            Rnd([n; 16])
        }),
    )
}

fn answered(d: Debited) -> Outcome {
    match d {
        Debited::Answered(o) => o,
        Debited::Lost { .. } => panic!("the answer was lost"),
    }
}

#[test]
fn purchase_time_cycle_recovery_and_close_clear() {
    let mut sam = terminal();
    let mut c = card();
    let mut link = Purse {
        card: &mut c,
        lose_debit: false,
    };

    let o = answered(
        sam.purchase(&mut link, &Order::single(Amount(1250)), DateTime(T0))
            .unwrap(),
    );
    let Outcome::Completed(first) = o else {
        panic!("single purchase: {o:?}")
    };
    assert_eq!(first.tx_record().unwrap().total, Amount(1250));

    let order = Order::time_cycle(Amount(200), Units(3), 60);
    let mut o = answered(sam.purchase(&mut link, &order, DateTime(T0)).unwrap());
    for k in 1..3u32 {
        let Outcome::Running(ctx) = &o else {
            panic!("unit {k}: {o:?}")
        };
        o = sam.tick(&mut link, ctx, DateTime(T0 + k * 60)).unwrap();
    }
    let Outcome::Completed(cycle) = o else {
        panic!("the time-cycle at its cap: {o:?}")
    };
    assert_eq!(cycle.tx_record().unwrap().units, Units(3));

    link.lose_debit = true;
    let Debited::Lost { ctx, nt } = sam
        .purchase(&mut link, &Order::single(Amount(300)), DateTime(T0 + 200))
        .unwrap()
    else {
        panic!("the DEBIT answer should be lost")
    };
    link.lose_debit = false;
    let o = sam.recover(&mut link, &ctx, nt).unwrap();
    assert!(matches!(o, Outcome::Completed(_)), "recovery: {o:?}");
    assert_eq!(c.state().balance, Amount(10_000 - 1250 - 600 - 300));

    let batch = sam.close("2026-11-19T10:00:00Z").unwrap();
    assert_eq!(batch.close_seq.0, 1);
    let seqs: Vec<u32> = batch.transactions.iter().map(|t| t.sam_tx_seq.0).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert_eq!(batch.totals.sum.0, 2150);
    let mut clearing = ClearingState::default();
    assert_eq!(clearing.clear(&batch, &test_issuer_keys()), Ok(()));
}

#[test]
fn a_refused_tick_names_the_command_and_its_status_word() {
    let mut sam = terminal();
    let mut c = card();
    let mut link = Purse {
        card: &mut c,
        lose_debit: false,
    };
    let order = Order::time_cycle(Amount(200), Units(3), 60);
    let Outcome::Running(ctx) = answered(sam.purchase(&mut link, &order, DateTime(T0)).unwrap())
    else {
        panic!("the time-cycle should run")
    };
    // The second unit is not due before a period has passed.
    match sam.tick(&mut link, &ctx, DateTime(T0 + 10)) {
        Err(TerminalError::Refused { what, sw }) => {
            assert_eq!(what, "SAM TICK");
            assert_ne!(sw.0, 0x9000);
        }
        other => panic!("an early tick: {:?}", other.map(|_| ())),
    }
}

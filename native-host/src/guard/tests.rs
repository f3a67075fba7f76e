//! Unit tests of the guard: each rule, and sessions of commands and answers.

use super::*;
use purse::commands::{DebitCmd, InitializeCmd, TickCmd};
use purse::{CardId, DateTime, Mac8, Rnd, SamId, SamTxSeq};

const KV: KeyVersion = KeyVersion(1);

fn confirmed(mode: Mode, u: u32, max: u16) -> Confirmed {
    Confirmed {
        mode,
        unit_amount: Amount(u),
        max_units: Units(max),
        currency: Currency::EUR,
    }
}

fn init(mode: Mode, u: u32, max: u16) -> Vec<u8> {
    CardCommand::Initialize(InitializeCmd {
        mode,
        kv: KV,
        sam_id: SamId([0x5A; 8]),
        rnd_s: Rnd([1; 16]),
        u: Amount(u),
        max_units: Units(max),
    })
    .encode()
}

fn debit() -> Vec<u8> {
    CardCommand::Debit(DebitCmd {
        sam_tx_seq: SamTxSeq(1),
        datetime: DateTime(1),
        s2: Mac8([2; 8]),
    })
    .encode()
}

fn tick(k: u16) -> Vec<u8> {
    CardCommand::Tick(TickCmd {
        k: Units(k),
        s2k: Mac8([3; 8]),
    })
    .encode()
}

fn init_ok(nt: u32) -> Vec<u8> {
    let mut r = InitializeResponse {
        card_id: CardId([1; 8]),
        nt: Nt(nt),
        balance: Amount(10_000),
        currency: Currency::EUR,
        rnd_c: Rnd([4; 16]),
        s1: Mac8([5; 8]),
    }
    .encode();
    r.extend_from_slice(&[0x90, 0]);
    r
}

fn debit_ok() -> Vec<u8> {
    let mut r = vec![0; 20];
    r.extend_from_slice(&[0x90, 0]);
    r
}

/// Checks and relays `apdu`, the card answering `answer`; panics on a refusal.
fn relay(g: &mut Guard, apdu: &[u8], answer: Answer<'_>) -> Effect {
    let cmd = g.check(apdu).unwrap_or_else(|r| panic!("refused: {r}"));
    g.observe(&cmd, answer)
}

#[test]
fn only_purse_commands_pass() {
    let g = Guard::new(Purpose::Payment(confirmed(Mode::Single, 1250, 1)), Some(KV));
    for (apdu, sw) in [
        ("00b0000000", 0x6D00),      // READ BINARY
        ("0084000008", 0x6D00),      // GET CHALLENGE
        ("80ca9f7f00", 0x6D00),      // GET DATA
        ("a0a4000002 3f00", 0x6E00), // a GSM SELECT
        ("00a4040c07f045505552534500", 0x6A86),
        ("805a000004000000", 0x6700), // short
        ("", 0x6700),
    ] {
        let b = hex::decode(apdu.replace(' ', "")).unwrap();
        assert_eq!(
            g.check(&b),
            Err(Refusal::NotPurse(StatusWord(sw))),
            "{apdu}"
        );
        assert_eq!(
            g.check(&b).unwrap_err().code(),
            ErrorCode::CommandNotAllowed
        );
    }
    let visa = hex::decode("00a4040007a000000003101000").unwrap();
    assert_eq!(
        g.check(&visa),
        Err(Refusal::ForeignAid("A0000000031010".into()))
    );
    assert!(g.check(&CardCommand::select().encode()).is_ok());
    assert!(g
        .check(&CardCommand::GetProof { nt: Nt(3) }.encode())
        .is_ok());
}

#[test]
fn initialize_must_ask_exactly_what_was_confirmed() {
    let g = Guard::new(Purpose::Payment(confirmed(Mode::Single, 1250, 1)), Some(KV));
    assert!(g.check(&init(Mode::Single, 1250, 1)).is_ok());
    let refused = |apdu: Vec<u8>| g.check(&apdu).unwrap_err();
    assert_eq!(
        refused(init(Mode::Single, 1251, 1)),
        Refusal::AmountMismatch {
            asked: Amount(1251),
            confirmed: Amount(1250)
        }
    );
    assert_eq!(
        refused(init(Mode::TimeCycle, 1250, 1)).code(),
        ErrorCode::AmountMismatch
    );
    assert_eq!(
        refused(init(Mode::Single, 1250, 2)).code(),
        ErrorCode::AmountMismatch
    );
    assert_eq!(
        refused(init(Mode::StatusOnly, 0, 0)),
        Refusal::StatusOnlyInPayment
    );
    // The card's KV is known: another P2 is not a purse command for this card.
    let mut other_kv = init(Mode::Single, 1250, 1);
    other_kv[3] = 2;
    assert_eq!(refused(other_kv), Refusal::NotPurse(StatusWord::WRONG_P1P2));
}

#[test]
fn a_single_purchase_debits_once_however_often_it_is_initialized() {
    let mut g = Guard::new(Purpose::Payment(confirmed(Mode::Single, 1250, 1)), Some(KV));
    // No DEBIT before a confirmed INITIALIZE opened a session.
    assert_eq!(g.check(&debit()), Err(Refusal::OutOfSession("DEBIT")));
    relay(
        &mut g,
        &CardCommand::select().encode(),
        Answer::Response(&[0x90, 0]),
    );
    relay(
        &mut g,
        &init(Mode::Single, 1250, 1),
        Answer::Response(&init_ok(7)),
    );
    assert_eq!(g.purchase_nt(), Some(Nt(7)));
    assert_eq!(
        relay(&mut g, &debit(), Answer::Response(&debit_ok())),
        Effect::Charged
    );
    // A second INITIALIZE passes (harmless), but no second DEBIT.
    relay(
        &mut g,
        &init(Mode::Single, 1250, 1),
        Answer::Response(&init_ok(8)),
    );
    assert_eq!(
        g.check(&debit()).unwrap_err().code(),
        ErrorCode::CapExceeded
    );
    assert_eq!((g.charged(), g.in_doubt()), (1, 0));
}

#[test]
fn a_lost_debit_answer_counts_against_the_cap() {
    let mut g = Guard::new(Purpose::Payment(confirmed(Mode::Single, 500, 1)), Some(KV));
    relay(
        &mut g,
        &init(Mode::Single, 500, 1),
        Answer::Response(&init_ok(1)),
    );
    assert_eq!(relay(&mut g, &debit(), Answer::Failed), Effect::InDoubt);
    relay(
        &mut g,
        &init(Mode::Single, 500, 1),
        Answer::Response(&init_ok(2)),
    );
    assert_eq!(
        g.check(&debit()),
        Err(Refusal::CapReached {
            spent: 1,
            cap: Units(1)
        })
    );
}

#[test]
fn a_refused_debit_charges_nothing_and_ends_the_card_session() {
    let mut g = Guard::new(Purpose::Payment(confirmed(Mode::Single, 500, 1)), Some(KV));
    relay(
        &mut g,
        &init(Mode::Single, 500, 1),
        Answer::Response(&init_ok(1)),
    );
    assert_eq!(
        relay(&mut g, &debit(), Answer::Response(&[0x94, 0x01])),
        Effect::None
    );
    assert_eq!(g.check(&debit()), Err(Refusal::OutOfSession("DEBIT")));
    relay(
        &mut g,
        &init(Mode::Single, 500, 1),
        Answer::Response(&init_ok(1)),
    );
    assert!(g.check(&debit()).is_ok());
}

#[test]
fn ticks_stop_at_the_confirmed_cap() {
    let mut g = Guard::new(
        Purpose::Payment(confirmed(Mode::TimeCycle, 200, 3)),
        Some(KV),
    );
    // No TICK before the DEBIT.
    relay(
        &mut g,
        &init(Mode::TimeCycle, 200, 3),
        Answer::Response(&init_ok(1)),
    );
    assert_eq!(g.check(&tick(2)), Err(Refusal::OutOfSession("TICK")));
    relay(&mut g, &debit(), Answer::Response(&debit_ok()));
    relay(&mut g, &tick(2), Answer::Response(&debit_ok()));
    relay(&mut g, &tick(3), Answer::Response(&debit_ok()));
    assert_eq!(
        g.check(&tick(4)),
        Err(Refusal::TickBeyondCap {
            k: Units(4),
            cap: Units(3)
        })
    );
    // Re-initializing does not open a fresh allowance.
    relay(
        &mut g,
        &init(Mode::TimeCycle, 200, 3),
        Answer::Response(&init_ok(2)),
    );
    assert_eq!(
        g.check(&debit()).unwrap_err().code(),
        ErrorCode::CapExceeded
    );
    assert_eq!(g.charged(), 3);
}

#[test]
fn a_tick_in_a_single_purchase_is_beyond_its_cap() {
    let mut g = Guard::new(Purpose::Payment(confirmed(Mode::Single, 500, 1)), Some(KV));
    relay(
        &mut g,
        &init(Mode::Single, 500, 1),
        Answer::Response(&init_ok(1)),
    );
    relay(&mut g, &debit(), Answer::Response(&debit_ok()));
    assert_eq!(
        g.check(&tick(2)).unwrap_err().code(),
        ErrorCode::CapExceeded
    );
}

#[test]
fn recovery_sessions_move_no_money() {
    let g = Guard::new(Purpose::Recovery, Some(KV));
    assert!(g.check(&init(Mode::StatusOnly, 0, 0)).is_ok());
    assert!(g
        .check(&CardCommand::GetProof { nt: Nt(1) }.encode())
        .is_ok());
    assert!(g.check(&CardCommand::select().encode()).is_ok());
    assert_eq!(
        g.check(&init(Mode::Single, 500, 1)),
        Err(Refusal::ChargingInRecovery)
    );
    // Mode 00 with a U is not status-only.
    assert_eq!(
        g.check(&init(Mode::StatusOnly, 1, 0)),
        Err(Refusal::ChargingInRecovery)
    );
    assert_eq!(g.check(&debit()), Err(Refusal::DebitInRecovery));
    assert_eq!(g.check(&tick(2)), Err(Refusal::DebitInRecovery));
}

#[test]
fn confirmations_must_be_payable() {
    assert!(confirmed(Mode::Single, 1, 1).validate().is_ok());
    assert!(confirmed(Mode::TimeCycle, 200, 4).validate().is_ok());
    assert!(confirmed(Mode::Single, 0, 1).validate().is_err());
    assert!(confirmed(Mode::Single, 5, 2).validate().is_err());
    assert!(confirmed(Mode::TimeCycle, 5, 0).validate().is_err());
    assert!(confirmed(Mode::StatusOnly, 0, 0).validate().is_err());
}

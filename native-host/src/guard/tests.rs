//! Unit tests of the guard: each rule, and sessions of commands and answers.

use super::*;
use crate::catalogue::ErrorCode;
use purse::commands::{DebitCmd, InitializeCmd, TickCmd, TxRecord};
use purse::{CardId, DateTime, Mac8, Rnd, SamId, SamTxSeq};
use std::sync::OnceLock;
use std::time::Duration;

const KV: KeyVersion = KeyVersion(1);

/// A fixed origin for the guard's clock: tests pass times relative to it.
fn t0() -> Instant {
    static T0: OnceLock<Instant> = OnceLock::new();
    *T0.get_or_init(Instant::now)
}

fn at(secs: u64) -> Instant {
    t0() + Duration::from_secs(secs)
}

/// A time after every unit a test charges is due.
fn later() -> Instant {
    at(1_000_000)
}

fn confirmed(mode: Mode, u: u32, max: u16) -> Confirmed {
    Confirmed {
        mode,
        unit_amount: Amount(u),
        max_units: Units(max),
        currency: Currency::EUR,
        period: (mode == Mode::TimeCycle).then(|| Period::from_secs(60).unwrap()),
    }
}

fn recovery(nt: u32) -> Purpose {
    Purpose::Recovery { nt: Nt(nt) }
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

/// Checks and relays `apdu` at `now`, the card answering `answer`; panics on a refusal.
fn relay_at(g: &mut Guard, apdu: &[u8], answer: Answer<'_>, now: Instant) -> Effect {
    let cmd = g
        .check(apdu, now)
        .unwrap_or_else(|r| panic!("refused: {r}"));
    g.observe(&cmd, answer, now)
}

/// [`relay_at`] with the clock past any period.
fn relay(g: &mut Guard, apdu: &[u8], answer: Answer<'_>) -> Effect {
    relay_at(g, apdu, answer, later())
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
            g.check(&b, later()),
            Err(Refusal::NotPurse(StatusWord(sw))),
            "{apdu}"
        );
        assert_eq!(
            g.check(&b, later()).unwrap_err().code(),
            ErrorCode::CommandNotAllowed
        );
    }
    let visa = hex::decode("00a4040007a000000003101000").unwrap();
    assert_eq!(
        g.check(&visa, later()),
        Err(Refusal::ForeignAid("A0000000031010".into()))
    );
    assert!(g.check(&CardCommand::select().encode(), later()).is_ok());
    // The card's log is not a payment's business.
    let proof = g.check(&CardCommand::GetProof { nt: Nt(3) }.encode(), later());
    assert_eq!(proof, Err(Refusal::ProofInPayment));
    assert_eq!(proof.unwrap_err().code(), ErrorCode::ProofNotAllowed);
}

#[test]
fn initialize_must_ask_exactly_what_was_confirmed() {
    let g = Guard::new(Purpose::Payment(confirmed(Mode::Single, 1250, 1)), Some(KV));
    assert!(g.check(&init(Mode::Single, 1250, 1), later()).is_ok());
    let refused = |apdu: Vec<u8>| g.check(&apdu, later()).unwrap_err();
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
    assert_eq!(
        g.check(&debit(), later()),
        Err(Refusal::OutOfSession("DEBIT"))
    );
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
        g.check(&debit(), later()).unwrap_err().code(),
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
        g.check(&debit(), later()),
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
    assert_eq!(
        g.check(&debit(), later()),
        Err(Refusal::OutOfSession("DEBIT"))
    );
    relay(
        &mut g,
        &init(Mode::Single, 500, 1),
        Answer::Response(&init_ok(1)),
    );
    assert!(g.check(&debit(), later()).is_ok());
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
    assert_eq!(
        g.check(&tick(2), later()),
        Err(Refusal::OutOfSession("TICK"))
    );
    relay_at(&mut g, &debit(), Answer::Response(&debit_ok()), at(0));
    relay_at(&mut g, &tick(2), Answer::Response(&debit_ok()), at(60));
    relay_at(&mut g, &tick(3), Answer::Response(&debit_ok()), at(120));
    assert_eq!(
        g.check(&tick(4), later()),
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
        g.check(&debit(), later()).unwrap_err().code(),
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
        g.check(&tick(2), later()).unwrap_err().code(),
        ErrorCode::CapExceeded
    );
}

#[test]
fn recovery_sessions_move_no_money() {
    let g = Guard::new(recovery(1), Some(KV));
    assert!(g.check(&init(Mode::StatusOnly, 0, 0), later()).is_ok());
    assert!(g.check(&CardCommand::select().encode(), later()).is_ok());
    assert_eq!(
        g.check(&init(Mode::Single, 500, 1), later()),
        Err(Refusal::ChargingInRecovery)
    );
    // Mode 00 with a U is not status-only.
    assert_eq!(
        g.check(&init(Mode::StatusOnly, 1, 0), later()),
        Err(Refusal::ChargingInRecovery)
    );
    assert_eq!(g.check(&debit(), later()), Err(Refusal::DebitInRecovery));
    assert_eq!(g.check(&tick(2), later()), Err(Refusal::DebitInRecovery));
}

#[test]
fn confirmations_must_be_payable() {
    assert!(confirmed(Mode::Single, 1, 1).validate().is_ok());
    assert!(confirmed(Mode::TimeCycle, 200, 4).validate().is_ok());
    assert!(confirmed(Mode::Single, 0, 1).validate().is_err());
    assert!(confirmed(Mode::Single, 5, 2).validate().is_err());
    assert!(confirmed(Mode::TimeCycle, 5, 0).validate().is_err());
    assert!(confirmed(Mode::StatusOnly, 0, 0).validate().is_err());
    // A time-cycle has a period, a single purchase none.
    let mut c = confirmed(Mode::TimeCycle, 200, 4);
    c.period = None;
    assert!(c.validate().is_err());
    let mut c = confirmed(Mode::Single, 1, 1);
    c.period = Period::from_secs(60).ok();
    assert!(c.validate().is_err());
}

/// A time-cycle of `max` units of 200, one per minute, its INITIALIZE answered.
fn time_cycle(max: u16) -> Guard {
    let mut g = Guard::new(
        Purpose::Payment(confirmed(Mode::TimeCycle, 200, max)),
        Some(KV),
    );
    relay_at(
        &mut g,
        &init(Mode::TimeCycle, 200, max),
        Answer::Response(&init_ok(1)),
        at(0),
    );
    g
}

#[test]
fn a_hostile_shop_ticking_at_once_is_refused_until_each_period_is_up() {
    let mut g = time_cycle(8);
    relay_at(&mut g, &debit(), Answer::Response(&debit_ok()), at(10));
    // The shop's reply carries the next TICK at once: refused, however often.
    for now in [at(10), at(11), at(30), at(68)] {
        let r = g.check(&tick(2), now).unwrap_err();
        assert!(
            matches!(
                r,
                Refusal::TooEarly {
                    unit: 2,
                    period: 60,
                    ..
                }
            ),
            "{r}"
        );
        assert_eq!(r.code(), ErrorCode::TooEarly);
    }
    assert_eq!(
        g.check(&tick(2), at(30)),
        Err(Refusal::TooEarly {
            unit: 2,
            wait: Duration::from_secs(39),
            period: 60
        })
    );
    // One second early is within the tolerance; so is on time, and late.
    assert!(g.check(&tick(2), at(69)).is_ok());
    assert!(g.check(&tick(2), at(70)).is_ok());
    relay_at(&mut g, &tick(2), Answer::Response(&debit_ok()), at(75));
    // Unit 3 counts from the DEBIT, not from the late TICK 2.
    assert_eq!(
        g.check(&tick(3), at(128)).unwrap_err().code(),
        ErrorCode::TooEarly
    );
    relay_at(&mut g, &tick(3), Answer::Response(&debit_ok()), at(129));
    assert_eq!(g.charged(), 3);
}

#[test]
fn re_initializing_does_not_restart_the_pace() {
    let mut g = time_cycle(4);
    relay_at(&mut g, &debit(), Answer::Response(&debit_ok()), at(0));
    // A fresh INITIALIZE and DEBIT is the session's second unit: not before its time.
    relay_at(
        &mut g,
        &init(Mode::TimeCycle, 200, 4),
        Answer::Response(&init_ok(2)),
        at(1),
    );
    assert_eq!(
        g.check(&debit(), at(1)).unwrap_err().code(),
        ErrorCode::TooEarly
    );
    assert!(g.check(&debit(), at(59)).is_ok());
}

#[test]
fn a_lost_debit_answer_starts_the_pace() {
    let mut g = time_cycle(4);
    assert_eq!(
        relay_at(&mut g, &debit(), Answer::Failed, at(5)),
        Effect::InDoubt
    );
    relay_at(
        &mut g,
        &init(Mode::TimeCycle, 200, 4),
        Answer::Response(&init_ok(1)),
        at(6),
    );
    assert_eq!(
        g.check(&debit(), at(6)).unwrap_err().code(),
        ErrorCode::TooEarly
    );
    assert!(g.check(&debit(), at(64)).is_ok());
}

#[test]
fn a_refused_debit_does_not_start_the_pace() {
    let mut g = time_cycle(2);
    relay_at(&mut g, &debit(), Answer::Response(&[0x94, 0x01]), at(0));
    relay_at(
        &mut g,
        &init(Mode::TimeCycle, 200, 2),
        Answer::Response(&init_ok(1)),
        at(1),
    );
    relay_at(&mut g, &debit(), Answer::Response(&debit_ok()), at(2));
    assert!(g.check(&tick(2), at(2)).is_err());
    assert!(g.check(&tick(2), at(61)).is_ok());
}

fn status_init(sam: u8) -> Vec<u8> {
    CardCommand::Initialize(InitializeCmd {
        mode: Mode::StatusOnly,
        kv: KV,
        sam_id: SamId([sam; 8]),
        rnd_s: Rnd([1; 16]),
        u: Amount(0),
        max_units: Units(0),
    })
    .encode()
}

fn proof(nt: u32) -> Vec<u8> {
    CardCommand::GetProof { nt: Nt(nt) }.encode()
}

fn record(nt: u32, sam: u8) -> Vec<u8> {
    let mut r = TxRecord {
        nt: Nt(nt),
        sam_id: SamId([sam; 8]),
        sam_tx_seq: SamTxSeq(1),
        datetime: DateTime(1),
        mode: 1,
        u: Amount(100),
        units: Units(1),
        total: Amount(100),
        balance_after: Amount(900),
        s3: Mac8([1; 8]),
        tac: Mac8([2; 8]),
    }
    .encode();
    r.extend_from_slice(&[0x90, 0]);
    r
}

/// A recovery of NT `nt` whose status-only INITIALIZE (SAM 5A..) the card answered
/// with its next NT `card_nt`.
fn recovering(nt: u32, card_nt: u32) -> Guard {
    let mut g = Guard::new(recovery(nt), Some(KV));
    relay(
        &mut g,
        &status_init(0x5A),
        Answer::Response(&init_ok(card_nt)),
    );
    g
}

#[test]
fn a_recovery_reads_only_the_record_it_is_about() {
    let code = |r: Result<CardCommand, Refusal>| r.unwrap_err().code();
    // Before the card's NT is known: nothing.
    let g = Guard::new(recovery(7), Some(KV));
    assert_eq!(
        g.check(&proof(7), later()),
        Err(Refusal::ProofBeforeInitialize)
    );
    let g = recovering(7, 9);
    assert!(g.check(&proof(7), later()).is_ok());
    // A hostile shop browsing the card's log: every other NT.
    for other in [0, 1, 6, 8, 9, u32::MAX] {
        assert_eq!(
            g.check(&proof(other), later()),
            Err(Refusal::ProofOfAnotherNt {
                asked: Nt(other),
                nt: Nt(7)
            })
        );
        assert_eq!(
            code(g.check(&proof(other), later())),
            ErrorCode::ProofNotAllowed
        );
    }
    // The recovery's NT must lie below the card's next NT.
    let g = recovering(7, 7);
    assert_eq!(
        g.check(&proof(7), later()),
        Err(Refusal::ProofNotBelowCardNt {
            asked: Nt(7),
            card_nt: Nt(7)
        })
    );
    // An INITIALIZE the card refused forgets what an earlier one told.
    let mut g = recovering(7, 9);
    relay(&mut g, &status_init(0x5A), Answer::Response(&[0x69, 0x85]));
    assert_eq!(
        g.check(&proof(7), later()),
        Err(Refusal::ProofBeforeInitialize)
    );
}

#[test]
fn a_record_of_another_sam_is_withheld() {
    let mut g = recovering(7, 9);
    let cmd = g.check(&proof(7), later()).unwrap();
    // Its own record passes; so does a status word (no record held).
    assert_eq!(g.screen(&cmd, &record(7, 0x5A)), Ok(()));
    assert_eq!(g.screen(&cmd, &[0x6A, 0x83]), Ok(()));
    // Another shop's SAM debited that NT: the record is not this shop's to read.
    let other = g.screen(&cmd, &record(7, 0x77)).unwrap_err();
    assert_eq!(other.code(), ErrorCode::ProofNotAllowed);
    // A record of another NT, or a malformed one, neither.
    assert!(g.screen(&cmd, &record(6, 0x5A)).is_err());
    assert!(g.screen(&cmd, &[1, 2, 3, 0x90, 0]).is_err());
    // A shop naming another SAM in its INITIALIZE reads only that SAM's record.
    relay(&mut g, &status_init(0x77), Answer::Response(&init_ok(9)));
    assert_eq!(g.screen(&cmd, &record(7, 0x77)), Ok(()));
    assert!(g.screen(&cmd, &record(7, 0x5A)).is_err());
    // Other commands' answers are not screened.
    let select = g.check(&CardCommand::select().encode(), later()).unwrap();
    assert_eq!(g.screen(&select, &record(7, 0x77)), Ok(()));
}

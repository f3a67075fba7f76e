//! Attacks on the SAM applet's own interface by a host that is not trusted (a broken-into
//! shop server): replayed, altered and foreign contexts, S2 without a verified S1, ticks
//! early, past the cap or across a close, completions replayed, forged, missing and
//! duplicated close records, a failing store, and a rolled-back SAM state.

mod common;
mod sam_applet_host;

use purse::clearing::{verify, ClearingState};
use purse::keys::SamKeys;
use purse::sam::Order;
use purse::sam_applet::{SamApplet, SamState, SamStore, SamStoreError};
use purse::{Amount, CardId, Currency, DateTime, KeyVersion, SamId, StatusWord, Units};
use sam_applet_host::{authorize, counted, purchase, sam_state, Counted, Host, Outcome, Shopper};

const T0: u32 = 1_795_000_000;
const SW_STATE: StatusWord = StatusWord(0x6985);
const SW_CTX: StatusWord = StatusWord(0x6988);

fn keys() -> SamKeys {
    common::test_sam_keys(SamId([0x5A; 8]))
}

fn shopper(balance: u32) -> Shopper {
    Shopper {
        card: common::test_card(CardId([0x10, 0, 0, 0, 0, 0, 0, 7]), balance),
    }
}

#[test]
fn a_begin_context_authorizes_once() {
    let mut host = Host::new(keys());
    let mut s = shopper(5000);
    assert!(s.select().sw.is_ok());
    let (init, begin) = host
        .begin(&Order::single(Amount(100)), Currency::EUR)
        .expect("begin");
    let r = s.initialize(1, KeyVersion(1), &init);
    host.authorize(KeyVersion(1), DateTime(T0), &r.data, &begin)
        .expect("first S2");
    // The same card session again: a second S2 would let one DEBIT answer count twice.
    assert_eq!(
        host.authorize(KeyVersion(1), DateTime(T0), &r.data, &begin),
        Err(SW_STATE)
    );
    // A fresh card session with the same begin context: refused too.
    let r2 = s.initialize(1, KeyVersion(1), &init);
    assert_eq!(
        host.authorize(KeyVersion(1), DateTime(T0), &r2.data, &begin),
        Err(SW_STATE)
    );
    assert_eq!(host.sam.state().next_tx_seq.0, 2);
}

#[test]
fn no_s2_without_a_verified_s1() {
    let mut host = Host::new(keys());
    let mut s = shopper(5000);
    assert!(s.select().sw.is_ok());
    let (init, begin) = host
        .begin(&Order::single(Amount(100)), Currency::EUR)
        .expect("begin");
    let r = s.initialize(1, KeyVersion(1), &init);
    let mut forged = r.data.clone();
    forged[12] ^= 0x01; // Balance raised by the host
    assert_eq!(
        host.authorize(KeyVersion(1), DateTime(T0), &forged, &begin),
        Err(StatusWord(0x6982))
    );
    assert_eq!(
        host.authorize(KeyVersion(9), DateTime(T0), &r.data, &begin),
        Err(StatusWord(0x6A88)),
        "an unknown key version"
    );
    assert_eq!(host.sam.state().next_tx_seq.0, 1, "nothing allocated");
    // An INITIALIZE answer for another order (mode 02) does not verify for this one.
    let (init2, _) = host
        .begin(&Order::time_cycle(Amount(100), Units(9), 60), Currency::EUR)
        .expect("begin");
    let r3 = s.initialize(2, KeyVersion(1), &init2);
    assert_eq!(
        host.authorize(KeyVersion(1), DateTime(T0), &r3.data, &begin),
        Err(StatusWord(0x6982))
    );
    // Insufficient funds and a foreign currency order.
    let mut poor = shopper(50);
    assert_eq!(
        purchase(&mut host, &mut poor, 100, DateTime(T0)),
        Err(StatusWord(0x9401))
    );
    assert_eq!(
        host.begin(&Order::single(Amount(1)), Currency::USD),
        Err(StatusWord(0x6A81))
    );
}

#[test]
fn altered_and_foreign_contexts_are_refused() {
    let mut host = Host::new(keys());
    let mut s = shopper(5000);
    let (debit, ctx) =
        authorize(&mut host, &mut s, &Order::single(Amount(100)), DateTime(T0)).expect("authorize");
    let answer = s.debit(&debit);
    for i in [0, 1, 5, 30, 118] {
        let mut bad = ctx.clone();
        bad[i] ^= 0x40;
        assert_eq!(host.complete(&answer, &bad), Err(SW_CTX), "byte {i}");
    }
    // Another SAM (same keys, its own K_CTX) cannot open this SAM's contexts.
    let mut other_state = SamState::personalise(keys(), purse::Key::from_bytes([1; 16]));
    other_state.next_tx_seq = purse::SamTxSeq(100);
    let mut other = Host::with_store(
        SamApplet::new(other_state),
        purse::sam_applet::MemorySamStore,
    );
    assert_eq!(other.complete(&answer, &ctx), Err(SW_CTX));
    // A begin context is not a transaction context.
    let (_, begin) = host
        .begin(&Order::single(Amount(1)), Currency::EUR)
        .expect("begin");
    let mut as_tx = begin.clone();
    as_tx.resize(119, 0);
    assert_eq!(host.complete(&answer, &as_tx), Err(SW_CTX));
    assert!(matches!(
        host.complete(&answer, &ctx),
        Ok(Outcome::Completed(_))
    ));
}

#[test]
fn a_completion_counts_once_however_often_replayed() {
    let mut host = Host::new(keys());
    let mut s = shopper(5000);
    let (debit, ctx) =
        authorize(&mut host, &mut s, &Order::single(Amount(100)), DateTime(T0)).expect("authorize");
    let answer = s.debit(&debit);
    let c = counted(host.complete(&answer, &ctx).expect("complete"));
    for _ in 0..3 {
        // The same COMPLETE gets the same answer (its answer may have been lost); any
        // other ending of the same transaction is refused.
        assert_eq!(
            host.complete(&answer, &ctx),
            Ok(Outcome::Completed(c.clone()))
        );
        assert_eq!(host.complete(&[0x6A, 0x80], &ctx), Err(SW_STATE));
        assert_eq!(host.stop(1, &ctx), Err(SW_STATE));
        assert_eq!(host.recovery_begin(&ctx).map(|_| ()), Err(SW_STATE));
    }
    let p = host.sam.state().period;
    assert_eq!((p.count, p.sum.0), (1, 100));
    assert_eq!(c.period.0, 1);
}

#[test]
fn a_forged_debit_answer_counts_nothing_and_recovery_decides() {
    let mut host = Host::new(keys());
    let mut s = shopper(5000);
    let (debit, ctx) =
        authorize(&mut host, &mut s, &Order::single(Amount(100)), DateTime(T0)).expect("authorize");
    let nt = purse::Nt(s.card.state().nt_last.0 + 1);
    let mut answer = s.debit(&debit);
    answer[15] ^= 0x01; // a TAC bit flipped on the way (S3 covers it: revision 2)
    assert_eq!(host.complete(&answer, &ctx), Err(StatusWord(0x6982)));
    answer[15] ^= 0x01;
    answer[0] ^= 0x01; // BalanceAfter
    assert_eq!(host.complete(&answer, &ctx), Err(StatusWord(0x6982)));
    assert_eq!(host.sam.state().period.count, 0);
    let c = counted(sam_applet_host::recover(&mut host, &mut s, &ctx, nt).expect("recovery"));
    assert_eq!(c.batch_tx().expect("record").total, Amount(100));
}

#[test]
fn ticks_only_when_due_up_to_the_cap_and_not_across_a_close() {
    let mut host = Host::new(keys());
    let mut s = shopper(5000);
    let order = Order::time_cycle(Amount(10), Units(2), 60);
    let (debit, pending) = authorize(&mut host, &mut s, &order, DateTime(T0)).expect("tc");
    assert_eq!(
        host.tick(DateTime(T0 + 60), &pending).map(|_| ()),
        Err(SW_STATE),
        "before DEBIT confirmed"
    );
    let Outcome::Running(ctx) = host.complete(&s.debit(&debit), &pending).expect("debit") else {
        panic!("running");
    };
    assert_eq!(
        host.tick(DateTime(T0 + 59), &ctx).map(|_| ()),
        Err(StatusWord(0x6986))
    );
    let (tick, pending2) = host.tick(DateTime(T0 + 60), &ctx).expect("due");
    // The same unit twice gives the same S2k: nothing new for the host.
    assert_eq!(host.tick(DateTime(T0 + 61), &ctx).expect("again").0, tick);
    let out = host.complete(&s.tick(&tick), &pending2).expect("tick 2");
    let c = counted(out);
    assert_eq!(
        c.batch_tx().expect("record").units,
        Units(2),
        "the cap ends it"
    );
    assert_eq!(
        host.tick(DateTime(T0 + 999), &ctx).map(|_| ()),
        Err(SW_STATE),
        "final"
    );

    // Across a close: a running cycle that was not stopped cannot tick any more.
    let order = Order::time_cycle(Amount(10), Units(5), 60);
    let (debit, pending) = authorize(&mut host, &mut s, &order, DateTime(T0)).expect("tc2");
    let Outcome::Running(ctx) = host.complete(&s.debit(&debit), &pending).expect("debit") else {
        panic!("running");
    };
    host.close(false, 1, &[c], 3, "x").expect("close");
    assert_eq!(
        host.tick(DateTime(T0 + 600), &ctx).map(|_| ()),
        Err(SW_STATE)
    );
    let stopped = counted(host.stop(0, &ctx).expect("stop after the close"));
    assert_eq!(
        stopped.period.0, 2,
        "settles in the period it was stopped in"
    );
}

#[test]
fn close_refuses_forged_missing_duplicated_and_foreign_period_records() {
    let mut host = Host::new(keys());
    let mut s = shopper(5000);
    let recs: Vec<Counted> = (0..4)
        .map(|i| counted(purchase(&mut host, &mut s, 100 + i, DateTime(T0)).expect("p")))
        .collect();
    host.close_begin(false, 1).expect("close 1 begins");

    // Forged: a record whose total the host raised.
    let mut forged = recs[0].clone();
    forged.rec[44] ^= 0x01;
    assert_eq!(host.close_record(&[forged.entry()]), Err(SW_CTX));
    // A failed record drops the stream.
    assert_eq!(host.close_end(), Err(SW_STATE));

    // Duplicated, and out of order.
    host.close_begin(true, 1).expect("again");
    host.close_record(&[recs[0].entry()]).expect("r0");
    assert_eq!(host.close_record(&[recs[0].entry()]), Err(SW_STATE));
    host.close_begin(true, 1).expect("again");
    assert_eq!(
        host.close_record(&[recs[1].entry(), recs[0].entry()]),
        Err(SW_STATE)
    );

    // Missing: the SAM's own count says four.
    host.close_begin(true, 1).expect("again");
    let b = host.close(true, 1, &recs[..3], 3, "x");
    assert!(b.is_ok(), "a stream again may sign a subset (a correction)");
    // But the first, exact close of a period needs them all.
    let mut fresh = Host::new(keys());
    let mut s2 = shopper(5000);
    let r2: Vec<Counted> = (0..2)
        .map(|_| counted(purchase(&mut fresh, &mut s2, 100, DateTime(T0)).expect("p")))
        .collect();
    assert_eq!(
        fresh.close(false, 1, &r2[..1], 3, "x").map(|_| ()),
        Err(SW_STATE)
    );
    // The period is closed now; a stream again over all of them signs.
    let batch = fresh.close(true, 1, &r2, 3, "x").expect("all records");
    assert_eq!(
        verify(&batch, &common::test_issuer(), &ClearingState::default()),
        vec![]
    );

    // A record of period 1 cannot go into period 2.
    let r3 = counted(purchase(&mut fresh, &mut s2, 100, DateTime(T0)).expect("p"));
    fresh.close_begin(false, 2).expect("close 2");
    assert_eq!(fresh.close_record(&[r2[0].entry()]), Err(SW_CTX));
    assert!(fresh.close(true, 2, &[r3], 1, "x").is_ok());
    assert_eq!(
        fresh.close_begin(false, 9),
        Err(StatusWord(0x6A80)),
        "wrong CloseSeq"
    );
}

#[test]
fn a_correction_signs_a_verified_subset_that_clears() {
    let mut host = Host::new(keys());
    let mut s = shopper(5000);
    let recs: Vec<Counted> = (0..5)
        .map(|i| counted(purchase(&mut host, &mut s, 10 * (i + 1), DateTime(T0)).expect("p")))
        .collect();
    let full = host.close(false, 1, &recs, 2, "x").expect("close");
    assert_eq!(full.totals.count, 5);
    // The clearing office rejected the batch over record 2: close 1 again without it.
    let subset = [
        recs[0].clone(),
        recs[1].clone(),
        recs[3].clone(),
        recs[4].clone(),
    ];
    let corrected = host.close(true, 1, &subset, 4, "x").expect("correction");
    assert_eq!(
        (
            corrected.close_seq.0,
            corrected.totals.count,
            corrected.totals.sum.0
        ),
        (1, 4, 120)
    );
    assert_eq!(
        verify(
            &corrected,
            &common::test_issuer(),
            &ClearingState::default()
        ),
        vec![]
    );
    // Extended-length CLOSE RECORD: all five in one APDU.
    let again = host.close(true, 1, &recs, 5, "x").expect("extended");
    assert_eq!(again.totals, full.totals);
}

/// A store that fails on demand.
struct Flaky {
    fail: bool,
    last: Option<SamState>,
}

impl SamStore for Flaky {
    fn persist(&mut self, state: &SamState) -> Result<(), SamStoreError> {
        if self.fail {
            return Err(SamStoreError("disk full".into()));
        }
        self.last = Some(state.clone());
        Ok(())
    }
}

#[test]
fn a_failing_store_changes_nothing() {
    let store = Flaky {
        fail: false,
        last: None,
    };
    let mut host = Host::with_store(SamApplet::new(sam_state(keys())), store);
    let mut s = shopper(5000);
    let order = Order::single(Amount(100));
    assert!(s.select().sw.is_ok());
    let (init, begin) = host.begin(&order, Currency::EUR).expect("begin");
    let r = s.initialize(1, KeyVersion(1), &init);
    host.store.fail = true;
    assert_eq!(
        host.authorize(KeyVersion(1), DateTime(T0), &r.data, &begin),
        Err(StatusWord(0x6581))
    );
    assert_eq!(host.sam.state().next_tx_seq.0, 1);
    host.store.fail = false;
    let (debit, ctx) = host
        .authorize(KeyVersion(1), DateTime(T0), &r.data, &begin)
        .expect("the same begin works once stored");
    let answer = s.debit(&debit);
    host.store.fail = true;
    assert_eq!(host.complete(&answer, &ctx), Err(StatusWord(0x6581)));
    assert_eq!(host.sam.state().period.count, 0);
    host.store.fail = false;
    assert!(matches!(
        host.complete(&answer, &ctx),
        Ok(Outcome::Completed(_))
    ));
    let kept = host.store.last.as_ref().expect("persisted");
    assert_eq!((kept.period.count, kept.next_tx_seq.0), (1, 2));
}

#[test]
fn a_rolled_back_state_is_detected_and_blocks_the_sam() {
    let store = Flaky {
        fail: false,
        last: None,
    };
    let mut host = Host::with_store(SamApplet::new(sam_state(keys())), store);
    let mut s = shopper(50_000);
    purchase(&mut host, &mut s, 100, DateTime(T0)).expect("p1");
    let old: SamState = host.store.last.clone().expect("state after p1");
    // A purchase whose DEBIT answer is lost, in the SAM_TxSeq block p1 opened.
    let order = Order::single(Amount(200));
    let (_debit, same_block) = authorize(&mut host, &mut s, &order, DateTime(T0)).expect("p2");
    // Purchases up to the next block (its reservation is persisted), the last one lost.
    let ctx = loop {
        let (_debit, ctx) = authorize(&mut host, &mut s, &order, DateTime(T0)).expect("p");
        if host.sam.state().next_tx_seq.0 > old.tx_ceiling {
            break ctx;
        }
    };

    // Someone restores the SAM file from before: the numbers of p1's block that were
    // handed out since stay open (never reused), but a context of a later block proves
    // the rollback.
    let store = Flaky {
        fail: false,
        last: None,
    };
    let mut restored = Host::with_store(SamApplet::new(old.clone()), store);
    assert_eq!(restored.sam.state().next_tx_seq.0, old.tx_ceiling);
    assert!(restored.recovery_begin(&same_block).is_ok());
    assert_eq!(
        restored.recovery_begin(&ctx).map(|_| ()),
        Err(StatusWord(0x6983))
    );
    assert!(
        restored.store.last.as_ref().is_some_and(|st| st.blocked),
        "persisted"
    );
    assert_eq!(
        restored.begin(&Order::single(Amount(1)), Currency::EUR),
        Err(StatusWord(0x6983))
    );
    let st = restored.send("status", &[0x80, 0x7E, 0, 0, 0]);
    assert!(st.sw.is_ok());
    assert_eq!(st.data[44], 1, "GET STATUS says blocked");
}

//! The SAM applet end to end against the purse card applet, in process: a single
//! purchase, a time-cycle with ticks and a stop, a lost answer recovered, a DEBIT that
//! never reached the card voided, and two closes. The batches pass the clearing office's
//! checks and equal, byte for byte, what `purse::sam::Sam` makes of the same purchases.

mod common;
mod sam_applet_host;

use purse::card::MemoryStore;
use purse::clearing::{verify, ClearingState};
use purse::commands::CardCommand;
use purse::sam::{Completion, Order, Outcome as SamOutcome, Sam};
use purse::settlement::Batch;
use purse::surrogate::{exchange, LocalCard, MemoryJournal, Surrogate};
use purse::{Amount, CardId, DateTime, KeyVersion, Rnd, SamId, Units};
use sam_applet_host::{authorize, lost_and_recovered, purchase, Counted, Host, Outcome, Shopper};

const T0: u32 = 1_795_000_000;
const CREATED: &str = "2026-11-24T23:59:00Z";

fn card_id() -> CardId {
    CardId([0x10, 0, 0, 0, 0, 0, 0, 0x42])
}

fn completed(o: Outcome) -> Counted {
    match o {
        Outcome::Completed(c) => c,
        other => panic!("expected a completion, got {other:?}"),
    }
}

fn running(o: Outcome) -> Vec<u8> {
    match o {
        Outcome::Running(ctx) => ctx,
        other => panic!("expected a running time-cycle, got {other:?}"),
    }
}

/// The randoms the applet drew for its BEGIN and RECOVERY BEGIN commands, in order.
fn drawn(host: &Host) -> Vec<Rnd> {
    host.steps
        .iter()
        .filter(|s| s.name == "begin" || s.name == "recovery begin")
        .map(|s| s.rnd)
        .collect()
}

/// The applet's side: returns the two batches and the randoms it drew.
fn applet_side() -> (Batch, Batch, Vec<Rnd>, Host) {
    let mut host = Host::new(common::test_sam_keys(SamId([0x5A; 8])));
    let mut shopper = Shopper {
        card: common::test_card(card_id(), 5000),
    };
    let mut counted = Vec::new();

    // 1. A single purchase.
    counted.push(completed(
        purchase(&mut host, &mut shopper, 1250, DateTime(T0)).expect("purchase"),
    ));

    // 2. A time-cycle: DEBIT, two ticks when due, then the shopper stops.
    let order = Order::time_cycle(Amount(200), Units(5), 60);
    let (debit, ctx) = authorize(&mut host, &mut shopper, &order, DateTime(T0 + 10)).expect("tc");
    let mut ctx = running(host.complete(&shopper.debit(&debit), &ctx).expect("debit"));
    for due in [T0 + 70, T0 + 130] {
        let (tick, pending) = host.tick(DateTime(due), &ctx).expect("tick due");
        ctx = running(host.complete(&shopper.tick(&tick), &pending).expect("tick"));
    }
    counted.push(completed(host.stop(0, &ctx).expect("stop")));

    // 3. The DEBIT reaches the card but its answer is lost: recovery completes it, and
    // the late answer gets the same record and tag without counting it again.
    let (out, late) = lost_and_recovered(&mut host, &mut shopper, 300, DateTime(T0 + 200), true);
    assert_eq!(late, Some(Ok(out.clone())));
    counted.push(completed(out));

    // 4. The DEBIT never reaches the card: recovery voids it.
    let (out, _) = lost_and_recovered(&mut host, &mut shopper, 400, DateTime(T0 + 300), false);
    assert_eq!(out, Outcome::Nothing);

    let first = host.close(false, 1, &counted, 3, CREATED).expect("close 1");

    let second_rec =
        completed(purchase(&mut host, &mut shopper, 500, DateTime(T0 + 400)).expect("p5"));
    let second = host
        .close(false, 2, &[second_rec], 1, CREATED)
        .expect("close 2");
    let rnds = drawn(&host);
    (first, second, rnds, host)
}

/// The same purchases through `purse::sam::Sam` with the same randoms.
fn sam_side(rnds: &[Rnd]) -> (Batch, Batch) {
    let keys = common::test_sam_keys(SamId([0x5A; 8]));
    let mut sam = Sam::new(keys);
    let mut journal = MemoryJournal::default();
    let mut card = common::test_card(card_id(), 5000);
    let mut rnd = rnds.iter().copied();
    let mut next = || rnd.next().expect("as many randoms as the applet drew");
    let mut link = LocalCard {
        card: &mut card,
        store: &mut MemoryStore,
    };
    let mut s = Surrogate {
        sam: &mut sam,
        journal: &mut journal,
    };
    s.purchase(&mut link, Order::single(Amount(1250)), next(), DateTime(T0))
        .expect("purchase");
    let order = Order::time_cycle(Amount(200), Units(5), 60);
    let p = s
        .purchase(&mut link, order, next(), DateTime(T0 + 10))
        .expect("tc");
    for due in [T0 + 70, T0 + 130] {
        let c = s
            .tick(&mut link, p.sam_tx_seq, DateTime(due))
            .expect("tick");
        assert!(matches!(c, Completion::Confirmed { .. }));
    }
    s.sam.stop(p.sam_tx_seq).expect("stop");

    for (amount, at, send) in [(300, T0 + 200, true), (400, T0 + 300, false)] {
        let (begun, init) = common::initialize(
            s.sam,
            &mut link,
            Order::single(Amount(amount)),
            KeyVersion(1),
            next(),
        );
        let auth = s
            .sam
            .authorize(&begun, KeyVersion(1), &init, DateTime(at))
            .expect("authorize");
        if send {
            let _lost = exchange(&mut link, &CardCommand::Debit(auth.debit));
        }
        let out = s.recover(&mut link, next()).expect("recover");
        let want = if send {
            SamOutcome::Completed
        } else {
            SamOutcome::Voided
        };
        assert_eq!(out, vec![(auth.durable.tx.sam_tx_seq, want)]);
    }
    let first = s.sam.close_period(CREATED.into()).batch;
    s.purchase(
        &mut link,
        Order::single(Amount(500)),
        next(),
        DateTime(T0 + 400),
    )
    .expect("p5");
    let second = s.sam.close_period(CREATED.into()).batch;
    (first, second)
}

#[test]
fn batches_clear_and_equal_the_in_memory_sams() {
    let (a1, a2, rnds, host) = applet_side();
    let (s1, s2) = sam_side(&rnds);
    let issuer = common::test_issuer();
    let mut clearing = ClearingState::default();
    for (applet, sam) in [(&a1, &s1), (&a2, &s2)] {
        assert_eq!(verify(applet, &issuer, &clearing), vec![]);
        assert_eq!(
            serde_json::to_string(applet).expect("json"),
            serde_json::to_string(sam).expect("json"),
            "the applet's batch is the SAM's, byte for byte"
        );
        clearing.clear(applet, &issuer).expect("accepted");
    }
    assert_eq!(a1.transactions.len(), 3);
    assert_eq!(a1.totals.sum.0, 1250 + 600 + 300);
    assert_eq!(a1.transactions[1].units, Units(3));
    let s = host.sam.state();
    assert_eq!((s.last_close_seq.0, s.next_tx_seq.0), (2, 6));
    assert_eq!(
        (s.closed.count, s.closed.sum.0, s.period.count),
        (1, 500, 0)
    );
}

#[test]
fn get_status_reports_identity_and_counters() {
    let (_, _, _, mut host) = applet_side();
    let r = host.send("status", &[0x80, 0x7E, 0x00, 0x00, 0x00]);
    assert!(r.sw.is_ok());
    assert_eq!(r.data.len(), 45);
    assert_eq!(&r.data[..8], &[0x5A; 8]);
    assert_eq!(&r.data[11..15], &6u32.to_be_bytes(), "NextTxSeq");
    assert_eq!(&r.data[15..19], &2u32.to_be_bytes(), "LastCloseSeq");
    assert_eq!(&r.data[31..35], &1u32.to_be_bytes(), "ClosedCount");
    assert_eq!(r.data[44], 0, "not blocked");
}

//! Answers lost on their way to the host (a reader error, the SAM pulled, the plugin
//! killed before it stored the answer): COMPLETE, STOP and RECOVERY END sent again for a
//! transaction the SAM already made final get the very same bytes, counted once, even
//! after a close began; anything else for that transaction is refused (6985).

mod common;
mod sam_applet_host;

use purse::clearing::{verify, ClearingState};
use purse::keys::SamKeys;
use purse::sam::Order;
use purse::sam_applet::REPLY_DEPTH;
use purse::{Amount, CardId, DateTime, Nt, SamId, StatusWord, Units};
use sam_applet_host::{authorize, counted, purchase, recover, Host, Outcome, Shopper};

const T0: u32 = 1_795_000_000;
const SW_STATE: StatusWord = StatusWord(0x6985);

fn keys() -> SamKeys {
    common::test_sam_keys(SamId([0x5A; 8]))
}

fn shopper(balance: u32) -> Shopper {
    Shopper {
        card: common::test_card(CardId([0x10, 0, 0, 0, 0, 0, 0, 9]), balance),
    }
}

/// The raw response (data and SW) of the host's last SAM command.
fn last_response(host: &Host) -> Vec<u8> {
    host.steps
        .last()
        .expect("a command was sent")
        .response
        .clone()
}

fn totals(host: &Host) -> (u32, u64) {
    let p = host.sam.state().period;
    (p.count, p.sum.0)
}

#[test]
fn a_complete_sent_again_gets_the_same_bytes_before_and_after_the_close_began() {
    let mut host = Host::new(keys());
    let mut s = shopper(5000);
    let other = counted(purchase(&mut host, &mut s, 40, DateTime(T0)).expect("p1"));
    let order = Order::single(Amount(100));
    let (debit, ctx) = authorize(&mut host, &mut s, &order, DateTime(T0 + 1)).expect("auth");
    let answer = s.debit(&debit);
    let first = counted(host.complete(&answer, &ctx).expect("complete"));
    let bytes = last_response(&host);
    assert_eq!(totals(&host), (2, 140));

    for _ in 0..2 {
        assert_eq!(
            host.complete(&answer, &ctx),
            Ok(Outcome::Completed(first.clone()))
        );
        assert_eq!(last_response(&host), bytes, "byte for byte");
    }
    assert_eq!(totals(&host), (2, 140), "counted once");

    // The close freezes period 1 and opens period 2: the answer is still period 1's.
    assert_eq!(host.close_begin(false, 1), Ok((1, 2, 140)));
    assert_eq!(
        host.complete(&answer, &ctx),
        Ok(Outcome::Completed(first.clone()))
    );
    assert_eq!(last_response(&host), bytes);
    assert_eq!(totals(&host), (0, 0), "nothing counted in the new period");

    // The close takes the record once, and the batch clears.
    let twice = [other.entry(), first.entry(), first.entry()];
    assert_eq!(host.close_record(&twice), Err(SW_STATE), "a duplicate");
    let batch = host
        .close(true, 1, &[other, first], 3, "2026-12-06T00:00:00Z")
        .expect("the close accepts the record");
    assert_eq!((batch.totals.count, batch.totals.sum.0), (2, 140));
    assert_eq!(
        verify(&batch, &common::test_issuer(), &ClearingState::default()),
        vec![]
    );
}

#[test]
fn a_refused_debit_stays_refused_when_sent_again() {
    let mut host = Host::new(keys());
    let mut s = shopper(5000);
    let order = Order::single(Amount(100));
    let (debit, ctx) = authorize(&mut host, &mut s, &order, DateTime(T0)).expect("auth");
    let refused = [0x69, 0x85];
    assert_eq!(host.complete(&refused, &ctx), Ok(Outcome::Nothing));
    assert_eq!(host.complete(&refused, &ctx), Ok(Outcome::Nothing));
    // A genuine DEBIT answer now would be another outcome than the one given.
    let answer = s.debit(&debit);
    assert_eq!(host.complete(&answer, &ctx), Err(SW_STATE));
    assert_eq!(totals(&host), (0, 0));
}

#[test]
fn a_stop_sent_again_gets_the_same_bytes_and_an_older_context_nothing() {
    let mut host = Host::new(keys());
    let mut s = shopper(5000);
    let order = Order::time_cycle(Amount(200), Units(5), 60);
    let (debit, ctx) = authorize(&mut host, &mut s, &order, DateTime(T0)).expect("auth");
    let Ok(Outcome::Running(one)) = host.complete(&s.debit(&debit), &ctx) else {
        panic!("running");
    };
    let (tick, pending) = host.tick(DateTime(T0 + 60), &one).expect("tick");
    let Ok(Outcome::Running(two)) = host.complete(&s.tick(&tick), &pending) else {
        panic!("running");
    };
    let stopped = counted(host.stop(0, &two).expect("stop"));
    let bytes = last_response(&host);
    assert_eq!(stopped.tx_record().expect("record").units, Units(2));

    assert_eq!(host.stop(0, &two), Ok(Outcome::Completed(stopped)));
    assert_eq!(last_response(&host), bytes);
    // The context of one unit would be another record; a stopped cycle does not tick.
    assert_eq!(host.stop(0, &one), Err(SW_STATE));
    assert_eq!(host.tick(DateTime(T0 + 120), &two), Err(SW_STATE));
    assert_eq!(totals(&host), (1, 400));
}

#[test]
fn a_recovery_end_sent_again_gets_the_same_bytes() {
    let mut host = Host::new(keys());
    let mut s = shopper(5000);
    for (amount, reaches_card) in [(300, true), (400, false)] {
        let order = Order::single(Amount(amount));
        let (debit, ctx) = authorize(&mut host, &mut s, &order, DateTime(T0)).expect("auth");
        let nt = Nt(s.card.state().nt_last.0 + 1);
        if reaches_card {
            s.debit(&debit);
        }
        let out = recover(&mut host, &mut s, &ctx, nt).expect("recovery");
        let end = host.steps.last().expect("RECOVERY END").clone();
        let again = host.send("recovery end again", &end.apdu);
        assert!(again.sw.is_ok());
        assert_eq!(last_response(&host), end.response);
        assert_eq!(matches!(out, Outcome::Completed(_)), reaches_card);
    }
    assert_eq!(totals(&host), (1, 300));
}

#[test]
fn the_sam_remembers_the_last_final_transactions_only() {
    let mut host = Host::new(keys());
    let mut s = shopper(1_000_000);
    let order = Order::single(Amount(1));
    let (debit, ctx) = authorize(&mut host, &mut s, &order, DateTime(T0)).expect("auth");
    let answer = s.debit(&debit);
    host.complete(&answer, &ctx).expect("complete");
    for i in 0..REPLY_DEPTH as u32 - 1 {
        purchase(&mut host, &mut s, 1, DateTime(T0 + i)).expect("purchase");
    }
    assert!(host.complete(&answer, &ctx).is_ok(), "still remembered");
    purchase(&mut host, &mut s, 1, DateTime(T0)).expect("one more");
    assert_eq!(host.complete(&answer, &ctx), Err(SW_STATE), "forgotten");
    assert_eq!(host.sam.state().replies.len(), REPLY_DEPTH);
}

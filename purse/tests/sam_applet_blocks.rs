//! `SAM_TxSeq` reserved in blocks: AUTHORIZE writes only when it opens a block, a
//! restart from what was persisted resumes after the block (an allowed gap), never
//! reuses a number, keeps what was handed out since the last write open, and a begin
//! context from before the restart cannot get a second S2.

mod common;
mod sam_applet_host;

use purse::keys::SamKeys;
use purse::sam::Order;
use purse::sam_applet::window::{MAX_DOUBTS, WINDOW_BITS};
use purse::sam_applet::{
    SamApplet, SamState, SamStore, SamStoreError, BEGIN_BLOCK, REPLY_DEPTH, TX_BLOCK,
};
use purse::{Amount, CardId, Currency, DateTime, KeyVersion, SamId, StatusWord};
use sam_applet_host::{authorize, counted, purchase, sam_state, Host, Outcome, Shopper};

const T0: u32 = 1_795_000_000;

fn keys() -> SamKeys {
    common::test_sam_keys(SamId([0x5A; 8]))
}

fn shopper() -> Shopper {
    Shopper {
        card: common::test_card(CardId([0x10, 0, 0, 0, 0, 0, 0, 0x0B]), 10_000_000),
    }
}

/// What reached the SAM's non-volatile memory: the last state stored, and how many
/// writes it took.
#[derive(Default)]
struct Persisted {
    last: Option<SamState>,
    writes: u32,
}

impl SamStore for Persisted {
    fn persist(&mut self, state: &SamState) -> Result<(), SamStoreError> {
        self.last = Some(state.clone());
        self.writes += 1;
        Ok(())
    }
}

fn fresh() -> Host<Persisted> {
    Host::with_store(SamApplet::new(sam_state(keys())), Persisted::default())
}

/// The SAM loses power and starts from what it persisted.
fn restart(host: &Host<Persisted>) -> Host<Persisted> {
    let state = host.store.last.clone().expect("something was persisted");
    let store = Persisted {
        last: Some(state.clone()),
        writes: 0,
    };
    Host::with_store(SamApplet::new(state), store)
}

#[test]
fn a_purchase_writes_once_and_authorize_once_per_block() {
    let mut host = fresh();
    let mut s = shopper();
    let n = 3 * TX_BLOCK;
    for i in 0..n {
        purchase(&mut host, &mut s, 1, DateTime(T0 + i)).expect("purchase");
    }
    // COMPLETE each time; AUTHORIZE and BEGIN once per block each.
    assert_eq!(host.store.writes, n + n / TX_BLOCK + n / BEGIN_BLOCK);
    let p = host.sam.state().period;
    assert_eq!((p.count, p.sum.0), (n, u64::from(n)));
}

#[test]
fn a_restart_resumes_after_the_block_and_keeps_what_was_handed_out() {
    let mut host = fresh();
    let mut s = shopper();
    purchase(&mut host, &mut s, 100, DateTime(T0)).expect("p1");
    // Authorized after the last write; the DEBIT reaches the card; the SAM loses power.
    let order = Order::single(Amount(250));
    let (debit, ctx) = authorize(&mut host, &mut s, &order, DateTime(T0)).expect("p2");
    let answer = s.debit(&debit);
    // Begun, and the card answered INITIALIZE, but not authorized yet.
    assert!(s.select().sw.is_ok());
    let (init, begin) = host.begin(&order, Currency::EUR).expect("begin");
    let init_resp = s.initialize(1, KeyVersion(1), &init).data;

    let mut host = restart(&host);
    assert_eq!(
        host.sam.state().next_tx_seq.0,
        TX_BLOCK + 1,
        "after the block"
    );
    // The begin context authorizes once: after a restart, never.
    assert_eq!(
        host.authorize(KeyVersion(1), DateTime(T0), &init_resp, &begin),
        Err(StatusWord(0x6A83))
    );
    // The purchase authorized before the restart completes, once.
    let done = counted(host.complete(&answer, &ctx).expect("complete"));
    assert_eq!(done.seq().0, 2);
    assert_eq!(host.complete(&answer, &ctx), Ok(Outcome::Completed(done)));
    // New purchases take numbers after the block: none is reused.
    let next = counted(purchase(&mut host, &mut s, 5, DateTime(T0)).expect("p3"));
    assert_eq!(next.seq().0, TX_BLOCK + 1);
    let p = host.sam.state().period;
    assert_eq!((p.count, p.sum.0), (3, 355));

    // Another restart: after the second block; what is left of both blocks is doubted.
    let again = restart(&host);
    assert_eq!(again.sam.state().next_tx_seq.0, 2 * TX_BLOCK + 1);
    assert_eq!(again.sam.state().finals.doubts().len(), 2);
}

#[test]
fn a_clean_stop_gives_the_rest_of_the_block_back() {
    let mut host = fresh();
    let mut s = shopper();
    purchase(&mut host, &mut s, 100, DateTime(T0)).expect("p1");
    host.sam.power_off(&mut host.store).expect("stored");
    let mut host = restart(&host);
    assert!(host.sam.state().finals.doubts().is_empty());
    let next = counted(purchase(&mut host, &mut s, 5, DateTime(T0)).expect("p2"));
    assert_eq!(next.seq().0, 2, "no gap");
}

#[test]
fn numbers_doubted_at_restarts_never_fill_the_window() {
    let mut host = fresh();
    let mut s = shopper();
    // Restarts, each leaving most of a block never used (and never final).
    for _ in 0..MAX_DOUBTS + 2 {
        purchase(&mut host, &mut s, 1, DateTime(T0)).expect("purchase");
        host = restart(&host);
    }
    assert_eq!(host.sam.state().finals.doubts().len(), MAX_DOUBTS);
    // A whole window later AUTHORIZE still finds room and no laggard was taken.
    for _ in 0..WINDOW_BITS + TX_BLOCK {
        purchase(&mut host, &mut s, 1, DateTime(T0)).expect("room");
    }
    assert!(host.sam.state().finals.laggards().is_empty());
    assert_eq!(host.sam.state().replies.len(), REPLY_DEPTH);
}

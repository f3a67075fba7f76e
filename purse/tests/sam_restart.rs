//! A SAM that crashes and restarts from its journal: nothing authorized is lost, no
//! SAM_TxSeq is reused, and recovery finishes what was in flight.

mod common;

use purse::card::{Card, MemoryStore};
use purse::commands::CardCommand;
use purse::keys::{IssuerKeys, SamKeys};
use purse::sam::{Order, Outcome, Sam, Snapshot, TxState};
use purse::surrogate::{exchange, Journal, LocalCard, MemoryJournal, Surrogate};
use purse::{Amount, CardId, CloseSeq, DateTime, KeyVersion, Rnd, SamId, SamTxSeq};

fn keys() -> (IssuerKeys, SamKeys) {
    (
        common::test_issuer(),
        common::test_sam_keys(SamId([0x5A; 8])),
    )
}

fn card() -> Card {
    common::test_card(CardId([0x10; 8]), 5000)
}

#[test]
fn crash_between_authorize_and_complete_loses_nothing() {
    let (issuer, sam_keys) = keys();
    let mut c = card();
    let mut journal = MemoryJournal::default();
    let now = DateTime(1_795_000_000);

    // One purchase completes; the second is authorized and its DEBIT reaches the card,
    // then the SAM process dies before it sees the answer.
    let mut sam = Sam::new(sam_keys.clone());
    {
        let mut link = LocalCard {
            card: &mut c,
            store: &mut MemoryStore,
        };
        let mut s = Surrogate {
            sam: &mut sam,
            journal: &mut journal,
        };
        s.purchase(&mut link, Order::single(Amount(100)), Rnd([7; 16]), now)
            .expect("first");
    }
    let mut link = LocalCard {
        card: &mut c,
        store: &mut MemoryStore,
    };
    let (begun, init) = common::initialize(
        &sam,
        &mut link,
        Order::single(Amount(250)),
        KeyVersion(1),
        Rnd([8; 16]),
    );
    let auth = sam
        .authorize(&begun, KeyVersion(1), &init, now)
        .expect("authorize");
    journal
        .store(std::slice::from_ref(&auth.durable))
        .expect("write-ahead");
    let answer = exchange(&mut link, &CardCommand::Debit(auth.debit));
    assert!(matches!(answer, purse::sam::Exchange::Answered(ref r) if r.sw.is_ok()));
    drop(sam); // crash: the answer never reached the journal

    // Restart from the journal alone, with the counter record of the crash lost too.
    let mut records = journal.0.clone();
    for r in &mut records {
        r.next_tx_seq = SamTxSeq(1);
    }
    let mut sam = Sam::restore(sam_keys, Snapshot::from_journal(records, CloseSeq(0)));
    assert_eq!(
        sam.next_tx_seq(),
        SamTxSeq(3),
        "no SAM_TxSeq reused after a crash"
    );
    let pending = auth.durable.tx.sam_tx_seq;
    assert_eq!(sam.tx(pending).map(|t| t.state), Some(TxState::Pending));

    c.reset();
    let mut link = LocalCard {
        card: &mut c,
        store: &mut MemoryStore,
    };
    let mut s = Surrogate {
        sam: &mut sam,
        journal: &mut journal,
    };
    assert_eq!(
        s.recover(&mut link, Rnd([9; 16])).expect("recover"),
        vec![(pending, Outcome::Completed)]
    );

    let close = sam.close_period("2026-11-24T23:59:00Z".into());
    journal.store(&close.durable).expect("close records");
    let batch = close.batch;
    assert_eq!(batch.totals.count, 2);
    assert_eq!(batch.totals.sum.0, 350);
    assert!(purse::clearing::verify(&batch, &issuer, &Default::default()).is_empty());
    assert_eq!(c.state().balance, Amount(4650));

    // After the close, a restart holds nothing open and continues the sequence.
    let sam = Sam::restore(
        keys().1,
        Snapshot::from_journal(journal.0.clone(), CloseSeq(1)),
    );
    assert_eq!(sam.open_txs().count(), 0);
    assert_eq!(sam.next_tx_seq(), SamTxSeq(3));
    assert_eq!(sam.last_close_seq(), CloseSeq(1));
}

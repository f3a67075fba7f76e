//! The SAM applet in process with its state in memory (the benchmark's SAM) answers
//! without I/O, so the engine runs its commands on the async workers themselves
//! (`SecurityModule::without_io`) instead of handing them off. Many shoppers at once on
//! a multi-threaded server must still get every purchase counted once under its own
//! `SAM_TxSeq`, and every card debited exactly what its payments say.

mod support;

use std::collections::HashSet;

use support::{assert_card_charged, Http, Plugin, TestCard};
use tokio::task::JoinSet;

const SHOPPERS: u8 = 16;
const PURCHASES: u32 = 8;
const PRICE: u32 = 125;
const START: u32 = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_shoppers_at_once_through_the_sam_on_the_async_workers() {
    let p = Plugin::start_on(
        support::temp_dir("in-memory-sam"),
        vec![support::memory_sam(support::sam_keys())],
        shop_plugin::http::Limits::default(),
    )
    .await;
    let mut set = JoinSet::new();
    for i in 0..SHOPPERS {
        let http = Http::new(p.addr);
        set.spawn(async move {
            let mut card = TestCard::new(100 + i, START);
            for _ in 0..PURCHASES {
                http.pay(&mut card, PRICE).await;
            }
            card
        });
    }
    let mut cards = Vec::new();
    while let Some(card) = set.join_next().await {
        cards.push(card.expect("a shopper's task"));
    }

    let payments = p.all_payments().await;
    let n = usize::from(SHOPPERS) * PURCHASES as usize;
    assert_eq!(payments.len(), n);
    for card in &cards {
        let paid = assert_card_charged(&payments, card, START);
        assert_eq!(paid, u64::from(PURCHASES * PRICE));
    }
    let seqs: HashSet<u64> = payments
        .iter()
        .map(|p| p["sam_tx_seq"].as_u64().expect("a SAM_TxSeq"))
        .collect();
    assert_eq!(seqs.len(), n, "each purchase its own SAM_TxSeq");
    let records: i64 = p
        .app
        .engine
        .store()
        .read(|c| c.query_row("SELECT COUNT(*) FROM sam_record", [], |r| r.get(0)))
        .await
        .expect("records");
    assert_eq!(records, n as i64, "each completion counted once");
}

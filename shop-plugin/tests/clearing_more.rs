//! More uploads to the real clearing office (the `clearing-office` binary on loopback,
//! its own SQLite file): two shops uploading at once; the office killed in the middle of
//! an upload (mid-body, then with the whole batch in and its answer held back) and
//! restarted on the same database, the batch accepted exactly once; a SAM's credential
//! with another SAM's batch refused 403 and recorded so.

mod support;

use shop_plugin::settlement::Report;
use support::office::{answer, closes, relay, rows, settler, Hold, Office, SAM};
use support::{sam_keys_of, Plugin, TestCard};

/// `count` purchases spread over five cards (`first_card`…); their sum.
async fn payments(p: &Plugin, first_card: u8, count: u32) -> u64 {
    let mut cards: Vec<TestCard> = (0..5)
        .map(|i| TestCard::new(first_card + i, 100_000))
        .collect();
    let mut sum = 0;
    for i in 0..count {
        let amount = 100 + i;
        p.pay(&mut cards[(i % 5) as usize], amount).await;
        sum += u64::from(amount);
    }
    sum
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shops_upload_at_once_and_each_gets_its_own_decision_and_payout() {
    let p1 = Plugin::start("clear-two-1").await;
    let p2 = Plugin::start_with_sam("clear-two-2", sam_keys_of(8)).await;
    let office = Office::start(&p1.dir);
    let c1 = office.register().await;
    office.register_merchant("shop2").await;
    let sam2 = "5a00000000000008";
    let c2 = office.register_sam_of(sam2, "shop2").await;
    let (sum1, sum2) = tokio::join!(payments(&p1, 60, 40), payments(&p2, 70, 30));

    let s1 = settler(&p1, &office.url, &c1);
    let s2 = settler(&p2, &office.url, &c2);
    let (r1, r2) = tokio::join!(s1.run(&p1.app.engine, false), s2.run(&p2.app.engine, false));
    let (r1, r2) = (r1.expect("settle 1"), r2.expect("settle 2"));
    assert_eq!((closes(&r1.posted), r1.post_error), (vec![1], None));
    assert_eq!((closes(&r2.posted), r2.post_error), (vec![1], None));

    // Each plugin holds the office's decision on its own batch.
    for (p, sam, n, sum, merchant) in [
        (&p1, SAM, 40, sum1, "shop1"),
        (&p2, sam2, 30, sum2, "shop2"),
    ] {
        let a = answer(&rows(p).await[0]);
        assert_eq!(
            (
                a["decision"].as_str(),
                a["sam_id"].as_str(),
                a["close_seq"].as_u64(),
                a["transaction_count"].as_u64(),
                a["gross"].as_u64(),
                a["payout"]["merchant_id"].as_str(),
            ),
            (
                Some("accepted"),
                Some(sam),
                Some(1),
                Some(n),
                Some(sum),
                Some(merchant)
            ),
            "{a}"
        );
        // The office's side: one accepted batch of this SAM, one payout to its merchant.
        let b = office.batches_of(sam).await;
        assert_eq!(b.len(), 1, "{b:?}");
        assert_eq!(
            (
                b[0]["decision"].as_str(),
                b[0]["transaction_count"].as_u64()
            ),
            (Some("accepted"), Some(n))
        );
        let po = office.payouts_of(merchant).await;
        assert_eq!(po.len(), 1, "{po:?}");
        assert_eq!(po[0]["amount"].as_u64(), Some(sum));
    }
}

/// A settlement run through a relay that holds the upload as `hold` says; the office is
/// killed once it holds. The run's report.
async fn settle_killing(p: &Plugin, office: &mut Office, credential: &str, hold: Hold) -> Report {
    let (url, held) = relay(office.addr(), hold).await;
    let run = {
        let (s, app) = (settler(p, &url, credential), p.app.clone());
        tokio::spawn(async move { s.run(&app.engine, false).await })
    };
    held.await.expect("the relay holds the upload");
    office.kill();
    run.await.expect("join").expect("settle")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_office_killed_mid_upload_is_retried_after_its_restart_and_accepts_once() {
    let p = Plugin::start("clear-kill").await;
    let mut office = Office::start(&p.dir);
    let credential = office.register().await;
    let n = 150;
    let sum = payments(&p, 80, n).await;

    // 1. Killed with 4 KiB of the body in: nothing recorded, the batch not delivered.
    let r = settle_killing(&p, &mut office, &credential, Hold::Body(4096)).await;
    assert!(r.posted.is_empty(), "{r:?}");
    assert!(r.post_error.is_some(), "{r:?}");
    let row = &rows(&p).await[0];
    assert_eq!((row.posted_at, row.decision.as_deref()), (None, None));
    assert_eq!(
        row.attempts, 2,
        "the try cut off and the one to the office down"
    );
    let file = std::fs::metadata(row.file.as_deref().expect("file")).expect("batch file");
    assert!(file.len() > 8 * 4096, "a large batch: {} bytes", file.len());
    office.spawn();
    assert!(
        office.batches_of(SAM).await.is_empty(),
        "nothing half-recorded"
    );

    // 2. The whole batch in, killed while it verifies (or has just stored it), its
    //    answer never sent on: still not delivered.
    let r = settle_killing(&p, &mut office, &credential, Hold::Answer).await;
    assert!(r.posted.is_empty() && r.post_error.is_some(), "{r:?}");
    assert_eq!(rows(&p).await[0].posted_at, None);

    // 3. The office back on the same database: the batch goes out again and is accepted
    //    exactly once, whichever state the kill left.
    office.spawn();
    let r = settler(&p, &office.url, &credential)
        .run(&p.app.engine, false)
        .await
        .expect("settle");
    assert_eq!((closes(&r.posted), r.post_error), (vec![1], None));
    let a = answer(&rows(&p).await[0]);
    assert_eq!(
        (a["transaction_count"].as_u64(), a["gross"].as_u64()),
        (Some(u64::from(n)), Some(sum))
    );
    let b = office.batches_of(SAM).await;
    assert_eq!(b.len(), 1, "one batch at the office: {b:?}");
    assert_eq!(b[0]["decision"], "accepted");
    let po = office.payouts_of("shop1").await;
    assert_eq!(po.len(), 1, "{po:?}");
    assert_eq!(po[0]["amount"].as_u64(), Some(sum));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_without_its_sams_credential_is_not_sent_and_recorded() {
    let p = Plugin::start("clear-other-sam").await;
    let office = Office::start(&p.dir);
    let own = office.register().await;
    let other = office.register_sam("5a00000000000009").await;
    let mut card = TestCard::new(90, 10_000);
    p.pay(&mut card, 450).await;

    // The plugin of SAM …07 holds only SAM …09's credential: each batch goes out only
    // under its own SAM's credential, so nothing is sent.
    let r = settler(&p, &office.url, &other)
        .run(&p.app.engine, false)
        .await
        .expect("settle");
    assert!(r.posted.is_empty());
    let e = r.post_error.expect("refused");
    let prefix = format!("batch 1 of SAM {SAM}: ");
    assert!(
        e.starts_with(&format!("{prefix}no upload credential for SAM {SAM}")),
        "{e}"
    );
    let row = &rows(&p).await[0];
    assert_eq!(
        (row.posted_at, row.attempts, row.last_error.as_deref()),
        (None, 1, Some(&e[prefix.len()..])),
        "refused at once, not retried, recorded"
    );
    assert!(office.batches_of(SAM).await.is_empty());
    assert!(office.batches_of("5a00000000000009").await.is_empty());

    // The right credential: accepted, the card's balance as the batch says.
    let r = settler(&p, &office.url, &own)
        .run(&p.app.engine, false)
        .await
        .expect("settle");
    assert_eq!((closes(&r.posted), r.post_error), (vec![1], None));
    assert_eq!(card.balance(), 10_000 - 450);
}

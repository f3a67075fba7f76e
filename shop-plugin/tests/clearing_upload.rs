//! `settle` against the real clearing office: the `clearing-office` binary on loopback
//! (plain HTTP, its own SQLite file, the tests' issuer keys), the SAM registered through
//! the operator API. Accepted and recorded; the same batch sent again after a lost
//! answer gets the same decision; an office that is down (killed, then restarted on the
//! same database) delivers nothing until it is back; a captive portal's 200 page is not
//! a delivery; a batch rejected for a record whose TAC does not verify is corrected
//! (closed again without it, its payment failed `clearing_refused`) and accepted.

mod support;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde_json::Value;
use support::office::{answer, closes, forged_card, rows, settler, stand_in, Office, SAM};
use support::{Plugin, TestCard, T0};

#[tokio::test]
async fn accepted_recorded_and_the_same_batch_after_a_lost_answer_gets_the_same_decision() {
    let p = Plugin::start("clear-accept").await;
    let office = Office::start(&p.dir);
    let credential = office.register().await;
    p.pay(&mut TestCard::new(41, 10_000), 1250).await;

    // Day 1 goes out and its answer is lost: the office has it, the plugin does not know.
    let s = settler(&p, &office.url, &credential);
    let r1 = s.run(&p.app.engine, false).await.expect("settle");
    assert_eq!(closes(&r1.posted), [1]);
    let first = answer(&rows(&p).await[0]);
    assert_eq!(first["decision"], "accepted");
    assert_eq!(first["payout"]["net"], 1250);
    p.app
        .engine
        .store()
        .commit(vec![Box::new(|tx: &rusqlite::Transaction<'_>| {
            tx.execute(
                "UPDATE batches SET posted_at = NULL, decision = NULL, answer = NULL",
                [],
            )?;
            Ok(())
        })])
        .await
        .expect("forget the answer");
    let r2 = s.run(&p.app.engine, false).await.expect("settle again");
    assert_eq!((closes(&r2.posted), r2.post_error), (vec![1], None));
    assert_eq!(
        answer(&rows(&p).await[0]),
        first,
        "the office's stored answer"
    );

    // A wrong credential: refused, not delivered, not retried within the run.
    p.pay(&mut TestCard::new(42, 10_000), 300).await;
    p.set_time(T0 + 86_400);
    let bad = settler(&p, &office.url, &format!("{SAM}.{}", "0".repeat(64)));
    let r3 = bad.run(&p.app.engine, false).await.expect("settle");
    assert_eq!(
        r3.post_error.as_deref(),
        Some(
            "batch 2 of SAM 5a00000000000007: HTTP 401 invalid_credential: the bearer \
             credential is not valid here"
        )
    );
    assert_eq!(rows(&p).await[1].attempts, 1);
    let r4 = s.run(&p.app.engine, false).await.expect("settle");
    assert_eq!(closes(&r4.posted), [2]);
}

#[tokio::test]
async fn an_office_down_or_a_captive_portal_delivers_nothing_until_the_office_answers() {
    let p = Plugin::start("clear-down").await;
    let mut office = Office::start(&p.dir);
    let credential = office.register().await;
    p.pay(&mut TestCard::new(43, 10_000), 700).await;

    // A captive portal: 200 with its login page.
    let portal_url = stand_in(
        "text/html",
        Arc::new(Mutex::new(Bytes::from_static(
            b"<html><body>Sign in to the Wi-Fi</body></html>",
        ))),
    )
    .await;
    let r = settler(&p, &portal_url, &credential)
        .run(&p.app.engine, false)
        .await
        .expect("settle");
    assert!(r.posted.is_empty());
    assert!(
        r.post_error
            .as_deref()
            .is_some_and(|e| e.contains("not the office's decision")),
        "{r:?}"
    );
    assert!(rows(&p).await[0].posted_at.is_none());

    // The office is down (killed): nothing delivered, tried twice.
    office.kill();
    let s = settler(&p, &office.url, &credential);
    let r = s.run(&p.app.engine, false).await.expect("settle");
    assert!(r.posted.is_empty() && r.post_error.is_some(), "{r:?}");
    let row = &rows(&p).await[0];
    assert_eq!((row.posted_at, row.attempts), (None, 4));

    // Back on the same database: delivered and accepted.
    office.spawn();
    let r = s.run(&p.app.engine, false).await.expect("settle");
    assert_eq!((closes(&r.posted), r.post_error), (vec![1], None));
    assert_eq!(rows(&p).await[0].decision.as_deref(), Some("accepted"));
}

#[tokio::test]
async fn a_batch_rejected_for_a_bad_tac_is_corrected_and_accepted() {
    let p = Plugin::start("clear-correct").await;
    let office = Office::start(&p.dir);
    let credential = office.register().await;
    let (good, _) = p.pay(&mut TestCard::new(44, 10_000), 500).await;
    let (bad, _) = p.pay(&mut forged_card(45), 800).await;

    let mut s = settler(&p, &office.url, &credential);
    let r = s.run(&p.app.engine, false).await.expect("settle");
    assert!(r.posted.is_empty());
    assert_eq!(r.rejected.len(), 1);
    assert!(
        r.rejected[0].why[0].starts_with("E_TAC SAM_TxSeq 2 "),
        "{r:?}"
    );
    assert_eq!(rows(&p).await[0].decision.as_deref(), Some("rejected"));
    // Nothing happens by itself: the next run reports the rejection again.
    let again = s.run(&p.app.engine, false).await.expect("settle");
    assert_eq!(again.rejected, r.rejected);

    // By policy: corrected in the run and accepted.
    s.auto_correct = true;
    let r = s.run(&p.app.engine, false).await.expect("settle");
    assert_eq!(r.corrected.len(), 1);
    assert_eq!(r.corrected[0].excluded, [2]);
    assert_eq!((closes(&r.posted), r.rejected.len()), (vec![1], 0));
    let row = &rows(&p).await[0];
    let a = answer(row);
    assert_eq!(
        (a["transaction_count"].as_u64(), a["gross"].as_u64()),
        (Some(1), Some(500))
    );
    let file: Value =
        serde_json::from_slice(&std::fs::read(row.file.as_deref().expect("file")).expect("read"))
            .expect("json");
    assert_eq!(file["totals"]["count"], 1);

    // The refused payment: failed, clearing_refused, with its event; the other kept.
    let (_, pb) = p
        .merchant("GET", &format!("/v1/payments/{bad}"), None)
        .await;
    assert_eq!(pb["status"], "failed");
    assert_eq!(pb["failure"]["code"], "clearing_refused");
    let (_, pg) = p
        .merchant("GET", &format!("/v1/payments/{good}"), None)
        .await;
    assert_eq!(pg["status"], "succeeded");
    let kinds: Vec<String> = p
        .app
        .engine
        .store()
        .read(move |c: &rusqlite::Connection| {
            let mut st = c.prepare("SELECT type FROM events WHERE payment_id = ?1 ORDER BY seq")?;
            let v = st
                .query_map([&bad], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>();
            v
        })
        .await
        .expect("events");
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("payment.clearing_refused")
    );
    // A correction of an accepted batch is refused.
    assert!(s.correct(&p.app.engine, None, 1).await.is_err());
}

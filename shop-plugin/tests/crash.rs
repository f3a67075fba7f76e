//! `kill -9` of the real `shop-plugin serve` between authorize and complete, restart on
//! the same database, then finish every payment: the card's answer after the restart,
//! recovery of a debited card whose answer was lost, recovery of a DEBIT that never
//! reached its card. No payment lost or doubled, SAM_TxSeq never reused, terminal states
//! never regress, and what was acknowledged survives a second kill.

mod support;

use std::collections::BTreeMap;

use bytes::Bytes;
use rusqlite::Connection;
use serde_json::{json, Value};
use support::server::{write_config, Server};
use support::steps::id_and_secret;
use support::{assert_card_charged, create_single, temp_dir, Http, TestCard, API_KEY, ORIGIN};
use tokio::sync::mpsc;

const START: u32 = 10_000;

fn seq(p: &Value) -> u64 {
    p["sam_tx_seq"].as_u64().expect("sam_tx_seq")
}

/// The invariant the whole test is about: every cent that left a card belongs to exactly
/// one succeeded payment of that card, and nothing else succeeded.
async fn assert_money_conserved(http: &Http, cards: &[&TestCard]) -> BTreeMap<String, Value> {
    let payments = http.all_payments().await;
    for card in cards {
        assert_card_charged(&payments, card, START);
    }
    payments
        .into_iter()
        .map(|p| (p["id"].as_str().expect("id").to_string(), p))
        .collect()
}

#[tokio::test]
async fn kill_9_between_authorize_and_complete_loses_and_doubles_nothing() {
    let dir = temp_dir("crash");
    write_config(&dir);
    let mut card_a = TestCard::new(0x21, START);
    let mut card_b = TestCard::new(0x22, START);
    let mut card_c = TestCard::new(0x23, START);

    let server = Server::start(&dir);
    // Finished before the crash: must stay as it is.
    let (before, _) = server.pay(&mut card_a, 100).await;
    // (a) The card is debited; its answer is in the browser when the server dies.
    let (pay_a, secret_a, debit_a) = server.authorize(&mut card_a, 250).await;
    let answer_a = card_a.run(&debit_a);
    // (b) The card is debited; its answer is lost with the server.
    let (pay_b, secret_b, debit_b) = server.authorize(&mut card_b, 400).await;
    card_b.run(&debit_b);
    // (c) The DEBIT never reaches the card.
    let (pay_c, secret_c, _) = server.authorize(&mut card_c, 700).await;
    // Created, not yet paid: its INITIALIZE must still work after the restart.
    let (pay_d, secret_d, created_d) = create_single(&server, 900).await;

    let seqs_before: Vec<u64> = {
        let mut v = Vec::new();
        for id in [&before, &pay_a, &pay_b, &pay_c] {
            v.push(seq(&server.payment(id).await));
        }
        v
    };
    let max_before = *seqs_before.iter().max().expect("seqs");
    assert_eq!(
        seqs_before.len(),
        {
            let mut s = seqs_before.clone();
            s.sort();
            s.dedup();
            s.len()
        },
        "distinct SAM_TxSeq"
    );
    server.kill9();

    let server = Server::start(&dir);
    for id in [&pay_a, &pay_b, &pay_c] {
        assert_eq!(server.payment(id).await["status"], "authorized", "{id}");
    }
    assert_eq!(server.payment(&before).await["status"], "succeeded");

    // (a) The answer arrives after the restart and completes the payment, once.
    let (s, done) = server.answer(&pay_a, &secret_a, Some(&answer_a)).await;
    assert_eq!((s, &done["status"]), (200, &json!("succeeded")), "{done}");
    assert_eq!(done["charged"], json!({"units": 1, "total": 250}));
    let (s, again) = server.answer(&pay_a, &secret_a, Some(&answer_a)).await;
    assert_eq!((s, &again["status"]), (200, &json!("succeeded")), "{again}");

    // (b) Recovery with the card proves the debit.
    let (s, r) = server.recover(&mut card_b, &secret_b).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        r["outcomes"],
        json!([{"payment": pay_b, "outcome": "completed"}])
    );
    let b = server.payment(&pay_b).await;
    assert_eq!(b["status"], "succeeded", "{b}");
    assert_eq!(b["charged"]["total"], 400);

    // (c) Recovery with the card shows the DEBIT never arrived: voided, nothing charged.
    let (s, r) = server.recover(&mut card_c, &secret_c).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        r["outcomes"],
        json!([{"payment": pay_c, "outcome": "voided"}])
    );
    let c = server.payment(&pay_c).await;
    assert_eq!(c["status"], "failed", "{c}");
    assert_eq!(card_c.balance(), START);

    // The SAM restarted with the process (it runs in process here): the session it
    // began for the waiting payment is spent, and the shopper's side is told to start
    // again; the payment has a fresh INITIALIZE.
    let (kv, init) = card_c.initialize(&created_d);
    let (s, e) = server.initialize(&pay_d, &secret_d, kv, &init).await;
    assert_eq!(
        (s, &e["error"]["code"]),
        (409, &json!("payment_retry")),
        "{e}"
    );
    let (s, fresh) = server.shopper_get(&pay_d, &secret_d).await;
    assert_eq!((s, &fresh["status"]), (200, &json!("created")), "{fresh}");
    // The next authorization after the restart takes a SAM_TxSeq never used before.
    let (kv, init) = card_c.initialize(&fresh);
    let (s, step) = server.initialize(&pay_d, &secret_d, kv, &init).await;
    assert_eq!((s, &step["status"]), (200, &json!("authorized")), "{step}");
    let answer_d = card_c.run(step["command"].as_str().expect("DEBIT"));
    let (s, _) = server.answer(&pay_d, &secret_d, Some(&answer_d)).await;
    assert_eq!(s, 200);
    let d = server.payment(&pay_d).await;
    assert_eq!(d["status"], "succeeded");
    assert!(
        seq(&d) > max_before,
        "SAM_TxSeq {} reused (max before the crash {max_before})",
        seq(&d)
    );

    // Terminal states never regress, whatever arrives late.
    let (s, e) = server.answer(&pay_c, &secret_c, Some("9000")).await;
    assert_eq!(
        (s, &e["error"]["code"]),
        (409, &json!("nothing_in_flight")),
        "{e}"
    );
    let (s, e) = server
        .merchant("POST", &format!("/v1/payments/{pay_a}/cancel"), None)
        .await;
    assert_eq!(
        (s, &e["error"]["code"]),
        (409, &json!("payment_not_cancelable"))
    );
    let (s, e) = server.recover(&mut card_b, &secret_b).await;
    assert_eq!(
        (s, &e["error"]["code"]),
        (404, &json!("nothing_to_recover"))
    );

    let cards = [&card_a, &card_b, &card_c];
    let seen = assert_money_conserved(&server, &cards).await;
    assert_eq!(seen.len(), 5, "every payment is there, once");
    server.kill9();

    // What was acknowledged is durable: a second crash changes nothing.
    let server = Server::start(&dir);
    let after = assert_money_conserved(&server, &cards).await;
    let status = |m: &BTreeMap<String, Value>| -> Vec<(String, Value)> {
        m.iter()
            .map(|(k, v)| (k.clone(), v["status"].clone()))
            .collect()
    };
    assert_eq!(status(&after), status(&seen));
    drop(server);

    // In the database: one SAM transaction per SAM_TxSeq (none reused), its outcome as
    // the SAM decided it (a record only for what the SAM counted), and exactly one
    // terminal event per payment.
    let db = Connection::open(dir.join("plugin.db")).expect("database");
    let states: Vec<(i64, String)> = db
        .prepare(
            "SELECT s.sam_tx_seq, CASE WHEN r.sam_tx_seq IS NOT NULL THEN 'completed'
                    WHEN s.open THEN 'open' ELSE 'voided' END
               FROM sam_payment s LEFT JOIN sam_record r
                 ON r.sam_id = s.sam_id AND r.sam_tx_seq = s.sam_tx_seq
              WHERE s.sam_tx_seq IS NOT NULL ORDER BY s.sam_tx_seq",
        )
        .expect("sql")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows");
    let mut seqs: Vec<i64> = states.iter().map(|s| s.0).collect();
    seqs.dedup();
    assert_eq!(
        seqs.len(),
        states.len(),
        "a SAM_TxSeq used twice: {states:?}"
    );
    assert!(
        seqs.last().is_some_and(|&s| s as u64 >= seq(&d)),
        "{states:?}"
    );
    assert_eq!(
        states.iter().map(|s| s.1.as_str()).collect::<Vec<_>>(),
        ["completed", "completed", "completed", "voided", "completed"],
        "{states:?}"
    );
    assert_no_double_terminal_event(&db);
    let _ = std::fs::remove_dir_all(&dir);
}

fn assert_no_double_terminal_event(db: &Connection) {
    let doubled: i64 = db
        .query_row(
            "SELECT COUNT(*) FROM (SELECT payment_id FROM events
             WHERE type IN ('payment.succeeded', 'payment.failed')
             GROUP BY payment_id HAVING COUNT(*) > 1)",
            [],
            |r| r.get(0),
        )
        .expect("events");
    assert_eq!(doubled, 0, "a payment with two terminal events");
}

/// A POST that may meet a dead server (`None`).
async fn try_post(http: &Http, path: &str, body: &Value, merchant: bool) -> Option<(u16, Value)> {
    let auth = format!("Bearer {API_KEY}");
    let header = if merchant {
        ("authorization", auth.as_str())
    } else {
        ("origin", ORIGIN)
    };
    let r = http
        .try_send("POST", path, Bytes::from(body.to_string()), &[header])
        .await
        .ok()?;
    Some((r.status, r.body))
}

/// What one shopper knew when the server died.
struct Shopper {
    card: TestCard,
    /// Every payment it created, with the last status the server acknowledged.
    acked: Vec<(String, &'static str)>,
    /// A debited card's answer the server has not acknowledged: (id, secret, answer).
    in_hand: Option<(String, String, String)>,
    /// The client secret of its last payment (recovery takes one).
    last_secret: String,
}

/// Buys until the server stops answering (at most `rounds` purchases); reports each
/// completed purchase on `done`.
async fn shop_until_killed(
    http: Http,
    card: TestCard,
    rounds: usize,
    done: mpsc::UnboundedSender<()>,
) -> Shopper {
    let mut me = Shopper {
        card,
        acked: Vec::new(),
        in_hand: None,
        last_secret: String::new(),
    };
    for _ in 0..rounds {
        let order = json!({"amount": 10, "currency": "EUR"});
        let Some((s, created)) = try_post(&http, "/v1/payments", &order, true).await else {
            break;
        };
        assert_eq!(s, 201, "{created}");
        let (id, secret) = id_and_secret(&created);
        me.acked.push((id.clone(), "created"));
        me.last_secret = secret.clone();
        let (kv, init) = me.card.initialize(&created);
        let body = json!({"client_secret": secret, "kv": kv, "response": init});
        let Some((s, step)) = try_post(
            &http,
            &format!("/v1/checkout/payments/{id}/initialize"),
            &body,
            false,
        )
        .await
        else {
            break;
        };
        assert_eq!((s, &step["status"]), (200, &json!("authorized")), "{step}");
        me.acked.last_mut().expect("acked").1 = "authorized";
        let answer = me.card.run(step["command"].as_str().expect("DEBIT"));
        me.in_hand = Some((id.clone(), secret.clone(), answer.clone()));
        let body = json!({"client_secret": secret, "response": answer});
        let Some((s, fin)) = try_post(
            &http,
            &format!("/v1/checkout/payments/{id}/answer"),
            &body,
            false,
        )
        .await
        else {
            break;
        };
        assert_eq!((s, &fin["status"]), (200, &json!("succeeded")), "{fin}");
        me.acked.last_mut().expect("acked").1 = "succeeded";
        me.in_hand = None;
        let _ = done.send(());
    }
    me
}

#[tokio::test]
async fn kill_9_under_load_keeps_every_acknowledged_step() {
    let dir = temp_dir("crash-load");
    write_config(&dir);
    let server = Server::start(&dir);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let http = server.http.clone();
        let card = TestCard::new(0x40 + i, START);
        tasks.push(tokio::spawn(shop_until_killed(
            http,
            card,
            200,
            done_tx.clone(),
        )));
    }
    drop(done_tx);
    // Kill while purchases are in every stage.
    for _ in 0..40 {
        if done_rx.recv().await.is_none() {
            break;
        }
    }
    server.kill9();
    let mut shoppers = Vec::new();
    for t in tasks {
        shoppers.push(t.await.expect("shopper"));
    }
    assert!(shoppers.iter().any(|s| !s.acked.is_empty()));

    let server = Server::start(&dir);
    for sh in &mut shoppers {
        // The answer the dead server never acknowledged: sent again, it completes the
        // payment (or returns the result already stored).
        if let Some((id, secret, answer)) = sh.in_hand.take() {
            let (s, v) = server.answer(&id, &secret, Some(&answer)).await;
            assert_eq!((s, &v["status"]), (200, &json!("succeeded")), "{v}");
            sh.acked.last_mut().expect("acked").1 = "succeeded";
        }
        // Whatever else was authorized without reaching the card is voided.
        let (s, r) = server.recover(&mut sh.card, &sh.last_secret).await;
        assert!(
            s == 200 || (s == 404 && r["error"]["code"] == "nothing_to_recover"),
            "{s} {r}"
        );
    }
    let cards: Vec<&TestCard> = shoppers.iter().map(|s| &s.card).collect();
    let now = assert_money_conserved(&server, &cards).await;
    let acked = shoppers.iter().flat_map(|s| s.acked.iter());
    let mut n = 0;
    for (id, was) in acked {
        n += 1;
        let p = now
            .get(id)
            .unwrap_or_else(|| panic!("acknowledged payment {id} lost"));
        let status = p["status"].as_str().expect("status");
        let ok = match *was {
            "succeeded" => status == "succeeded",
            // Its DEBIT reached no card (or its answer was resent above).
            "authorized" => status == "failed",
            // Its INITIALIZE may have been stored without a reply: then recovery voided it.
            _ => status == "created" || status == "failed",
        };
        assert!(ok, "{id}: acknowledged {was}, now {status}");
    }
    assert!(n >= 40);
    assert!(
        now.values().all(|p| p["status"] != "authorized"),
        "an authorized payment left unresolved"
    );
    drop(server);
    assert_no_double_terminal_event(&Connection::open(dir.join("plugin.db")).expect("database"));
    let _ = std::fs::remove_dir_all(&dir);
}

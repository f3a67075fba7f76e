//! Concurrent requests on one payment, on a multi-threaded server: the same INITIALIZE
//! answer twice, two cards at once, the same DEBIT answer many times, cancel racing
//! INITIALIZE, one Idempotency-Key many times. Exactly one request wins; the others get
//! the idempotent result or a clear conflict; money moves once.

mod support;

use serde_json::{json, Value};
use support::{create_single, Http, Plugin, TestCard};
use tokio::task::JoinSet;

/// The webhook event types of a payment, oldest first (one per status change).
async fn events(p: &Plugin, id: &str) -> Vec<String> {
    let id = id.to_string();
    p.app
        .engine
        .store()
        .read(move |c| {
            let mut st = c.prepare("SELECT type FROM events WHERE payment_id = ?1 ORDER BY seq")?;
            let r = st.query_map([id], |r| r.get(0))?.collect();
            r
        })
        .await
        .expect("events")
}

/// How many SAM transactions the payment's card has.
async fn sam_txs_of_card(p: &Plugin, card: &TestCard) -> i64 {
    let card = card.card.state().card_id.to_hex();
    p.app
        .engine
        .store()
        .read(move |c| {
            c.query_row(
                "SELECT COUNT(*) FROM sam_payment WHERE card_id = ?1 AND sam_tx_seq IS NOT NULL",
                [card],
                |r| r.get(0),
            )
        })
        .await
        .expect("sam_tx")
}

/// Runs `n` copies of one request at once; returns every (status, body).
async fn at_once(
    http: &Http,
    n: usize,
    path: &str,
    body: Value,
    merchant: bool,
) -> Vec<(u16, Value)> {
    let mut set = JoinSet::new();
    for _ in 0..n {
        let (h, path, body) = (http.clone(), path.to_string(), body.clone());
        set.spawn(async move {
            if merchant {
                h.merchant("POST", &path, Some(&body)).await
            } else {
                h.shopper(&path, &body).await
            }
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.expect("request task"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_initialize_answer_many_times_authorizes_once() {
    let p = Plugin::start("conc-init").await;
    let mut card = TestCard::new(1, 10_000);
    let (id, secret, created) = create_single(&p, 300).await;
    let (kv, init) = card.initialize(&created);
    let body = json!({"client_secret": secret, "kv": kv, "response": init});
    let replies = at_once(
        &p,
        8,
        &format!("/v1/checkout/payments/{id}/initialize"),
        body,
        false,
    )
    .await;
    let debit = replies[0].1["command"].clone();
    for (s, v) in &replies {
        assert_eq!((*s, &v["status"]), (200, &json!("authorized")), "{v}");
        assert_eq!(v["command"], debit, "every retry gets the one DEBIT");
    }
    assert_eq!(sam_txs_of_card(&p, &card).await, 1, "one SAM transaction");
    assert_eq!(
        events(&p, &id).await,
        ["payment.created", "payment.authorized"]
    );

    // The DEBIT answer many times at once: one completion, one event, one charge.
    let answer = card.run(debit.as_str().expect("DEBIT"));
    let body = json!({"client_secret": secret, "response": answer});
    for (s, v) in at_once(
        &p,
        8,
        &format!("/v1/checkout/payments/{id}/answer"),
        body,
        false,
    )
    .await
    {
        assert_eq!((s, &v["status"]), (200, &json!("succeeded")), "{v}");
        assert_eq!(v["charged"], json!({"units": 1, "total": 300}));
    }
    assert_eq!(card.balance(), 10_000 - 300);
    assert_eq!(
        events(&p, &id).await,
        ["payment.created", "payment.authorized", "payment.succeeded"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cards_initializing_one_payment_at_once_one_wins() {
    let p = Plugin::start("conc-two-cards").await;
    for round in 0..6u8 {
        let (id, secret, created) = create_single(&p, 500).await;
        let mut a = TestCard::new(10 + 2 * round, 10_000);
        let mut b = TestCard::new(11 + 2 * round, 10_000);
        let (kva, ia) = a.initialize(&created);
        let (kvb, ib) = b.initialize(&created);
        let (ra, rb) = tokio::join!(
            p.initialize(&id, &secret, kva, &ia),
            p.initialize(&id, &secret, kvb, &ib)
        );
        let (win, lose, winner) = match (ra.0, rb.0) {
            (200, 409) => (ra, rb, &mut a),
            (409, 200) => (rb, ra, &mut b),
            other => panic!("not exactly one winner: {other:?} {} {}", ra.1, rb.1),
        };
        assert_eq!(lose.1["error"]["code"], "payment_not_waiting", "{}", lose.1);
        let answer = winner.run(win.1["command"].as_str().expect("DEBIT"));
        let (s, done) = p.answer(&id, &secret, Some(&answer)).await;
        assert_eq!((s, &done["status"]), (200, &json!("succeeded")));
        assert_eq!(
            a.balance() + b.balance(),
            20_000 - 500,
            "one card paid, once"
        );
        assert_eq!(
            sam_txs_of_card(&p, &a).await + sam_txs_of_card(&p, &b).await,
            1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_racing_initialize_one_wins() {
    let p = Plugin::start("conc-cancel").await;
    let (mut canceled, mut paid) = (0, 0);
    for round in 0..12u8 {
        let mut card = TestCard::new(40 + round, 10_000);
        let (id, secret, created) = create_single(&p, 200).await;
        let (kv, init) = card.initialize(&created);
        let cancel_path = format!("/v1/payments/{id}/cancel");
        let (init_r, cancel_r) = tokio::join!(
            p.initialize(&id, &secret, kv, &init),
            p.merchant("POST", &cancel_path, None)
        );
        let m = p.payment(&id).await;
        match (init_r.0, cancel_r.0) {
            (200, 409) => {
                assert_eq!(cancel_r.1["error"]["code"], "payment_not_cancelable");
                assert_eq!(m["status"], "authorized");
                let answer = card.run(init_r.1["command"].as_str().expect("DEBIT"));
                let (s, _) = p.answer(&id, &secret, Some(&answer)).await;
                assert_eq!(s, 200);
                assert_eq!(card.balance(), 10_000 - 200);
                paid += 1;
            }
            (409, 200) => {
                assert_eq!(init_r.1["error"]["code"], "payment_not_waiting");
                assert_eq!(m["status"], "canceled");
                assert_eq!(sam_txs_of_card(&p, &card).await, 0, "no SAM transaction");
                assert_eq!(
                    events(&p, &id).await,
                    ["payment.created", "payment.canceled"]
                );
                canceled += 1;
            }
            other => panic!(
                "not exactly one winner: {other:?} {} {}",
                init_r.1, cancel_r.1
            ),
        }
    }
    assert_eq!(canceled + paid, 12);
}

/// `n` creates with one Idempotency-Key and one body, all at once.
async fn creates_at_once(p: &Plugin, n: usize, body: &Value, key: &str) -> Vec<support::Reply> {
    let auth = format!("Bearer {}", support::API_KEY);
    let mut set = JoinSet::new();
    for _ in 0..n {
        let (h, b, auth, key) = (
            Http::clone(p),
            body.to_string(),
            auth.clone(),
            key.to_string(),
        );
        set.spawn(async move {
            h.send(
                "POST",
                "/v1/payments",
                b.into(),
                &[("authorization", &auth), ("idempotency-key", &key)],
            )
            .await
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.expect("task"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_idempotency_key_many_times_at_once_creates_one_payment() {
    let p = Plugin::start("conc-idem").await;
    let body = json!({"amount": 990, "currency": "EUR", "order_reference": "order-idem"});
    let mut ids = Vec::new();
    let mut replayed = 0;
    for r in creates_at_once(&p, 8, &body, "key-42").await {
        assert_eq!(r.status, 201, "{}", r.body);
        ids.push(r.body["id"].as_str().expect("id").to_string());
        if r.headers
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true")
        {
            replayed += 1;
        }
    }
    assert_eq!(replayed, 7, "all but the first are replays");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1, "one payment: {ids:?}");
    let (_, list) = p
        .merchant("GET", "/v1/payments?order_reference=order-idem", None)
        .await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1), "{list}");

    // The same key with another body, many at once: all conflicts, nothing created.
    let other = json!({"amount": 991, "currency": "EUR", "order_reference": "order-idem"});
    for r in creates_at_once(&p, 4, &other, "key-42").await {
        assert_eq!(
            (r.status, &r.body["error"]["code"]),
            (409, &json!("idempotency_key_reused"))
        );
    }
    let (_, list) = p.merchant("GET", "/v1/payments", None).await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(
        p.app.engine.lock_entries(),
        0,
        "idempotency-key locks are released"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_mixed_requests_on_one_payment_stays_consistent() {
    let p = Plugin::start("conc-mixed").await;
    let mut card = TestCard::new(60, 10_000);
    let (id, secret, created) = create_single(&p, 450).await;
    let (kv, init) = card.initialize(&created);
    let mut set = JoinSet::new();
    for i in 0..12 {
        let h = Http::clone(&p);
        let (id, secret, init) = (id.clone(), secret.clone(), init.clone());
        set.spawn(async move {
            match i % 3 {
                0 => ("initialize", h.initialize(&id, &secret, kv, &init).await),
                1 => ("get", h.shopper_get(&id, &secret).await),
                _ => ("answer", h.answer(&id, &secret, Some("9000")).await),
            }
        });
    }
    let mut debit = None;
    while let Some(r) = set.join_next().await {
        let (kind, (s, v)) = r.expect("task");
        assert!(s < 500, "{kind}: {s} {v}");
        match kind {
            "initialize" => {
                assert_eq!(s, 200, "{v}");
                let c = v["command"].clone();
                assert!(debit.as_ref().is_none_or(|d| *d == c), "one DEBIT");
                debit = Some(c);
            }
            "get" => assert_eq!(s, 200, "{v}"),
            // Before the INITIALIZE there is nothing in flight; after it, a bare 9000
            // (no S3) cannot complete a DEBIT: it counts as a lost answer.
            _ => assert!(
                s == 409 || (s == 200 && v["recovery_required"] == json!(true)),
                "{s} {v}"
            ),
        }
    }
    let debit = debit.expect("DEBIT");
    let answer = card.run(debit.as_str().expect("DEBIT"));
    let (s, done) = p.answer(&id, &secret, Some(&answer)).await;
    assert_eq!((s, &done["status"]), (200, &json!("succeeded")), "{done}");
    assert_eq!(card.balance(), 10_000 - 450);
    assert_eq!(p.app.engine.lock_entries(), 0, "no lock outlives the storm");
}

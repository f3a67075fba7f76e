//! Whole payments over HTTP on loopback: a single purchase in exactly two shopper
//! requests, idempotent resubmission, a time-cycle up to its cap, refusals.

mod support;

use serde_json::json;
use support::{create_single, Plugin, TestCard, T0};

#[tokio::test]
async fn single_purchase_takes_two_shopper_requests() {
    let p = Plugin::start("single").await;
    let mut card = TestCard::new(1, 10_000);
    let (id, secret, created) = create_single(&p, 1250).await;
    assert_eq!(created["status"], "created");

    let (kv, init) = card.initialize(&created);
    let (s, step) = p
        .shopper(
            &format!("/v1/checkout/payments/{id}/initialize"),
            &json!({"client_secret": secret, "kv": kv, "response": init}),
        )
        .await;
    assert_eq!(s, 200, "{step}");
    assert_eq!(step["status"], "authorized");
    let debit = step["command"].as_str().expect("DEBIT").to_string();

    let answer = card.run(&debit);
    let (s, done) = p
        .shopper(
            &format!("/v1/checkout/payments/{id}/answer"),
            &json!({"client_secret": secret, "response": answer}),
        )
        .await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["charged"], json!({"units": 1, "total": 1250}));
    assert_eq!(done["balance_after"], 8750);
    assert_eq!(card.balance(), 8750);

    // The same answer again: the same result. Another answer: a conflict.
    let (s, again) = p
        .shopper(
            &format!("/v1/checkout/payments/{id}/answer"),
            &json!({"client_secret": secret, "response": answer}),
        )
        .await;
    assert_eq!((s, &again["status"]), (200, &json!("succeeded")));
    let (s, e) = p
        .shopper(
            &format!("/v1/checkout/payments/{id}/answer"),
            &json!({"client_secret": secret, "response": "6985"}),
        )
        .await;
    assert_eq!((s, &e["error"]["code"]), (409, &json!("nothing_in_flight")));

    let (s, m) = p.merchant("GET", &format!("/v1/payments/{id}"), None).await;
    assert_eq!((s, &m["status"]), (200, &json!("succeeded")));
    assert!(
        m.get("client_secret").is_none(),
        "the secret is shown once only"
    );
    assert_eq!(
        p.app.engine.lock_entries(),
        0,
        "no lock outlives its request"
    );
}

#[tokio::test]
async fn time_cycle_ticks_when_due_until_the_cap() {
    let p = Plugin::start("time-cycle").await;
    let mut card = TestCard::new(2, 10_000);
    let (s, created) = p
        .merchant(
            "POST",
            "/v1/payments",
            Some(&json!({"currency": "EUR", "mode": "time_cycle", "time_cycle": {"unit_amount": 200, "period_seconds": 60, "max_units": 3}})),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let id = created["id"].as_str().expect("id");
    let secret = created["client_secret"].as_str().expect("secret");
    let (kv, init) = card.initialize(&created);
    let (_, step) = p
        .shopper(
            &format!("/v1/checkout/payments/{id}/initialize"),
            &json!({"client_secret": secret, "kv": kv, "response": init}),
        )
        .await;
    let answer = card.run(step["command"].as_str().expect("DEBIT"));
    let (_, running) = p
        .shopper(
            &format!("/v1/checkout/payments/{id}/answer"),
            &json!({"client_secret": secret, "response": answer}),
        )
        .await;
    assert_eq!(running["status"], "running");
    assert_eq!(running["next_due_at"], T0 + 60);

    // Not due yet: no command.
    let (s, early) = p
        .shopper(
            &format!("/v1/checkout/payments/{id}/tick"),
            &json!({"client_secret": secret}),
        )
        .await;
    assert_eq!((s, &early["command"]), (200, &json!(null)));

    // One request per tick: each carries the previous unit's answer.
    let mut last: Option<String> = None;
    for k in 2..=3i64 {
        p.set_time(T0 + 60 * (k - 1));
        let body = match &last {
            Some(a) => json!({"client_secret": secret, "answer": {"response": a}}),
            None => json!({"client_secret": secret}),
        };
        let (s, t) = p
            .shopper(&format!("/v1/checkout/payments/{id}/tick"), &body)
            .await;
        assert_eq!(s, 200, "{t}");
        last = Some(card.run(t["command"].as_str().expect("TICK")));
    }
    let (s, fin) = p
        .shopper(
            &format!("/v1/checkout/payments/{id}/answer"),
            &json!({"client_secret": secret, "response": last}),
        )
        .await;
    assert_eq!(s, 200, "{fin}");
    assert_eq!(fin["status"], "succeeded", "the cap ends it");
    assert_eq!(fin["charged"], json!({"units": 3, "total": 600}));
    assert_eq!(card.balance(), 9400);
}

#[tokio::test]
async fn insufficient_funds_is_refused_and_the_payment_can_be_retried() {
    let p = Plugin::start("funds").await;
    let (id, secret, created) = create_single(&p, 5000).await;
    let mut poor = TestCard::new(3, 100);
    let (kv, init) = poor.initialize(&created);
    let (s, e) = p
        .shopper(
            &format!("/v1/checkout/payments/{id}/initialize"),
            &json!({"client_secret": secret, "kv": kv, "response": init}),
        )
        .await;
    assert_eq!(
        (s, &e["error"]["code"]),
        (402, &json!("insufficient_funds"))
    );
    assert_eq!(poor.balance(), 100);
    // Another card pays the same payment with a fresh INITIALIZE.
    let (_, fresh) = p
        .request(
            "GET",
            &format!("/v1/checkout/payments/{id}?client_secret={secret}"),
            None,
            &[("origin", support::ORIGIN)],
        )
        .await;
    assert_ne!(
        fresh["initialize"], created["initialize"],
        "a new RND_S after a refusal"
    );
    let mut rich = TestCard::new(4, 10_000);
    let (kv, init) = rich.initialize(&fresh);
    let (_, step) = p
        .shopper(
            &format!("/v1/checkout/payments/{id}/initialize"),
            &json!({"client_secret": secret, "kv": kv, "response": init}),
        )
        .await;
    let answer = rich.run(step["command"].as_str().expect("DEBIT"));
    let (_, done) = p
        .shopper(
            &format!("/v1/checkout/payments/{id}/answer"),
            &json!({"client_secret": secret, "response": answer}),
        )
        .await;
    assert_eq!(done["status"], "succeeded");
    assert_eq!(rich.balance(), 5000);
}

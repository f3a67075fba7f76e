//! Time-cycle edge cases over HTTP: Stop in the middle (and with a TICK in flight), a
//! purse that empties before the cap, and the close of the period ending a running
//! time-cycle (also one whose TICK is in flight at the close).

mod support;

use serde_json::{json, Value};
use support::steps::id_and_secret;
use support::{Plugin, TestCard, T0};

/// A time-cycle payment started by `card`: created, INITIALIZE, DEBIT (unit 1) done.
/// Returns (id, secret, the running payment).
async fn start(
    p: &Plugin,
    card: &mut TestCard,
    unit: u32,
    max_units: u32,
) -> (String, String, Value) {
    let (s, created) = p
        .merchant(
            "POST",
            "/v1/payments",
            Some(&json!({"currency": "EUR", "mode": "time_cycle",
                "time_cycle": {"unit_amount": unit, "period_seconds": 60, "max_units": max_units}})),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let (id, secret) = id_and_secret(&created);
    let (kv, init) = card.initialize(&created);
    let (s, step) = p.initialize(&id, &secret, kv, &init).await;
    assert_eq!(s, 200, "{step}");
    let answer = card.run(step["command"].as_str().expect("DEBIT"));
    let (s, running) = p.answer(&id, &secret, Some(&answer)).await;
    assert_eq!(s, 200, "{running}");
    (id, secret, running)
}

/// One tick request at shop time `t`, carrying the previous unit's answer if any.
/// Returns the reply and the card's answer to the TICK it carried (if any).
async fn tick(
    p: &Plugin,
    card: &mut TestCard,
    id: &str,
    secret: &str,
    t: i64,
    previous: Option<&str>,
) -> (Value, Option<String>) {
    p.set_time(t);
    let body = match previous {
        Some(a) => json!({"client_secret": secret, "answer": {"response": a}}),
        None => json!({"client_secret": secret}),
    };
    let (s, v) = p
        .shopper(&format!("/v1/checkout/payments/{id}/tick"), &body)
        .await;
    assert_eq!(s, 200, "{v}");
    let answer = v["command"].as_str().map(|c| card.run(c));
    (v, answer)
}

#[tokio::test]
async fn stop_in_the_middle_keeps_the_confirmed_units() {
    let p = Plugin::start("tc-stop").await;
    let mut card = TestCard::new(1, 10_000);
    let (id, secret, running) = start(&p, &mut card, 100, 5).await;
    assert_eq!(running["status"], "running");
    let (_, a2) = tick(&p, &mut card, &id, &secret, T0 + 60, None).await;
    let a2 = a2.expect("TICK 2 due");

    // A TICK is in flight: Stop without its answer cannot end the payment.
    let stop = format!("/v1/checkout/payments/{id}/stop");
    let (s, e) = p.shopper(&stop, &json!({"client_secret": secret})).await;
    assert_eq!(
        (s, &e["error"]["code"]),
        (409, &json!("answer_required")),
        "{e}"
    );

    // Stop with the last unit's answer: two units, then nothing more.
    let (s, done) = p
        .shopper(
            &stop,
            &json!({"client_secret": secret, "answer": {"response": a2}}),
        )
        .await;
    assert_eq!((s, &done["status"]), (200, &json!("succeeded")), "{done}");
    assert_eq!(done["charged"], json!({"units": 2, "total": 200}));
    assert_eq!(card.balance(), 10_000 - 200);
    // Stopping again, or ticking later, changes nothing.
    let (s, again) = p.shopper(&stop, &json!({"client_secret": secret})).await;
    assert_eq!((s, &again["status"]), (200, &json!("succeeded")));
    let (late, none) = tick(&p, &mut card, &id, &secret, T0 + 600, None).await;
    assert_eq!((&late["status"], none), (&json!("succeeded"), None));
    assert_eq!(
        p.payment(&id).await["charged"],
        json!({"units": 2, "total": 200})
    );
    assert_eq!(card.balance(), 10_000 - 200);
}

#[tokio::test]
async fn stop_between_ticks() {
    let p = Plugin::start("tc-stop-idle").await;
    let mut card = TestCard::new(2, 10_000);
    let (id, secret, _) = start(&p, &mut card, 150, 4).await;
    let (s, done) = p
        .shopper(
            &format!("/v1/checkout/payments/{id}/stop"),
            &json!({"client_secret": secret}),
        )
        .await;
    assert_eq!((s, &done["status"]), (200, &json!("succeeded")), "{done}");
    assert_eq!(done["charged"], json!({"units": 1, "total": 150}));
    assert_eq!(card.balance(), 10_000 - 150);
}

#[tokio::test]
async fn a_purse_that_empties_ends_the_time_cycle_with_the_units_paid() {
    let p = Plugin::start("tc-empty").await;
    // 250 pays two units of 100; the third cannot be paid.
    let mut card = TestCard::new(3, 250);
    let (id, secret, running) = start(&p, &mut card, 100, 10).await;
    assert_eq!(running["status"], "running");
    let (_, a2) = tick(&p, &mut card, &id, &secret, T0 + 60, None).await;
    let (s, fin) = p.answer(&id, &secret, a2.as_deref()).await;
    assert_eq!((s, &fin["status"]), (200, &json!("succeeded")), "{fin}");
    assert_eq!(fin["charged"], json!({"units": 2, "total": 200}));
    assert_eq!(
        (fin["balance_after"].clone(), card.balance()),
        (json!(50), 50)
    );
    assert_eq!(fin["next_due_at"], Value::Null);
    let (late, none) = tick(&p, &mut card, &id, &secret, T0 + 120, None).await;
    assert_eq!((&late["status"], none), (&json!("succeeded"), None));

    // Exactly empty: the last unit takes the balance to 0.
    p.set_time(T0);
    let mut card = TestCard::new(4, 300);
    let (id, secret, _) = start(&p, &mut card, 100, 10).await;
    let (_, a2) = tick(&p, &mut card, &id, &secret, T0 + 60, None).await;
    let (_, a3) = tick(&p, &mut card, &id, &secret, T0 + 120, a2.as_deref()).await;
    let (s, fin) = p.answer(&id, &secret, a3.as_deref()).await;
    assert_eq!((s, &fin["status"]), (200, &json!("succeeded")), "{fin}");
    assert_eq!(fin["charged"], json!({"units": 3, "total": 300}));
    assert_eq!(card.balance(), 0);

    // A purse that cannot pay the first unit is refused; nothing starts.
    let mut card = TestCard::new(5, 99);
    let (s, created) = p
        .merchant(
            "POST",
            "/v1/payments",
            Some(&json!({"currency": "EUR", "mode": "time_cycle",
                "time_cycle": {"unit_amount": 100, "period_seconds": 60, "max_units": 3}})),
        )
        .await;
    assert_eq!(s, 201);
    let (kv, init) = card.initialize(&created);
    let (id, secret) = id_and_secret(&created);
    let (s, e) = p.initialize(&id, &secret, kv, &init).await;
    assert_eq!(
        (s, &e["error"]["code"]),
        (402, &json!("insufficient_funds")),
        "{e}"
    );
    assert_eq!(card.balance(), 99);
}

#[tokio::test]
async fn closing_the_period_ends_a_running_time_cycle() {
    let p = Plugin::start("tc-close").await;
    let mut card = TestCard::new(6, 10_000);
    let (id, secret, _) = start(&p, &mut card, 120, 10).await;
    let (_, a2) = tick(&p, &mut card, &id, &secret, T0 + 60, None).await;
    let (_, none) = tick(&p, &mut card, &id, &secret, T0 + 70, a2.as_deref()).await;
    assert!(none.is_none(), "unit 3 is not due yet");
    assert_eq!(p.payment(&id).await["status"], "running");

    let batch = p.close().await;
    let m = p.payment(&id).await;
    assert_eq!(m["status"], "succeeded", "{m}");
    assert_eq!(m["charged"], json!({"units": 2, "total": 240}));
    assert_eq!(batch.transactions.len(), 1);
    assert_eq!(
        (batch.transactions[0].units.0, batch.transactions[0].total.0),
        (2, 240)
    );
    // A tick after the close finds nothing to charge.
    let (late, none) = tick(&p, &mut card, &id, &secret, T0 + 120, None).await;
    assert_eq!((&late["status"], none), (&json!("succeeded"), None));
    assert_eq!(card.balance(), 10_000 - 240);
    // The next close does not settle it again.
    let batch = p.close().await;
    assert!(batch.transactions.is_empty(), "{:?}", batch.transactions);
}

#[tokio::test]
async fn a_close_with_a_tick_in_flight_lists_it_unresolved_and_the_next_close_ends_it() {
    let p = Plugin::start("tc-close-flight").await;
    let mut card = TestCard::new(7, 10_000);
    let (id, secret, _) = start(&p, &mut card, 50, 10).await;
    let (_, a2) = tick(&p, &mut card, &id, &secret, T0 + 60, None).await;
    let a2 = a2.expect("TICK 2");

    let first = p.close().await;
    assert!(first.transactions.is_empty());
    assert_eq!(
        first.unresolved.len(),
        1,
        "the TICK in flight is unresolved"
    );
    assert_eq!(p.payment(&id).await["status"], "running");

    // The answer arrives after the close: unit 2 is confirmed, the cycle goes on.
    let (s, v) = p.answer(&id, &secret, Some(&a2)).await;
    assert_eq!((s, &v["status"]), (200, &json!("running")), "{v}");
    assert_eq!(v["charged"], json!({"units": 2, "total": 100}));
    let second = p.close().await;
    assert!(second.unresolved.is_empty());
    assert_eq!(second.transactions.len(), 1);
    assert_eq!(second.transactions[0].total.0, 100);
    let m = p.payment(&id).await;
    assert_eq!(m["status"], "succeeded", "{m}");
    assert_eq!(card.balance(), 10_000 - 100);
}

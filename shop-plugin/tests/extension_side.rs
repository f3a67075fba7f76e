//! The shopper API as the browser extension uses it (docs/checkout-protocol.md): calls
//! from the extension's own origin on behalf of a shop page, and answers delivered again
//! after a lost reply (a closed tab, a dropped connection) — at every step.

mod support;

use serde_json::{json, Value};
use support::{Plugin, TestCard, ORIGIN, T0};

const EXTENSION: &str = "chrome-extension://abcdefghijklmnopabcdefghijklmnop";

/// A shopper request as the extension's background makes it.
async fn from_extension(p: &Plugin, path: &str, body: &Value, page: Option<&str>) -> (u16, Value) {
    let mut h = vec![("origin", EXTENSION)];
    if let Some(page) = page {
        h.push(("purse-page-origin", page));
    }
    p.request("POST", path, Some(body), &h).await
}

async fn time_cycle(p: &Plugin, max_units: u32) -> (String, String, Value) {
    let (s, v) = p
        .merchant(
            "POST",
            "/v1/payments",
            Some(&json!({"currency": "EUR", "mode": "time_cycle", "time_cycle": {"unit_amount": 100, "period_seconds": 60, "max_units": max_units}})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    (
        v["id"].as_str().expect("id").into(),
        v["client_secret"].as_str().expect("secret").into(),
        v,
    )
}

#[tokio::test]
async fn the_extension_pays_on_behalf_of_an_allowed_page_only() {
    let p = Plugin::start("ext-origin").await;
    let (id, secret, created) = support::create_single(&p, 300).await;
    let path = format!("/v1/checkout/payments/{id}/initialize");
    let mut card = TestCard::new(9, 1000);
    let (kv, init) = card.initialize(&created);
    let body = json!({"client_secret": secret, "kv": kv, "response": init});

    // Without the page's origin, or for a page of another site: refused.
    for page in [None, Some("https://evil.example")] {
        let (s, e) = from_extension(&p, &path, &body, page).await;
        assert_eq!(
            (s, &e["error"]["code"]),
            (403, &json!("origin_not_allowed")),
            "{page:?}"
        );
    }
    // A preflight from the extension names no page yet: allowed, with CORS headers.
    let (s, _) = p
        .request(
            "OPTIONS",
            &path,
            None,
            &[
                ("origin", EXTENSION),
                (
                    "access-control-request-headers",
                    "content-type, purse-page-origin",
                ),
            ],
        )
        .await;
    assert_eq!(s, 204);
    // On behalf of the shop's page: the payment goes through.
    let (s, step) = from_extension(&p, &path, &body, Some(ORIGIN)).await;
    assert_eq!((s, &step["status"]), (200, &json!("authorized")), "{step}");
    let answer = card.run(step["command"].as_str().expect("DEBIT"));
    let (s, done) = from_extension(
        &p,
        &format!("/v1/checkout/payments/{id}/answer"),
        &json!({"client_secret": secret, "response": answer}),
        Some(ORIGIN),
    )
    .await;
    assert_eq!((s, &done["status"]), (200, &json!("succeeded")), "{done}");
}

#[tokio::test]
async fn a_tick_answer_delivered_again_is_not_taken_for_a_lost_one() {
    let p = Plugin::start("ext-redeliver").await;
    let mut card = TestCard::new(8, 1000);
    let (id, secret, created) = time_cycle(&p, 4).await;
    let (kv, init) = card.initialize(&created);
    let (_, step) = p.initialize(&id, &secret, kv, &init).await;
    let a1 = card.run(step["command"].as_str().expect("DEBIT"));
    let (_, running) = p.answer(&id, &secret, Some(&a1)).await;
    assert_eq!(running["status"], "running");

    // Unit 2 is issued and answered.
    p.set_time(T0 + 60);
    let tick = format!("/v1/checkout/payments/{id}/tick");
    let (_, t2) = p.shopper(&tick, &json!({"client_secret": secret})).await;
    let a2 = card.run(t2["command"].as_str().expect("TICK 2"));
    // Unit 3 is due: the tick request carries unit 2's answer and gets TICK 3; its
    // reply is lost, so the extension sends the same request again.
    p.set_time(T0 + 120);
    let with_a2 = json!({"client_secret": secret, "answer": {"response": a2}});
    let (s, t3) = p.shopper(&tick, &with_a2).await;
    assert_eq!(s, 200, "{t3}");
    let cmd3 = t3["command"].as_str().expect("TICK 3").to_string();
    let (s, again) = p.shopper(&tick, &with_a2).await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["recovery_required"], false, "{again}");
    assert_eq!(
        again["command"],
        json!(cmd3),
        "the same TICK 3, not a new unit"
    );
    // And as a bare answer (what the extension redelivers after a restart).
    let (s, again) = p.answer(&id, &secret, Some(&a2)).await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["recovery_required"], false, "{again}");
    assert_eq!(again["charged"], json!({"units": 2, "total": 200}));

    // Stopping with that old answer does not settle TICK 3 (nor lose it).
    let stop = format!("/v1/checkout/payments/{id}/stop");
    let (s, e) = p.shopper(&stop, &with_a2).await;
    assert_eq!(
        (s, &e["error"]["code"]),
        (409, &json!("answer_required")),
        "{e}"
    );
    assert_eq!(p.payment(&id).await["recovery_required"], false);

    // Unit 3 still completes normally.
    let a3 = card.run(&cmd3);
    let (s, stopped) = p
        .shopper(
            &stop,
            &json!({"client_secret": secret, "answer": {"response": a3}}),
        )
        .await;
    assert_eq!(
        (s, &stopped["status"]),
        (200, &json!("succeeded")),
        "{stopped}"
    );
    assert_eq!(stopped["charged"], json!({"units": 3, "total": 300}));
    assert_eq!(card.balance(), 700);
}

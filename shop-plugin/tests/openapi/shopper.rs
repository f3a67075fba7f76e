//! The shopper API of a single purchase: the load, its two requests and every refusal,
//! preflights, foreign origins and the extension's calls.

use purse::Currency;
use serde_json::json;

use super::{body, code, AS_PAGE, EVIL, SHOPPER_POSTS, T};
use crate::support::{TestCard, ORIGIN};

pub async fn shopper_api(t: &mut T) {
    let (id, secret, _) = t.single(1250).await;
    let get = format!("/v1/checkout/payments/{id}?client_secret={secret}");
    let tpl = "/v1/checkout/payments/{id}";
    let view = t.call_as(AS_PAGE, "GET", tpl, &get, None).await;
    assert_eq!(
        (view.status, &view.body["status"]),
        (200, &json!("created"))
    );
    for (path, expect) in [
        (
            format!("/v1/checkout/payments/{id}"),
            (401, "client_secret_required"),
        ),
        (
            format!("/v1/checkout/payments/{id}?client_secret={id}_secret_wrong"),
            (401, "invalid_client_secret"),
        ),
        (
            "/v1/checkout/payments/pay_000000000000000000000000?client_secret=x".to_string(),
            (404, "not_found"),
        ),
    ] {
        let r = t.call_as(AS_PAGE, "GET", tpl, &path, None).await;
        assert_eq!(code(&r), expect);
    }
    let r =
        t.c.call(&t.p, "GET", tpl, &get, None, &[("origin", EVIL)])
            .await;
    assert_eq!(code(&r), (403, "origin_not_allowed"));
    // The extension, naming the shop's page.
    let ext = [
        ("origin", "chrome-extension://abcdefghijklmnop"),
        ("purse-page-origin", ORIGIN),
    ];
    let r = t.c.call(&t.p, "GET", tpl, &get, None, &ext).await;
    assert_eq!(r.status, 200);

    // Preflights of every shopper path.
    for (tpl, path) in [
        (
            "/v1/checkout/payments/{id}",
            format!("/v1/checkout/payments/{id}"),
        ),
        (
            "/v1/checkout/payments/{id}/initialize",
            format!("/v1/checkout/payments/{id}/initialize"),
        ),
        (
            "/v1/checkout/payments/{id}/answer",
            format!("/v1/checkout/payments/{id}/answer"),
        ),
        (
            "/v1/checkout/payments/{id}/tick",
            format!("/v1/checkout/payments/{id}/tick"),
        ),
        (
            "/v1/checkout/payments/{id}/stop",
            format!("/v1/checkout/payments/{id}/stop"),
        ),
        (
            "/v1/checkout/recoveries",
            "/v1/checkout/recoveries".to_string(),
        ),
        (
            "/v1/checkout/recoveries/{id}",
            "/v1/checkout/recoveries/rec_000000000000000000000000".to_string(),
        ),
    ] {
        let r =
            t.c.call(&t.p, "OPTIONS", tpl, &path, None, &[("origin", ORIGIN)])
                .await;
        assert_eq!(r.status, 204);
        let r =
            t.c.call(&t.p, "OPTIONS", tpl, &path, None, &[("origin", EVIL)])
                .await;
        assert_eq!(r.status, 403);
        // An id the document's pattern refuses: no such resource.
        if tpl.contains("{id}") {
            let bad = path.replace("pay_", "pay_x").replace("rec_", "rec_x");
            let r =
                t.c.call(&t.p, "OPTIONS", tpl, &bad, None, &[("origin", ORIGIN)])
                    .await;
            assert_eq!(r.status, 404, "{bad}");
        }
    }
    // A query parameter the operation does not take.
    let r =
        t.c.call(
            &t.p,
            "GET",
            "/v1/checkout/payments/{id}",
            &format!("/v1/checkout/payments/{id}?client_secret={secret}&expand=all"),
            None,
            &[("origin", ORIGIN)],
        )
        .await;
    assert_eq!(code(&r), (400, "unknown_parameter"));

    // Request 1, and the card refusals that charge nothing.
    let mut card = TestCard::new(41, 10_000);
    let (kv, init) = card.initialize(&view.body);
    let base = json!({"client_secret": secret, "kv": kv});
    for (response, kv, expect) in [
        ("6985", 1, (422, "card_refused")),
        ("9000", 1, (422, "card_answer_invalid")),
        (init.as_str(), 2, (422, "card_not_accepted")),
        ("zz", 1, (400, "invalid_apdu")),
    ] {
        let r = t
            .step(
                "initialize",
                &id,
                json!({"client_secret": secret, "kv": kv, "response": response}),
            )
            .await;
        assert_eq!(code(&r), expect, "{response}");
    }
    for (b, expect) in [
        (
            json!({"client_secret": secret, "response": init}),
            (400, "invalid_request"),
        ),
        (
            json!({"kv": kv, "response": init}),
            (401, "client_secret_required"),
        ),
        (
            json!({"client_secret": "nope", "kv": kv, "response": init}),
            (401, "invalid_client_secret"),
        ),
    ] {
        let r = t.step("initialize", &id, b).await;
        assert_eq!(code(&r), expect);
    }
    let (fresh, mut base) = (t.call_as(AS_PAGE, "GET", tpl, &get, None).await.body, base);
    let mut usd = TestCard::with_currency(42, 10_000, Currency::USD);
    let (_, usd_init) = usd.initialize(&fresh);
    base["response"] = json!(usd_init);
    let r = t.step("initialize", &id, base.clone()).await;
    assert_eq!(code(&r), (422, "wrong_currency"));
    let fresh = t.call_as(AS_PAGE, "GET", tpl, &get, None).await.body;
    let mut poor = TestCard::new(43, 100);
    let (_, poor_init) = poor.initialize(&fresh);
    base["response"] = json!(poor_init);
    let r = t.step("initialize", &id, base.clone()).await;
    assert_eq!(code(&r), (402, "insufficient_funds"));
    assert_eq!(
        (
            r.body["error"]["balance"].as_u64(),
            r.body["error"]["price"].as_u64()
        ),
        (Some(100), Some(1250))
    );

    // Nothing to answer yet.
    let r = t
        .step(
            "answer",
            &id,
            json!({"client_secret": secret, "response": "9000"}),
        )
        .await;
    assert_eq!(code(&r), (409, "nothing_in_flight"));
    let r = t.step("stop", &id, json!({"client_secret": secret})).await;
    assert_eq!(code(&r), (409, "not_running"));
    let r = t.step("tick", &id, json!({"client_secret": secret})).await;
    assert_eq!(code(&r), (409, "not_time_cycle"));

    let fresh = t.call_as(AS_PAGE, "GET", tpl, &get, None).await.body;
    let (kv, init) = card.initialize(&fresh);
    let b = json!({"client_secret": secret, "kv": kv, "response": init});
    let step = t.step("initialize", &id, b.clone()).await;
    assert_eq!(
        (step.status, &step.body["status"]),
        (200, &json!("authorized"))
    );
    let again = t.step("initialize", &id, b).await;
    assert_eq!(
        again.body["command"], step.body["command"],
        "the same DEBIT again"
    );
    let r = t
        .step(
            "initialize",
            &id,
            json!({"client_secret": secret, "kv": kv, "response": poor_init}),
        )
        .await;
    assert_eq!(code(&r), (409, "payment_not_waiting"));

    // Request 2.
    for (b, expect) in [
        (json!({"client_secret": secret}), (400, "invalid_request")),
        (
            json!({"client_secret": secret, "response": "zz"}),
            (400, "invalid_apdu"),
        ),
        (
            json!({"client_secret": secret, "response": 7}),
            (400, "invalid_request"),
        ),
        (json!({"response": "9000"}), (401, "client_secret_required")),
    ] {
        let r = t.step("answer", &id, b).await;
        assert_eq!(code(&r), expect);
    }
    let answer = card.run(step.body["command"].as_str().expect("DEBIT"));
    let done = t
        .step(
            "answer",
            &id,
            json!({"client_secret": secret, "response": answer}),
        )
        .await;
    assert_eq!(
        (done.status, &done.body["status"]),
        (200, &json!("succeeded"))
    );

    // Unknown payments and foreign origins, for every step.
    for op in SHOPPER_POSTS {
        let b = json!({"client_secret": "x", "kv": 1, "response": "9000"});
        let r = t.step(op, "pay_000000000000000000000000", b.clone()).await;
        assert_eq!(code(&r), (404, "not_found"), "{op}");
        let path = format!("/v1/checkout/payments/{id}/{op}");
        let tpl = format!("/v1/checkout/payments/{{id}}/{op}");
        let r =
            t.c.call(&t.p, "POST", &tpl, &path, body(b), &[("origin", EVIL)])
                .await;
        assert_eq!(code(&r), (403, "origin_not_allowed"), "{op}");
    }
    for op in ["tick", "stop"] {
        let r = t
            .step(op, &id, json!({"client_secret": secret, "answer": {}}))
            .await;
        assert_eq!(code(&r), (400, "invalid_request"), "{op}");
        let r = t.step(op, &id, json!({"answer": null})).await;
        assert_eq!(code(&r), (401, "client_secret_required"), "{op}");
    }
}

//! The merchant API: create (idempotently), read, list, cancel, and their refusals.

use serde_json::json;

use super::{body, code, AS_MERCHANT, MERCHANT, T};
use crate::support::TestCard;

pub async fn merchant_api(t: &mut T) {
    // Create, idempotently.
    let req = json!({"amount": 990, "currency": "EUR", "order_reference": "o-7"});
    let key = [("authorization", MERCHANT), ("idempotency-key", "order-7")];
    let first =
        t.c.call(
            &t.p,
            "POST",
            "/v1/payments",
            "/v1/payments",
            body(req.clone()),
            &key,
        )
        .await;
    assert_eq!(first.status, 201);
    let again =
        t.c.call(
            &t.p,
            "POST",
            "/v1/payments",
            "/v1/payments",
            body(req),
            &key,
        )
        .await;
    assert_eq!((again.status, &again.body), (201, &first.body));
    assert_eq!(
        again
            .headers
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    let other = json!({"amount": 991, "currency": "EUR"});
    let r =
        t.c.call(
            &t.p,
            "POST",
            "/v1/payments",
            "/v1/payments",
            body(other),
            &key,
        )
        .await;
    assert_eq!(code(&r), (409, "idempotency_key_reused"));
    let id = first.body["id"].as_str().expect("id").to_string();

    // Refusals of create.
    for (b, expect) in [
        (json!({"amount": 100}), "invalid_request"),
        (
            json!({"amount": 12.5, "currency": "EUR"}),
            "invalid_request",
        ),
        (
            json!({"amount": 100, "currency": "USD"}),
            "currency_not_supported",
        ),
        (
            json!({"amount": 100, "currency": "EUR", "mode": "subscription"}),
            "invalid_request",
        ),
        (
            json!({"currency": "EUR", "mode": "time_cycle"}),
            "invalid_request",
        ),
    ] {
        let r = t
            .call_as(AS_MERCHANT, "POST", "/v1/payments", "/v1/payments", Some(b))
            .await;
        assert_eq!(code(&r), (400, expect));
    }
    for auth in [vec![], vec![("authorization", "Bearer sk_wrong")]] {
        let b = body(json!({"amount": 100, "currency": "EUR"}));
        let r =
            t.c.call(&t.p, "POST", "/v1/payments", "/v1/payments", b, &auth)
                .await;
        assert_eq!(code(&r), (401, "unauthorized"));
        let r =
            t.c.call(&t.p, "GET", "/v1/payments", "/v1/payments", None, &auth)
                .await;
        assert_eq!(r.status, 401);
        let path = format!("/v1/payments/{id}");
        let r =
            t.c.call(&t.p, "GET", "/v1/payments/{id}", &path, None, &auth)
                .await;
        assert_eq!(r.status, 401);
        let path = format!("/v1/payments/{id}/cancel");
        let r =
            t.c.call(&t.p, "POST", "/v1/payments/{id}/cancel", &path, None, &auth)
                .await;
        assert_eq!(r.status, 401);
    }

    // Read and list.
    let r = t
        .call_as(
            AS_MERCHANT,
            "GET",
            "/v1/payments/{id}",
            &format!("/v1/payments/{id}"),
            None,
        )
        .await;
    assert_eq!((r.status, &r.body["id"]), (200, &json!(id)));
    let r = t
        .call_as(
            AS_MERCHANT,
            "GET",
            "/v1/payments/{id}",
            &format!("/v1/payments/{id}?expand=all"),
            None,
        )
        .await;
    assert_eq!(code(&r), (400, "unknown_parameter"));
    let r = t
        .call_as(
            AS_MERCHANT,
            "GET",
            "/v1/payments/{id}",
            "/v1/payments/pay_000000000000000000000000",
            None,
        )
        .await;
    assert_eq!(code(&r), (404, "not_found"));
    t.single(100).await;
    let r = t
        .call_as(
            AS_MERCHANT,
            "GET",
            "/v1/payments",
            "/v1/payments?limit=1",
            None,
        )
        .await;
    assert_eq!((r.status, &r.body["has_more"]), (200, &json!(true)));
    let after = r.body["data"][0]["id"].as_str().expect("id").to_string();
    let r = t
        .call_as(
            AS_MERCHANT,
            "GET",
            "/v1/payments",
            &format!("/v1/payments?status=created&order_reference=o-7&starting_after={after}"),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    for q in ["limit=0", "status=paid", "created_gte=yesterday"] {
        let r = t
            .call_as(
                AS_MERCHANT,
                "GET",
                "/v1/payments",
                &format!("/v1/payments?{q}"),
                None,
            )
            .await;
        assert_eq!(code(&r), (400, "invalid_request"), "{q}");
    }

    // Cancel: once, again (the same answer), after a card paid (refused), unknown.
    let path = format!("/v1/payments/{id}/cancel");
    for _ in 0..2 {
        let r = t
            .call_as(AS_MERCHANT, "POST", "/v1/payments/{id}/cancel", &path, None)
            .await;
        assert_eq!((r.status, &r.body["status"]), (200, &json!("canceled")));
    }
    let paid = t.p.pay(&mut TestCard::new(40, 10_000), 100).await.0;
    let r = t
        .call_as(
            AS_MERCHANT,
            "POST",
            "/v1/payments/{id}/cancel",
            &format!("/v1/payments/{paid}/cancel"),
            None,
        )
        .await;
    assert_eq!(code(&r), (409, "payment_not_cancelable"));
    let r = t
        .call_as(
            AS_MERCHANT,
            "POST",
            "/v1/payments/{id}/cancel",
            "/v1/payments/pay_000000000000000000000000/cancel",
            None,
        )
        .await;
    assert_eq!(code(&r), (404, "not_found"));
}

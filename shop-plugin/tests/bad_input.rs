//! Bad input over HTTP: malformed and oversized bodies, missing and invalid fields, wrong
//! keys and secrets, an expired secret, foreign origins, tampered and replayed card
//! answers, unknown routes and methods. Each gets its documented status and error code,
//! never a 5xx, and the server keeps serving.

mod support;

use bytes::Bytes;
use serde_json::{json, Value};
use support::{create_single, Http, Plugin, TestCard, API_KEY, ORIGIN, T0};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[track_caller]
fn assert_error(reply: &(u16, Value), status: u16, code: &str) {
    assert_eq!(
        (reply.0, reply.1["error"]["code"].as_str()),
        (status, Some(code)),
        "{}",
        reply.1
    );
    assert!(
        reply.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "an error has a message: {}",
        reply.1
    );
}

/// The server still answers and still takes money.
async fn still_serving(p: &Plugin, card_no: u8) {
    let (s, v) = p.request("GET", "/healthz", None, &[]).await;
    assert_eq!((s, &v["ok"]), (200, &json!(true)));
    let mut card = TestCard::new(card_no, 1_000);
    p.pay(&mut card, 100).await;
    assert_eq!(card.balance(), 900);
}

fn flip(hex_answer: &str, byte: usize) -> String {
    let mut b = hex::decode(hex_answer).expect("hex");
    b[byte] ^= 0x01;
    hex::encode(b)
}

async fn merchant_raw(h: &Http, method: &str, path: &str, body: &'static [u8]) -> (u16, Value) {
    let auth = format!("Bearer {API_KEY}");
    h.request_raw(
        method,
        path,
        Bytes::from_static(body),
        &[("authorization", &auth)],
    )
    .await
}

#[tokio::test]
async fn malformed_non_object_and_oversized_bodies() {
    let p = Plugin::start("bad-bodies").await;
    let (id, secret, _) = create_single(&p, 100).await;
    for body in [
        &b"{"[..],
        b"{\"amount\": 1,}",
        b"\xff\xfe{}",
        b"nul",
        b"{\"a\":1}{\"b\":2}",
    ] {
        assert_error(
            &merchant_raw(&p, "POST", "/v1/payments", body).await,
            400,
            "invalid_json",
        );
    }
    for body in [&b"[]"[..], b"\"text\"", b"42", b"null", b"true"] {
        assert_error(
            &merchant_raw(&p, "POST", "/v1/payments", body).await,
            400,
            "invalid_json",
        );
    }
    let shopper_path = format!("/v1/checkout/payments/{id}/answer");
    let r = p
        .request_raw(
            "POST",
            &shopper_path,
            Bytes::from_static(b"{\"client_secret\":"),
            &[("origin", ORIGIN)],
        )
        .await;
    assert_error(&r, 400, "invalid_json");

    // Just over the limit: 413, for both APIs.
    let big = format!(
        "{{\"client_secret\": \"{secret}\", \"pad\": \"{}\"}}",
        "x".repeat(64 * 1024)
    );
    let r = p
        .request_raw(
            "POST",
            &shopper_path,
            Bytes::from(big.clone()),
            &[("origin", ORIGIN)],
        )
        .await;
    assert_error(&r, 413, "body_too_large");
    let auth = format!("Bearer {API_KEY}");
    let r = p
        .request_raw(
            "POST",
            "/v1/payments",
            Bytes::from(big),
            &[("authorization", &auth)],
        )
        .await;
    assert_error(&r, 413, "body_too_large");
    // Exactly at the limit is read (and then judged on its fields).
    let head = "{\"amount\": 100, \"currency\": \"EUR\", \"description\": \"";
    let fit = format!("{head}{}\"}}", "y".repeat(64 * 1024 - head.len() - 2));
    assert_eq!(fit.len(), 64 * 1024);
    let r = p
        .request_raw(
            "POST",
            "/v1/payments",
            Bytes::from(fit),
            &[("authorization", &auth)],
        )
        .await;
    assert_error(&r, 400, "invalid_request");

    // Not HTTP at all, on a raw socket: a 400 from the HTTP layer, nothing else breaks.
    let mut tcp = tokio::net::TcpStream::connect(p.addr)
        .await
        .expect("connect");
    tcp.write_all(b"GARBAGE / NOT-HTTP\r\n\r\n")
        .await
        .expect("write");
    let mut out = Vec::new();
    tcp.read_to_end(&mut out).await.expect("read");
    assert!(
        out.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    still_serving(&p, 1).await;
}

#[tokio::test]
async fn invalid_payment_fields_are_refused() {
    let p = Plugin::start("bad-fields").await;
    let tc = |tc: Value| json!({"currency": "EUR", "mode": "time_cycle", "time_cycle": tc});
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"currency": "EUR"}), 400, "invalid_request"),
        (json!({"amount": 100}), 400, "invalid_request"),
        (
            json!({"amount": "100", "currency": "EUR"}),
            400,
            "invalid_request",
        ),
        (
            json!({"amount": 12.5, "currency": "EUR"}),
            400,
            "invalid_request",
        ),
        (
            json!({"amount": -5, "currency": "EUR"}),
            400,
            "invalid_request",
        ),
        (
            json!({"amount": 0, "currency": "EUR"}),
            400,
            "invalid_request",
        ),
        (
            json!({"amount": 4_294_967_296u64, "currency": "EUR"}),
            400,
            "invalid_request",
        ),
        (
            json!({"amount": null, "currency": "EUR"}),
            400,
            "invalid_request",
        ),
        (
            json!({"amount": 100, "currency": "XYZ"}),
            400,
            "invalid_request",
        ),
        (
            json!({"amount": 100, "currency": "EURO"}),
            400,
            "invalid_request",
        ),
        (
            json!({"amount": 100, "currency": 9999}),
            400,
            "invalid_request",
        ),
        (
            json!({"amount": 100, "currency": ["EUR"]}),
            400,
            "invalid_request",
        ),
        (
            json!({"amount": 100, "currency": "USD"}),
            400,
            "currency_not_supported",
        ),
        // The currency is text (the document's Currency): a number is refused.
        (
            json!({"amount": 100, "currency": 840}),
            400,
            "invalid_request",
        ),
        (
            json!({"amount": 100, "currency": 978}),
            400,
            "invalid_request",
        ),
        (
            json!({"amount": 100, "currency": "EUR", "mode": "subscription"}),
            400,
            "invalid_request",
        ),
        (
            json!({"amount": 100, "currency": "EUR", "description": 7}),
            400,
            "invalid_request",
        ),
        (
            json!({"amount": 100, "currency": "EUR", "description": "d".repeat(1001)}),
            400,
            "invalid_request",
        ),
        (
            json!({"amount": 100, "currency": "EUR", "order_reference": {"a": 1}}),
            400,
            "invalid_request",
        ),
        (
            json!({"amount": 100, "currency": "EUR", "notify_url": "ftp://shop.example/hook"}),
            400,
            "invalid_request",
        ),
        (
            json!({"amount": 100, "currency": "EUR", "return_url": "javascript:alert(1)"}),
            400,
            "invalid_request",
        ),
        (
            json!({"currency": "EUR", "mode": "time_cycle"}),
            400,
            "invalid_request",
        ),
        (
            tc(json!({"unit_amount": 10, "period_seconds": 60})),
            400,
            "invalid_request",
        ),
        (
            tc(json!({"unit_amount": 10, "period_seconds": 60, "max_units": 0})),
            400,
            "invalid_request",
        ),
        (
            tc(json!({"unit_amount": 10, "period_seconds": 60, "max_units": 65_536})),
            400,
            "invalid_request",
        ),
        (
            tc(json!({"unit_amount": 10, "period_seconds": 0, "max_units": 3})),
            400,
            "invalid_request",
        ),
        (
            tc(json!({"unit_amount": -1, "period_seconds": 60, "max_units": 3})),
            400,
            "invalid_request",
        ),
        (
            tc(json!({"unit_amount": 0.5, "period_seconds": 60, "max_units": 3})),
            400,
            "invalid_request",
        ),
    ];
    for (body, status, code) in &cases {
        let r = p.merchant("POST", "/v1/payments", Some(body)).await;
        assert_error(&r, *status, code);
    }
    let (_, list) = p.merchant("GET", "/v1/payments", None).await;
    assert_eq!(list["data"], json!([]), "nothing was created");

    // Idempotency keys: empty or too long.
    let auth = format!("Bearer {API_KEY}");
    let body = Bytes::from(json!({"amount": 100, "currency": "EUR"}).to_string());
    let long = "k".repeat(256);
    for key in ["", long.as_str()] {
        let r = p
            .request_raw(
                "POST",
                "/v1/payments",
                body.clone(),
                &[("authorization", &auth), ("idempotency-key", key)],
            )
            .await;
        assert_error(&r, 400, "invalid_request");
    }
    // Listing filters.
    for q in [
        "limit=0",
        "limit=101",
        "limit=x",
        "status=paid",
        "created_gte=yesterday",
    ] {
        let r = p.merchant("GET", &format!("/v1/payments?{q}"), None).await;
        assert_error(&r, 400, "invalid_request");
    }
    still_serving(&p, 2).await;
}

#[tokio::test]
async fn wrong_keys_secrets_and_origins() {
    let p = Plugin::start("bad-auth").await;
    let (id, secret, created) = create_single(&p, 100).await;
    let body = Some(json!({"amount": 100, "currency": "EUR"}));
    for auth in [
        None,
        Some("Bearer sk_test_wrong"),
        Some(&*format!("Basic {API_KEY}")),
        Some("Bearer "),
        Some(&*format!("Bearer {API_KEY}x")),
    ] {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
        let r = p
            .request("POST", "/v1/payments", body.as_ref(), &headers)
            .await;
        assert_error(&r, 401, "unauthorized");
        let r = p
            .request("GET", &format!("/v1/payments/{id}"), None, &headers)
            .await;
        assert_error(&r, 401, "unauthorized");
    }

    // The scheme is case-insensitive and may be followed by several spaces (RFC 9110).
    for auth in [format!("bearer {API_KEY}"), format!("Bearer  {API_KEY}")] {
        let r = p
            .request(
                "GET",
                &format!("/v1/payments/{id}"),
                None,
                &[("authorization", &auth)],
            )
            .await;
        assert_eq!(r.0, 200, "{auth:?} is a valid credential: {}", r.1);
    }

    // The shopper API: wrong, missing, or another payment's secret.
    let (other, other_secret, _) = create_single(&p, 100).await;
    let mut card = TestCard::new(3, 1_000);
    let (kv, init) = card.initialize(&created);
    let init_path = format!("/v1/checkout/payments/{id}/initialize");
    assert_error(
        &p.initialize(&id, "pay_x_secret_y", kv, &init).await,
        401,
        "invalid_client_secret",
    );
    assert_error(
        &p.initialize(&id, &other_secret, kv, &init).await,
        401,
        "invalid_client_secret",
    );
    let r = p
        .shopper(&init_path, &json!({"kv": kv, "response": init}))
        .await;
    assert_error(&r, 401, "client_secret_required");
    let r = p.shopper_get(&id, &other_secret).await;
    assert_error(&r, 401, "invalid_client_secret");
    assert_error(
        &p.answer("pay_000000000000000000000000", &secret, None)
            .await,
        404,
        "not_found",
    );

    // A foreign origin: refused before anything else, preflight included.
    for origin in [
        "https://evil.example",
        "https://shop.example.evil.example",
        "http://shop.example",
        "null",
    ] {
        let r = p
            .request(
                "POST",
                &init_path,
                Some(&json!({"client_secret": secret, "kv": kv, "response": init})),
                &[("origin", origin)],
            )
            .await;
        assert_error(&r, 403, "origin_not_allowed");
        let r = p
            .request("OPTIONS", &init_path, None, &[("origin", origin)])
            .await;
        assert_error(&r, 403, "origin_not_allowed");
    }
    let pre = p
        .send("OPTIONS", &init_path, Bytes::new(), &[("origin", ORIGIN)])
        .await;
    assert_eq!(pre.status, 204);
    assert_eq!(
        pre.headers
            .get("access-control-allow-origin")
            .map(|v| v.as_bytes()),
        Some(ORIGIN.as_bytes())
    );

    // Nothing above moved the payment: it still takes its card.
    assert_eq!(p.payment(&id).await["status"], "created");
    let (s, step) = p.initialize(&id, &secret, kv, &init).await;
    assert_eq!((s, &step["status"]), (200, &json!("authorized")), "{step}");
    assert_eq!(p.payment(&other).await["status"], "created");
    still_serving(&p, 4).await;
}

#[tokio::test]
async fn an_expired_client_secret_gets_410_and_the_payment_expires() {
    let p = Plugin::start("bad-expired").await;
    let (id, secret, created) = create_single(&p, 100).await;
    let mut card = TestCard::new(5, 1_000);
    let (kv, init) = card.initialize(&created);
    p.set_time(T0 + 1799);
    let (s, _) = p.shopper_get(&id, &secret).await;
    assert_eq!(s, 200, "one second before the TTL it still works");
    p.set_time(T0 + 1800);
    assert_error(
        &p.initialize(&id, &secret, kv, &init).await,
        410,
        "payment_expired",
    );
    let m = p.payment(&id).await;
    assert_eq!(m["status"], "expired", "{m}");
    let (s, v) = p.shopper_get(&id, &secret).await;
    assert_eq!(
        (s, &v["status"], v.get("initialize")),
        (200, &json!("expired"), None),
        "{v}"
    );
    // Terminal: no cancel, no INITIALIZE, even with the clock turned back.
    let r = p
        .merchant("POST", &format!("/v1/payments/{id}/cancel"), None)
        .await;
    assert_error(&r, 409, "payment_not_cancelable");
    p.set_time(T0);
    assert_error(
        &p.initialize(&id, &secret, kv, &init).await,
        410,
        "payment_expired",
    );
    assert_eq!(card.balance(), 1_000);
    // A wrong secret on an expired payment learns nothing about it.
    assert_error(
        &p.initialize(&id, "wrong", kv, &init).await,
        401,
        "invalid_client_secret",
    );

    // The merchant sees a payment whose secret ran out as expired, without any shopper
    // request (the sweep is not needed for that).
    let (id2, _, _) = create_single(&p, 100).await;
    p.set_time(T0 + 1800);
    assert_eq!(p.payment(&id2).await["status"], "expired");
    still_serving(&p, 6).await;
}

#[tokio::test]
async fn tampered_and_replayed_card_answers() {
    let p = Plugin::start("bad-answers").await;
    let mut card = TestCard::new(7, 10_000);
    let (id, secret, _) = create_single(&p, 300).await;

    // Every bit-flipped byte of an INITIALIZE answer is refused; nothing moves.
    for byte in [0, 7, 8, 10, 14, 16, 20, 30, 35, 41, 42, 43] {
        let (_, fresh) = p.shopper_get(&id, &secret).await;
        let (kv, init) = card.initialize(&fresh);
        let r = p.initialize(&id, &secret, kv, &flip(&init, byte)).await;
        let code = if byte < 42 {
            "card_answer_invalid"
        } else {
            "card_refused"
        };
        assert_error(&r, 422, code);
    }
    assert_eq!(p.payment(&id).await["status"], "created");

    // Malformed answers.
    for bad in ["zz", "9", "90", "", &"00".repeat(259)] {
        assert_error(
            &p.initialize(&id, &secret, 1, bad).await,
            400,
            "invalid_apdu",
        );
    }
    for body in [
        json!({"client_secret": secret, "response": "9000"}),
        json!({"client_secret": secret, "kv": 1}),
        json!({"client_secret": secret, "kv": 256, "response": "9000"}),
        json!({"client_secret": secret, "kv": "1", "response": "9000"}),
        json!({"client_secret": secret, "kv": 1, "response": 9000}),
    ] {
        let r = p
            .shopper(&format!("/v1/checkout/payments/{id}/initialize"), &body)
            .await;
        assert_error(&r, 400, "invalid_request");
    }

    // Another payment's INITIALIZE answer (replayed here) does not verify.
    let (id_b, secret_b, created_b) = create_single(&p, 300).await;
    let mut card_b = TestCard::new(8, 10_000);
    let (kv_b, init_b) = card_b.initialize(&created_b);
    let (_, fresh) = p.shopper_get(&id, &secret).await;
    let (kv, init) = card.initialize(&fresh);
    assert_error(
        &p.initialize(&id, &secret, kv_b, &init_b).await,
        422,
        "card_answer_invalid",
    );
    // After a refusal the payment carries a fresh INITIALIZE: the old answer is stale.
    assert_error(
        &p.initialize(&id, &secret, kv, &init).await,
        422,
        "card_answer_invalid",
    );
    let (_, fresh) = p.shopper_get(&id, &secret).await;
    let (kv, init) = card.initialize(&fresh);
    let (s, step) = p.initialize(&id, &secret, kv, &init).await;
    assert_eq!((s, &step["status"]), (200, &json!("authorized")), "{step}");
    let debit = step["command"].as_str().expect("DEBIT").to_string();
    let answer = card.run(&debit);

    // B, authorized by its own card; A's DEBIT answer replayed to B proves nothing: lost.
    let (_, created_b) = p.shopper_get(&id_b, &secret_b).await;
    let (kv_b, init_b) = card_b.initialize(&created_b);
    let (s, step_b) = p.initialize(&id_b, &secret_b, kv_b, &init_b).await;
    assert_eq!(s, 200, "{step_b}");
    let (s, v) = p.answer(&id_b, &secret_b, Some(&answer)).await;
    assert_eq!(
        (s, &v["status"], &v["recovery_required"]),
        (200, &json!("authorized"), &json!(true)),
        "{v}"
    );

    // A's own answer with a flipped bit in BalanceAfter or S3: lost, recovery required.
    for byte in [0, 3, 4, 11] {
        let (s, v) = p.answer(&id, &secret, Some(&flip(&answer, byte))).await;
        assert_eq!(
            (s, &v["status"], &v["recovery_required"]),
            (200, &json!("authorized"), &json!(true)),
            "{v}"
        );
    }
    // After a lost answer a status word (or another failure) can no longer void it.
    assert_error(
        &p.answer(&id, &secret, Some("6985")).await,
        409,
        "recovery_required",
    );
    assert_error(
        &p.answer(&id, &secret, None).await,
        409,
        "recovery_required",
    );
    // The proven original still completes it; the card was debited once.
    let (s, done) = p.answer(&id, &secret, Some(&answer)).await;
    assert_eq!((s, &done["status"]), (200, &json!("succeeded")), "{done}");
    assert_eq!(card.balance(), 10_000 - 300);
    // B's own card answer completes B.
    let answer_b = card_b.run(step_b["command"].as_str().expect("DEBIT"));
    let (s, done_b) = p.answer(&id_b, &secret_b, Some(&answer_b)).await;
    assert_eq!(
        (s, &done_b["status"]),
        (200, &json!("succeeded")),
        "{done_b}"
    );
    // A's answer to finished B, and B's to finished A: conflicts, nothing changes.
    assert_error(
        &p.answer(&id_b, &secret_b, Some(&answer)).await,
        409,
        "nothing_in_flight",
    );
    assert_error(
        &p.answer(&id, &secret, Some(&answer_b)).await,
        409,
        "nothing_in_flight",
    );
    assert_error(
        &p.initialize(&id, &secret, kv_b, &init_b).await,
        409,
        "payment_not_waiting",
    );
    assert_eq!(card_b.balance(), 10_000 - 300);

    // Recovery endpoints.
    let recoveries = [
        (
            "/v1/checkout/recoveries",
            json!({"card_id": "xyz", "kv": 1}),
            400,
            "invalid_request",
        ),
        (
            "/v1/checkout/recoveries",
            json!({"card_id": "1000000000000007"}),
            400,
            "invalid_request",
        ),
        (
            "/v1/checkout/recoveries",
            json!({"card_id": "1000000000000007", "kv": 1}),
            401,
            "client_secret_required",
        ),
        (
            "/v1/checkout/recoveries",
            json!({"card_id": "1000000000000007", "kv": 1, "client_secret": secret}),
            404,
            "nothing_to_recover",
        ),
        (
            "/v1/checkout/recoveries/rec_nope",
            json!({"response": "9000"}),
            404,
            "not_found",
        ),
    ];
    for (path, body, status, code) in recoveries {
        assert_error(&p.shopper(path, &body).await, status, code);
    }
    still_serving(&p, 9).await;
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let p = Plugin::start("bad-routes").await;
    let (id, secret, _) = create_single(&p, 100).await;
    let auth = format!("Bearer {API_KEY}");
    let merchant = [("authorization", auth.as_str())];
    let shopper = [("origin", ORIGIN)];
    type Case<'a> = (&'a str, String, &'a [(&'a str, &'a str)], u16, &'a str);
    let cases: Vec<Case> = vec![
        ("GET", "/".into(), &[], 404, "not_found"),
        ("GET", "/v2/payments".into(), &merchant, 404, "not_found"),
        ("POST", "/healthz".into(), &[], 405, "method_not_allowed"),
        (
            "DELETE",
            "/v1/payments".into(),
            &merchant,
            405,
            "method_not_allowed",
        ),
        (
            "PUT",
            format!("/v1/payments/{id}"),
            &merchant,
            405,
            "method_not_allowed",
        ),
        (
            "GET",
            format!("/v1/payments/{id}/cancel"),
            &merchant,
            405,
            "method_not_allowed",
        ),
        (
            "POST",
            format!("/v1/payments/{id}/refund"),
            &merchant,
            404,
            "not_found",
        ),
        (
            "GET",
            "/v1/payments/pay_unknown".into(),
            &merchant,
            404,
            "not_found",
        ),
        (
            "POST",
            "/v1/payments/pay_unknown/cancel".into(),
            &merchant,
            404,
            "not_found",
        ),
        (
            "GET",
            format!("/v1/checkout/payments/{id}/initialize?client_secret={secret}"),
            &shopper,
            405,
            "method_not_allowed",
        ),
        (
            "POST",
            format!("/v1/checkout/payments/{id}/pay"),
            &shopper,
            404,
            "not_found",
        ),
        (
            "DELETE",
            format!("/v1/checkout/payments/{id}"),
            &shopper,
            405,
            "method_not_allowed",
        ),
        (
            "GET",
            "/v1/checkout/recoveries".into(),
            &shopper,
            405,
            "method_not_allowed",
        ),
        (
            "POST",
            "/v1/checkout.js".into(),
            &[],
            405,
            "method_not_allowed",
        ),
    ];
    for (method, path, headers, status, code) in &cases {
        let r = p.request(method, path, None, headers).await;
        assert_error(&r, *status, code);
    }
    let js = p.send("GET", "/v1/checkout.js", Bytes::new(), &[]).await;
    assert_eq!(js.status, 200);
    assert!(js.headers["content-type"]
        .to_str()
        .is_ok_and(|t| t.starts_with("text/javascript")));
    still_serving(&p, 10).await;
}

//! The HTTP service as RFC 9110 / RFC 6750 and its own OpenAPI document say (issue 11):
//! decoded and checked query strings, the API key before the body, challenges on 401,
//! `Allow` on 405, CORS on the shopper API's errors, strict integers and text
//! currencies, the document's bounds, idempotency by parameters, recovery only for the
//! holder of a payment's secret, time-cycle periods of at most an hour.

mod support;

use bytes::Bytes;
use serde_json::{json, Value};
use support::{create_single, Plugin, Reply, TestCard, API_KEY, ORIGIN};

/// Request headers.
type Headers<'a> = &'a [(&'a str, &'a str)];

const AUTH: &str = "Bearer sk_test_0123456789";

fn header<'a>(r: &'a Reply, name: &str) -> &'a str {
    r.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[track_caller]
fn assert_code(r: &Reply, status: u16, code: &str) {
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (status, Some(code)),
        "{}",
        r.body
    );
}

async fn merchant(p: &Plugin, method: &str, path: &str, body: Option<Value>) -> Reply {
    let body = Bytes::from(body.map(|b| b.to_string()).unwrap_or_default());
    p.send(method, path, body, &[("authorization", AUTH)]).await
}

fn openapi() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/openapi.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).expect("openapi.yaml")).expect("YAML")
}

#[tokio::test]
async fn query_strings_are_decoded_and_checked() {
    let p = Plugin::start("http-query").await;
    let reference = "order 1044 & co/é";
    let r = merchant(
        &p,
        "POST",
        "/v1/payments",
        Some(json!({"amount": 100, "currency": "EUR", "order_reference": reference})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().expect("id").to_string();
    create_single(&p, 200).await;

    let q = "order_reference=order%201044%20%26%20co%2F%C3%A9";
    let r = merchant(&p, "GET", &format!("/v1/payments?{q}"), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let ids: Vec<&str> = r.body["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert_eq!(ids, [id.as_str()]);
    // '+' is a space in a query string too.
    let r = merchant(
        &p,
        "GET",
        "/v1/payments?order_reference=order+1044+%26+co%2F%C3%A9",
        None,
    )
    .await;
    assert_eq!(r.body["data"].as_array().map(Vec::len), Some(1));

    let r = merchant(&p, "GET", "/v1/payments?colour=red", None).await;
    assert_code(&r, 400, "unknown_parameter");
    assert!(r.body["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("colour")));
    let r = merchant(&p, "GET", "/v1/payments?limit=1&limit=2", None).await;
    assert_code(&r, 400, "invalid_request");
    let r = merchant(
        &p,
        "GET",
        "/v1/payments?starting_after=pay_000000000000000000000000",
        None,
    )
    .await;
    assert_code(&r, 400, "invalid_cursor");
    // A known cursor pages on.
    let r = merchant(
        &p,
        "GET",
        &format!("/v1/payments?starting_after={id}"),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = merchant(&p, "GET", &format!("/v1/payments/{id}?expand=x"), None).await;
    assert_code(&r, 400, "unknown_parameter");
}

#[tokio::test]
async fn the_api_key_comes_before_the_body_and_every_401_has_a_challenge() {
    let p = Plugin::start("http-auth").await;
    let big = Bytes::from(vec![b'x'; 70 * 1024]);
    for (auth, challenge) in [
        (None, "Bearer realm=\"merchant\""),
        (
            Some("Bearer sk_wrong"),
            "Bearer realm=\"merchant\", error=\"invalid_token\"",
        ),
    ] {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
        for body in [Bytes::from_static(b"{"), big.clone()] {
            for (method, path) in [
                ("POST", "/v1/payments"),
                ("POST", "/v1/payments/pay_000000000000000000000000/cancel"),
                ("GET", "/v1/payments"),
                ("TRACE", "/v1/payments"),
            ] {
                let r = p.send(method, path, body.clone(), &headers).await;
                assert_code(&r, 401, "unauthorized");
                assert_eq!(header(&r, "www-authenticate"), challenge, "{method} {path}");
            }
        }
    }
    // The shopper API's 401s carry a challenge too.
    let (id, _, _) = create_single(&p, 100).await;
    let r = p
        .send(
            "GET",
            &format!("/v1/checkout/payments/{id}"),
            Bytes::new(),
            &[],
        )
        .await;
    assert_code(&r, 401, "client_secret_required");
    assert_eq!(header(&r, "www-authenticate"), "Bearer realm=\"checkout\"");
    let r = p
        .send(
            "GET",
            &format!("/v1/checkout/payments/{id}?client_secret=nope"),
            Bytes::new(),
            &[],
        )
        .await;
    assert_code(&r, 401, "invalid_client_secret");
    assert!(header(&r, "www-authenticate").contains("error=\"invalid_token\""));
}

#[tokio::test]
async fn other_methods_on_known_paths_get_405_with_allow() {
    let p = Plugin::start("http-405").await;
    let (id, _, _) = create_single(&p, 100).await;
    let auth = [("authorization", AUTH)];
    let page = [("origin", ORIGIN)];
    let cases: [(&str, String, Headers, &[&str]); 7] = [
        ("TRACE", "/healthz".into(), &[], &["GET", "HEAD"]),
        ("POST", "/v1/checkout.js".into(), &[], &["GET", "HEAD"]),
        (
            "TRACE",
            "/v1/payments".into(),
            &auth,
            &["GET", "HEAD", "POST"],
        ),
        (
            "DELETE",
            format!("/v1/payments/{id}"),
            &auth,
            &["GET", "HEAD"],
        ),
        (
            "PROPFIND",
            format!("/v1/payments/{id}/cancel"),
            &auth,
            &["POST"],
        ),
        (
            "TRACE",
            format!("/v1/checkout/payments/{id}"),
            &page,
            &["GET", "HEAD", "OPTIONS"],
        ),
        (
            "GET",
            "/v1/checkout/recoveries".into(),
            &page,
            &["OPTIONS", "POST"],
        ),
    ];
    for (method, path, headers, allow) in &cases {
        let r = p.send(method, path, Bytes::new(), headers).await;
        assert_code(&r, 405, "method_not_allowed");
        let mut got: Vec<&str> = header(&r, "allow").split(',').map(str::trim).collect();
        got.sort();
        assert_eq!(&got, allow, "{method} {path}");
    }
}

#[tokio::test]
async fn shopper_errors_carry_the_cors_headers() {
    let p = Plugin::start("http-cors").await;
    let (id, _, _) = create_single(&p, 100).await;
    let page = [("origin", ORIGIN)];
    let ext = [
        ("origin", "chrome-extension://abcdefghijklmnop"),
        ("purse-page-origin", ORIGIN),
    ];
    let answer = format!("/v1/checkout/payments/{id}/answer");
    let cases: [(Headers, &str, String, &str, u16, &str); 5] = [
        (
            &page,
            "POST",
            answer.clone(),
            "{\"client_secret\": \"x\", \"response\": null}",
            401,
            "invalid_client_secret",
        ),
        (&page, "POST", answer.clone(), "{", 400, "invalid_json"),
        (
            &ext,
            "POST",
            answer.clone(),
            "{\"response\": null}",
            401,
            "client_secret_required",
        ),
        (
            &page,
            "POST",
            "/v1/checkout/payments/pay_000000000000000000000000/answer".into(),
            "{\"client_secret\": \"x\", \"response\": null}",
            404,
            "not_found",
        ),
        (
            &page,
            "DELETE",
            answer.clone(),
            "",
            405,
            "method_not_allowed",
        ),
    ];
    for (headers, method, path, body, status, code) in &cases {
        let r = p
            .send(method, path, Bytes::from(body.to_string()), headers)
            .await;
        assert_code(&r, *status, code);
        assert_eq!(
            header(&r, "access-control-allow-origin"),
            headers[0].1,
            "{method} {path} {code}"
        );
        assert!(header(&r, "vary").to_ascii_lowercase().contains("origin"));
    }
}

#[tokio::test]
async fn the_server_holds_to_the_documents_types_and_bounds() {
    let p = Plugin::start("http-types").await;
    let doc = openapi();
    // An integer is a number without a fraction (JSON Schema's `integer`), whatever
    // its spelling; a fraction, or a currency as a number, is refused.
    for amount in ["185", "185.0", "1.85e2"] {
        let body = format!("{{\"amount\": {amount}, \"currency\": \"EUR\"}}");
        let r = p
            .send(
                "POST",
                "/v1/payments",
                Bytes::from(body),
                &[("authorization", AUTH)],
            )
            .await;
        assert_eq!(
            (r.status, &r.body["amount"]),
            (201, &json!(185)),
            "{amount}: {}",
            r.body
        );
    }
    for body in [
        json!({"amount": 185.5, "currency": "EUR"}),
        json!({"amount": 1e20, "currency": "EUR"}),
        json!({"amount": 185, "currency": 978}),
    ] {
        let r = merchant(&p, "POST", "/v1/payments", Some(body)).await;
        assert_code(&r, 400, "invalid_request");
    }
    // The document says the same: currency is text, integers bounded as the server.
    let create = &doc["components"]["schemas"]["CreatePaymentRequest"]["properties"];
    assert_eq!(create["currency"]["type"], "string");
    let list = doc["paths"]["/v1/payments"]["get"]["parameters"]
        .as_array()
        .expect("parameters");
    for name in ["created_gte", "created_lt"] {
        let schema = &list.iter().find(|p| p["name"] == name).expect(name)["schema"];
        let max = schema["maximum"].as_u64().expect("a documented maximum");
        let min = schema["minimum"].as_i64().expect("a documented minimum");
        let r = merchant(&p, "GET", &format!("/v1/payments?{name}={max}"), None).await;
        assert_eq!(r.status, 200, "{name}={max}: {}", r.body);
        let r = merchant(&p, "GET", &format!("/v1/payments?{name}={min}"), None).await;
        assert_eq!(r.status, 200, "{name}={min}: {}", r.body);
        for bad in [
            format!("{}", u128::from(max) + 1),
            format!("{}", min - 1),
            "1.0".into(),
        ] {
            let r = merchant(&p, "GET", &format!("/v1/payments?{name}={bad}"), None).await;
            assert_code(&r, 400, "invalid_request");
        }
    }
    // A preflight for an id the document's pattern refuses: no such resource.
    let page = [("origin", ORIGIN)];
    for path in [
        "/v1/checkout/payments/nope",
        "/v1/checkout/payments/pay_XYZ/answer",
        "/v1/checkout/recoveries/rec_1",
    ] {
        let r = p.send("OPTIONS", path, Bytes::new(), &page).await;
        assert_code(&r, 404, "not_found");
    }
    let r = p
        .send(
            "OPTIONS",
            "/v1/checkout/payments/pay_000000000000000000000000/answer",
            Bytes::new(),
            &page,
        )
        .await;
    assert_eq!(r.status, 204);
}

#[tokio::test]
async fn idempotency_compares_the_parameters_not_the_bytes() {
    let p = Plugin::start("http-idem").await;
    let send = |body: &'static str, key: &'static str| {
        let p = &p;
        async move {
            p.send(
                "POST",
                "/v1/payments",
                Bytes::from_static(body.as_bytes()),
                &[("authorization", AUTH), ("idempotency-key", key)],
            )
            .await
        }
    };
    let first = send(
        r#"{"amount":100,"currency":"EUR","time_cycle":null,"order_reference":"o-7"}"#,
        "order-7",
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.body);
    let again = send(
        "{\n  \"order_reference\" : \"o-7\",\n  \"currency\": \"EUR\",\n  \"time_cycle\": null, \"amount\": 100\n}",
        "order-7",
    )
    .await;
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(header(&again, "idempotent-replayed"), "true");
    assert_eq!(again.body["id"], first.body["id"]);
    let other = send(
        r#"{"amount":101,"currency":"EUR","order_reference":"o-7"}"#,
        "order-7",
    )
    .await;
    assert_code(&other, 409, "idempotency_key_reused");
    let (_, list) = p.merchant("GET", "/v1/payments", None).await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn recovery_tells_nothing_without_the_payments_secret() {
    let p = Plugin::start("http-recovery").await;
    let mut card = TestCard::new(0x51, 10_000);
    let (id, secret, _debit) = p.authorize(&mut card, 300).await;
    let (s, _) = p.answer(&id, &secret, None).await;
    assert_eq!(s, 200);
    let pending = card.select().card_id.to_hex();
    let stranger = "10000000000000ee";
    // Without a secret, or with another's, a card with a payment pending and a card
    // unknown here get the same reply.
    let (_, other_secret, _) = create_single(&p, 100).await;
    for extra in [json!({}), json!({"client_secret": other_secret})] {
        let mut replies = Vec::new();
        for card_id in [&pending, stranger] {
            let mut b = json!({"card_id": card_id, "kv": 1});
            for (k, v) in extra.as_object().expect("object") {
                b[k] = v.clone();
            }
            replies.push(p.shopper("/v1/checkout/recoveries", &b).await);
        }
        assert_eq!(replies[0], replies[1], "{extra}");
        assert!(
            replies[0].0 == 401 || replies[0].0 == 404,
            "{:?}",
            replies[0]
        );
    }
    // The holder of the secret recovers (the DEBIT never reached the card: voided).
    let (s, r) = p.recover(&mut card, &secret).await;
    assert_eq!((s, &r["done"]), (200, &json!(true)), "{r}");
    assert_eq!(p.payment(&id).await["status"], "failed");
}

#[tokio::test]
async fn time_cycle_periods_are_at_most_an_hour() {
    let p = Plugin::start("http-period").await;
    let tc = |period: u64| {
        json!({"currency": "EUR", "mode": "time_cycle",
               "time_cycle": {"unit_amount": 10, "period_seconds": period, "max_units": 3}})
    };
    let r = merchant(&p, "POST", "/v1/payments", Some(tc(3600))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["time_cycle"]["period_seconds"], 3600);
    let r = merchant(&p, "POST", "/v1/payments", Some(tc(3601))).await;
    assert_code(&r, 400, "invalid_request");
    let m = r.body["error"]["message"].as_str().unwrap_or("");
    assert!(m.contains("period_seconds") && m.contains("3600"), "{m}");
    let doc = openapi();
    let period = &doc["components"]["schemas"]["TimeCycle"]["properties"]["period_seconds"];
    assert_eq!(
        (&period["minimum"], &period["maximum"]),
        (&json!(1), &json!(3600))
    );
    assert_eq!(API_KEY, &AUTH["Bearer ".len()..]);
}

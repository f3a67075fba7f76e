//! Recovery, a time-cycle, refusals of malformed and oversized bodies, expiry.

use bytes::Bytes;
use serde_json::json;

use super::{body, code, AS_MERCHANT, AS_PAGE, BIG, EVIL, SHOPPER_POSTS, T};
use crate::support::{TestCard, T0};

pub async fn recovery(t: &mut T) {
    let mut card = TestCard::new(44, 10_000);
    let (id, secret, debit) = t.p.authorize(&mut card, 700).await;
    let _ = card.run(&debit); // The card paid; its answer is lost on the way.
    let lost = t
        .step(
            "answer",
            &id,
            json!({"client_secret": secret, "response": null}),
        )
        .await;
    assert_eq!(
        (lost.status, &lost.body["recovery_required"]),
        (200, &json!(true))
    );
    let r = t
        .step(
            "answer",
            &id,
            json!({"client_secret": secret, "response": "6985"}),
        )
        .await;
    assert_eq!(code(&r), (409, "recovery_required"));

    let tpl = "/v1/checkout/recoveries";
    // Only the holder of the secret of a payment this card paid may start a recovery:
    // nobody else learns whether a card has a payment pending here.
    let (_, other_secret, _) = t.single(100).await;
    for (b, expect) in [
        (json!({"card_id": "12", "kv": 1}), (400, "invalid_request")),
        (
            json!({"card_id": "10000000000000ff", "kv": 1}),
            (401, "client_secret_required"),
        ),
        (
            json!({"card_id": "10000000000000ff", "kv": 1, "client_secret": "pay_000000000000000000000000_secret_x"}),
            (401, "invalid_client_secret"),
        ),
        (
            json!({"card_id": "10000000000000ff", "kv": 1, "client_secret": format!("{id}_secret_wrong")}),
            (401, "invalid_client_secret"),
        ),
        (
            json!({"card_id": "10000000000000ff", "kv": 1, "client_secret": secret}),
            (404, "nothing_to_recover"),
        ),
        (
            json!({"card_id": card.select().card_id.to_hex(), "kv": 1, "client_secret": other_secret}),
            (404, "nothing_to_recover"),
        ),
    ] {
        let r = t.call_as(AS_PAGE, "POST", tpl, tpl, Some(b)).await;
        assert_eq!(code(&r), expect);
    }
    let r =
        t.c.call(
            &t.p,
            "POST",
            tpl,
            tpl,
            body(json!({"card_id": "12", "kv": 1})),
            &[("origin", EVIL)],
        )
        .await;
    assert_eq!(code(&r), (403, "origin_not_allowed"));

    let info = card.select();
    let start = json!({"card_id": info.card_id.to_hex(), "kv": info.kv.0, "client_secret": secret});
    let mut reply = t.call_as(AS_PAGE, "POST", tpl, tpl, Some(start)).await.body;
    let rid = reply["id"].as_str().expect("recovery id").to_string();
    let tpl = "/v1/checkout/recoveries/{id}";
    let path = format!("/v1/checkout/recoveries/{rid}");
    let r = t
        .call_as(AS_PAGE, "POST", tpl, &path, Some(json!({"response": "zz"})))
        .await;
    assert_eq!(code(&r), (400, "invalid_apdu"));
    let r =
        t.c.call(
            &t.p,
            "POST",
            tpl,
            &path,
            body(json!({"response": "9000"})),
            &[("origin", EVIL)],
        )
        .await;
    assert_eq!(r.status, 403);
    while reply["done"] == false {
        let answer = card.run(reply["command"].as_str().expect("command"));
        let r = t
            .call_as(
                AS_PAGE,
                "POST",
                tpl,
                &path,
                Some(json!({"response": answer})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        reply = r.body;
    }
    assert_eq!(
        reply["outcomes"],
        json!([{"payment": id, "outcome": "completed"}])
    );
    let r = t
        .call_as(
            AS_PAGE,
            "POST",
            tpl,
            &path,
            Some(json!({"response": "9000"})),
        )
        .await;
    assert_eq!(code(&r), (404, "not_found"), "a finished run is gone");
    assert_eq!(t.p.payment(&id).await["status"], "succeeded");

    // A card that never got its DEBIT: recovery voids it, the payment fails.
    let mut card = TestCard::new(45, 10_000);
    let (id, secret, _debit) = t.p.authorize(&mut card, 300).await;
    t.step(
        "answer",
        &id,
        json!({"client_secret": secret, "response": null}),
    )
    .await;
    let (s, r) = t.p.recover(&mut card, &secret).await;
    assert_eq!((s, &r["outcomes"][0]["outcome"]), (200, &json!("voided")));
    assert_eq!(t.p.payment(&id).await["failure"]["code"], "not_debited");
}

pub async fn time_cycle(t: &mut T) {
    let created = t
        .create(json!({"currency": "978", "mode": "time_cycle", "description": "Parking", "time_cycle": {"unit_amount": 50, "period_seconds": 60, "max_units": 5}}))
        .await;
    let (id, secret) = (
        created["id"].as_str().expect("id").to_string(),
        created["client_secret"].as_str().expect("s").to_string(),
    );
    let mut card = TestCard::new(46, 1000);
    let (kv, init) = card.initialize(&created);
    let step = t
        .step(
            "initialize",
            &id,
            json!({"client_secret": secret, "kv": kv, "response": init}),
        )
        .await;
    let a1 = card.run(step.body["command"].as_str().expect("DEBIT"));
    let running = t
        .step(
            "answer",
            &id,
            json!({"client_secret": secret, "response": a1}),
        )
        .await;
    assert_eq!(running.body["status"], "running");
    let early = t.step("tick", &id, json!({"client_secret": secret})).await;
    assert_eq!((early.status, &early.body["command"]), (200, &json!(null)));
    t.p.set_time(T0 + 60);
    let tick = t
        .step(
            "tick",
            &id,
            json!({"client_secret": secret, "answer": null}),
        )
        .await;
    let cmd = tick.body["command"].as_str().expect("TICK").to_string();
    let r = t.step("stop", &id, json!({"client_secret": secret})).await;
    assert_eq!(code(&r), (409, "answer_required"));
    let r = t
        .step(
            "tick",
            &id,
            json!({"client_secret": secret, "answer": {"response": "zz"}}),
        )
        .await;
    assert_eq!(code(&r), (400, "invalid_apdu"));
    let a2 = card.run(&cmd);
    let stopped = t
        .step(
            "stop",
            &id,
            json!({"client_secret": secret, "answer": {"response": a2}}),
        )
        .await;
    assert_eq!(
        (stopped.status, &stopped.body["status"]),
        (200, &json!("succeeded"))
    );
    assert_eq!(stopped.body["charged"], json!({"units": 2, "total": 100}));
    t.p.set_time(T0);
}

/// An operation that reads a body: template, path, headers.
type BodyOp = (String, String, &'static [(&'static str, &'static str)]);

/// Bodies that are not JSON objects, and bodies over 64 KiB, for every operation that
/// reads one.
pub async fn refusals_of_every_body_reading_operation(t: &mut T) {
    let big = Bytes::from(vec![b' '; BIG]);
    let none = "000000000000000000000000";
    let mut ops: Vec<BodyOp> = [
        ("/v1/payments", "/v1/payments".to_string(), AS_MERCHANT),
        (
            "/v1/payments/{id}/cancel",
            format!("/v1/payments/pay_{none}/cancel"),
            AS_MERCHANT,
        ),
        (
            "/v1/checkout/recoveries",
            "/v1/checkout/recoveries".to_string(),
            AS_PAGE,
        ),
        (
            "/v1/checkout/recoveries/{id}",
            format!("/v1/checkout/recoveries/rec_{none}"),
            AS_PAGE,
        ),
    ]
    .into_iter()
    .map(|(tpl, path, who)| (tpl.to_string(), path, who))
    .collect();
    for op in SHOPPER_POSTS {
        let tpl = format!("/v1/checkout/payments/{{id}}/{op}");
        ops.push((
            tpl,
            format!("/v1/checkout/payments/pay_{none}/{op}"),
            AS_PAGE,
        ));
    }
    for (tpl, path, headers) in &ops {
        for raw in ["{", "[1, 2]"] {
            let r =
                t.c.call(&t.p, "POST", tpl, path, Some(Bytes::from(raw)), headers)
                    .await;
            assert_eq!(code(&r), (400, "invalid_json"), "{tpl} {raw}");
        }
        let r =
            t.c.call(&t.p, "POST", tpl, path, Some(big.clone()), headers)
                .await;
        assert_eq!(code(&r), (413, "body_too_large"), "{tpl}");
    }
}

/// A client secret that ran out: every step answers 410, the payment is expired.
pub async fn expiry(t: &mut T) {
    let (id, secret, _) = t.single(100).await;
    t.p.set_time(T0 + 1801);
    for op in SHOPPER_POSTS {
        let r = t
            .step(
                op,
                &id,
                json!({"client_secret": secret, "kv": 1, "response": "9000"}),
            )
            .await;
        assert_eq!(code(&r), (410, "payment_expired"), "{op}");
    }
    assert_eq!(t.p.payment(&id).await["status"], "expired");
}

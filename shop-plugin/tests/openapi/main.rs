//! The contract test of `schema/openapi.yaml`: real requests against a live plugin (every
//! operation, its success and its error answers), each reply checked against the
//! document: the operation and status must be documented, the body must validate against
//! that response's schema (`$ref`s resolved within the document), an error's code must be
//! one the response lists (`x-codes`), a successful request's body must validate against
//! the request schema. At the end every documented (operation, status) must have been
//! seen, but for the few no test can cause for real (storage failure, an exhausted SAM).
//! The webhook events the plugin stored are checked against the `Event` schema.

#[path = "../support/mod.rs"]
mod support;

mod contract;
mod flows;
mod merchant;
mod shopper;

use std::collections::BTreeSet;

use bytes::Bytes;
use serde_json::{json, Value};
use support::{Plugin, Reply, API_KEY, ORIGIN};

use contract::Contract;

pub const EVIL: &str = "https://evil.example";

pub fn body(v: Value) -> Option<Bytes> {
    Some(Bytes::from(v.to_string()))
}

/// The harness's plugin plus the contract and the usual headers.
pub struct T {
    pub p: Plugin,
    pub c: Contract,
}

/// `Authorization` of the harness's API key.
pub const MERCHANT: &str = "Bearer sk_test_0123456789";
/// What the shop's server sends.
pub const AS_MERCHANT: &[(&str, &str)] = &[("authorization", MERCHANT)];
/// What the shop's page sends.
pub const AS_PAGE: &[(&str, &str)] = &[("origin", ORIGIN)];

impl T {
    /// A call with the headers `who` sends.
    pub async fn call_as(
        &mut self,
        who: &[(&str, &str)],
        method: &str,
        template: &str,
        path: &str,
        b: Option<Value>,
    ) -> Reply {
        let b = b.and_then(body);
        self.c.call(&self.p, method, template, path, b, who).await
    }

    pub async fn create(&mut self, request: Value) -> Value {
        let r = self
            .call_as(
                AS_MERCHANT,
                "POST",
                "/v1/payments",
                "/v1/payments",
                Some(request),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body
    }

    pub async fn single(&mut self, amount: u32) -> (String, String, Value) {
        let v = self.create(json!({"amount": amount, "currency": "EUR", "order_reference": "o-1", "description": "Tea", "notify_url": "https://shop.example/hook"})).await;
        (
            v["id"].as_str().expect("id").into(),
            v["client_secret"].as_str().expect("secret").into(),
            v,
        )
    }

    pub async fn step(&mut self, op: &str, id: &str, b: Value) -> Reply {
        let template = format!("/v1/checkout/payments/{{id}}/{op}");
        let path = format!("/v1/checkout/payments/{id}/{op}");
        self.call_as(AS_PAGE, "POST", &template, &path, Some(b))
            .await
    }
}

pub fn code(r: &Reply) -> (u16, &str) {
    (r.status, r.body["error"]["code"].as_str().unwrap_or(""))
}

pub const SHOPPER_POSTS: [&str; 4] = ["initialize", "answer", "tick", "stop"];
pub const BIG: usize = 70 * 1024;

#[tokio::test]
async fn every_operation_answers_as_documented() {
    assert_eq!(MERCHANT, format!("Bearer {API_KEY}"));
    let mut t = T {
        p: Plugin::start("openapi").await,
        c: Contract::load(),
    };

    // Service.
    let r =
        t.c.call(&t.p, "GET", "/healthz", "/healthz", None, &[])
            .await;
    assert_eq!(r.status, 200);
    let r =
        t.c.call(&t.p, "GET", "/v1/checkout.js", "/v1/checkout.js", None, &[])
            .await;
    assert_eq!(r.status, 200);

    merchant::merchant_api(&mut t).await;
    shopper::shopper_api(&mut t).await;
    flows::recovery(&mut t).await;
    flows::time_cycle(&mut t).await;
    flows::refusals_of_every_body_reading_operation(&mut t).await;
    flows::expiry(&mut t).await;

    t.c.assert_complete();

    // The webhook events stored for delivery are what the document says is sent.
    let bodies: Vec<String> =
        t.p.app
            .engine
            .store()
            .read(|c| {
                let mut st = c.prepare("SELECT body FROM events")?;
                let rows = st.query_map([], |r| r.get(0))?;
                rows.collect()
            })
            .await
            .expect("events");
    assert!(bodies.len() > 10);
    let mut types = BTreeSet::new();
    for b in bodies {
        let ev: Value = serde_json::from_str(&b).expect("event JSON");
        let errors = t.c.validate("/components/schemas/Event", &ev);
        assert!(errors.is_empty(), "{ev}\n{}", errors.join("\n"));
        types.insert(ev["type"].as_str().expect("type").to_string());
    }
    for ty in [
        "created",
        "authorized",
        "running",
        "unit_charged",
        "succeeded",
        "failed",
        "canceled",
        "expired",
    ] {
        assert!(
            types.contains(&format!("payment.{ty}")),
            "no payment.{ty} event seen: {types:?}"
        );
    }
}

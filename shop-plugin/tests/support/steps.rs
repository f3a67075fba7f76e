//! The shopper's steps as checkout.js makes them, over any [`Http`]: INITIALIZE answer
//! in, DEBIT answer in, a whole purchase, and a recovery run driven by a card.

use serde_json::{json, Value};

use super::{create_single, Http, TestCard};

/// The id and client secret of a payment as the create response shows them.
pub fn id_and_secret(created: &Value) -> (String, String) {
    let field = |k: &str| {
        created[k]
            .as_str()
            .unwrap_or_else(|| panic!("{k} in {created}"))
    };
    (field("id").to_string(), field("client_secret").to_string())
}

impl Http {
    /// Every payment the merchant API lists (newest first, all pages).
    pub async fn all_payments(&self) -> Vec<Value> {
        let mut out: Vec<Value> = Vec::new();
        loop {
            let path = match out.last() {
                Some(p) => format!(
                    "/v1/payments?limit=100&starting_after={}",
                    p["id"].as_str().expect("id")
                ),
                None => "/v1/payments?limit=100".to_string(),
            };
            let (s, page) = self.merchant("GET", &path, None).await;
            assert_eq!(s, 200, "{page}");
            out.extend(page["data"].as_array().expect("data").iter().cloned());
            if page["has_more"] != json!(true) {
                return out;
            }
        }
    }

    /// `GET …/payments/{id}` as the shopper's page reads it (secret in the query).
    pub async fn shopper_get(&self, id: &str, secret: &str) -> (u16, Value) {
        self.request(
            "GET",
            &format!("/v1/checkout/payments/{id}?client_secret={secret}"),
            None,
            &[("origin", super::ORIGIN)],
        )
        .await
    }

    /// `POST …/initialize` with the card's INITIALIZE answer.
    pub async fn initialize(&self, id: &str, secret: &str, kv: u8, response: &str) -> (u16, Value) {
        self.shopper(
            &format!("/v1/checkout/payments/{id}/initialize"),
            &json!({"client_secret": secret, "kv": kv, "response": response}),
        )
        .await
    }

    /// `POST …/answer` with the card's DEBIT/TICK answer (`None`: the exchange failed).
    pub async fn answer(&self, id: &str, secret: &str, response: Option<&str>) -> (u16, Value) {
        self.shopper(
            &format!("/v1/checkout/payments/{id}/answer"),
            &json!({"client_secret": secret, "response": response}),
        )
        .await
    }

    /// Creates a payment and has `card` authorize it. Returns (id, secret, DEBIT hex).
    pub async fn authorize(&self, card: &mut TestCard, amount: u32) -> (String, String, String) {
        let (id, secret, created) = create_single(self, amount).await;
        let (kv, init) = card.initialize(&created);
        let (s, step) = self.initialize(&id, &secret, kv, &init).await;
        assert_eq!((s, &step["status"]), (200, &json!("authorized")), "{step}");
        let debit = step["command"].as_str().expect("DEBIT").to_string();
        (id, secret, debit)
    }

    /// A whole single purchase; returns the payment's id and its final shopper view.
    pub async fn pay(&self, card: &mut TestCard, amount: u32) -> (String, Value) {
        let (id, secret, debit) = self.authorize(card, amount).await;
        let answer = card.run(&debit);
        let (s, done) = self.answer(&id, &secret, Some(&answer)).await;
        assert_eq!((s, &done["status"]), (200, &json!("succeeded")), "{done}");
        (id, done)
    }

    /// Runs recovery for `card` to its end (the card answers every command), with the
    /// client secret of a payment that card paid. Returns the status and body of the
    /// last reply (`done: true` on success).
    pub async fn recover(&self, card: &mut TestCard, secret: &str) -> (u16, Value) {
        let info = card.select();
        let (s, mut reply) = self
            .shopper(
                "/v1/checkout/recoveries",
                &json!({"card_id": info.card_id.to_hex(), "kv": info.kv.0, "client_secret": secret}),
            )
            .await;
        if s != 200 {
            return (s, reply);
        }
        let id = reply["id"].as_str().expect("recovery id").to_string();
        // Bounded: one command per pending transaction plus the INITIALIZE.
        for _ in 0..64 {
            let command = reply["command"].as_str().expect("recovery command");
            let answer = card.run(command);
            let (s, r) = self
                .shopper(
                    &format!("/v1/checkout/recoveries/{id}"),
                    &json!({ "response": answer }),
                )
                .await;
            if s != 200 || r["done"] == json!(true) {
                return (s, r);
            }
            reply = r;
        }
        panic!("recovery did not end: {reply}");
    }

    /// The merchant's view of a payment.
    pub async fn payment(&self, id: &str) -> Value {
        let (s, v) = self
            .merchant("GET", &format!("/v1/payments/{id}"), None)
            .await;
        assert_eq!(s, 200, "{v}");
        v
    }
}

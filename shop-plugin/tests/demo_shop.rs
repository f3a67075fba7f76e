//! The demo shop against the real plugin, both as child processes on loopback: its page
//! includes the plugin's checkout.js, an order creates a payment through the merchant
//! API, the card pays it through the shopper API (as the extension would), and the order
//! turns paid when the plugin's signed webhook arrives; forged webhooks change nothing.
//! The test waits on the shop's long-poll (`GET /events`), never by sleeping.

mod support;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shop_plugin::webhooks::sign::sign;
use support::server::{spawn_listening, write_config, write_private, Server};
use support::{temp_dir, Http, TestCard, API_KEY};

const SECRET: &str = "whsec_test_0123456789abcdef"; // write_config's webhook secret

struct DemoShop {
    child: Child,
    http: Http,
}

impl Drop for DemoShop {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl DemoShop {
    fn start(dir: &Path, plugin: &Http) -> DemoShop {
        write_private(&dir.join("api-key"), &format!("{API_KEY}\n"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_demo-shop"));
        cmd.args(["--listen", "127.0.0.1:0", "--plugin"])
            .arg(format!("http://{}", plugin.addr))
            .arg("--api-key-file")
            .arg(dir.join("api-key"))
            .arg("--webhook-secret-file")
            .arg(dir.join("webhook-secret"));
        let (child, addr, _log) = spawn_listening(cmd, "demo-shop");
        DemoShop {
            child,
            http: Http::new(addr),
        }
    }

    /// Long-polls the shop until `order` reaches `status`; returns every change seen.
    async fn wait_for(&self, order: &str, status: &str) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let (mut after, mut seen) = (0, Vec::new());
        while Instant::now() < deadline {
            let (s, batch) = self
                .http
                .request(
                    "GET",
                    &format!("/events?order={order}&after={after}&timeout_ms=5000"),
                    None,
                    &[],
                )
                .await;
            assert_eq!(s, 200, "{batch}");
            after = batch["last"].as_u64().expect("last");
            for ev in batch["events"].as_array().expect("events") {
                seen.push(ev["order"].clone());
                if ev["order"]["status"] == status {
                    return seen;
                }
            }
        }
        panic!("order {order} never became {status}; saw {seen:?}");
    }
}

async fn start(name: &str) -> (Server, DemoShop) {
    let dir = temp_dir(name);
    write_config(&dir);
    let plugin = Server::start(&dir);
    let shop = DemoShop::start(&dir, &plugin.http);
    (plugin, shop)
}

#[tokio::test]
async fn an_order_is_paid_when_the_signed_webhook_says_so() {
    let (plugin, shop) = start("demo-pay").await;

    let (s, page) = shop.http.request("GET", "/", None, &[]).await;
    assert_eq!(s, 200);
    let page = page.as_str().expect("HTML");
    let script = format!(
        "<script src=\"http://{}/v1/checkout.js\"></script>",
        plugin.addr
    );
    assert!(
        page.contains(&script),
        "the page includes the plugin's checkout.js"
    );
    assert!(page.contains("data-product=\"tea\""));

    let (s, order) = shop
        .http
        .request("POST", "/orders", Some(&json!({"product": "tea"})), &[])
        .await;
    assert_eq!(s, 201, "{order}");
    assert_eq!(order["status"], "awaiting_payment");
    assert_eq!(order["api_base"], format!("http://{}", plugin.addr));
    let (order_id, pay_id) = (
        order["id"].as_str().expect("id"),
        order["payment_id"].as_str().expect("pay"),
    );
    let secret = order["client_secret"].as_str().expect("client secret");

    // What the shop asked the plugin for: its own order, with its webhook URL.
    let (_, m) = plugin
        .merchant("GET", &format!("/v1/payments/{pay_id}"), None)
        .await;
    assert_eq!(
        (m["amount"].as_u64(), m["currency"].as_str()),
        (Some(1250), Some("EUR"))
    );
    assert_eq!(m["order_reference"], order_id);
    assert_eq!(
        m["notify_url"],
        format!("http://{}/webhook", shop.http.addr)
    );

    // The shopper's side pays it: one load, then two requests.
    let mut card = TestCard::new(21, 10_000);
    let (_, view) = plugin
        .request(
            "GET",
            &format!("/v1/checkout/payments/{pay_id}?client_secret={secret}"),
            None,
            &[],
        )
        .await;
    let (kv, init) = card.initialize(&view);
    let (s, step) = plugin.initialize(pay_id, secret, kv, &init).await;
    assert_eq!(s, 200, "{step}");
    let answer = card.run(step["command"].as_str().expect("DEBIT"));
    let (s, done) = plugin.answer(pay_id, secret, Some(&answer)).await;
    assert_eq!((s, &done["status"]), (200, &json!("succeeded")));

    let seen = shop.wait_for(order_id, "paid").await;
    let paid = seen.last().expect("paid");
    assert_eq!(paid["charged_total"], 1250);
    assert_eq!(paid["final"], true);
    let (_, o) = shop
        .http
        .request("GET", &format!("/orders/{order_id}"), None, &[])
        .await;
    assert_eq!(o["status"], "paid");

    // Forged or stale webhooks are refused and change nothing.
    let forged = json!({"id": "evt_forged", "type": "payment.failed", "data": {"object": {"order_reference": order_id, "status": "failed"}}});
    let body = forged.to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    for (headers, code) in [
        (vec![], "signature_missing"),
        (
            vec![(
                "purse-signature",
                sign(b"whsec_someone_else_0000", now, body.as_bytes()),
            )],
            "signature_invalid",
        ),
        (
            vec![(
                "purse-signature",
                sign(SECRET.as_bytes(), now - 3600, body.as_bytes()),
            )],
            "signature_invalid",
        ),
    ] {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (s, e) = shop
            .http
            .request_raw("POST", "/webhook", body.clone().into(), &h)
            .await;
        assert_eq!((s, &e["error"]["code"]), (400, &json!(code)), "{e}");
    }
    // Even a genuine signature cannot move a paid order back.
    let sig = sign(SECRET.as_bytes(), now, body.as_bytes());
    let (s, _) = shop
        .http
        .request_raw(
            "POST",
            "/webhook",
            body.into(),
            &[("purse-signature", &sig)],
        )
        .await;
    assert_eq!(s, 200);
    let (_, o) = shop
        .http
        .request("GET", &format!("/orders/{order_id}"), None, &[])
        .await;
    assert_eq!(o["status"], "paid");
}

#[tokio::test]
async fn a_canceled_order_is_canceled_at_the_plugin_and_unknown_products_are_refused() {
    let (plugin, shop) = start("demo-cancel").await;
    let (s, e) = shop
        .http
        .request("POST", "/orders", Some(&json!({"product": "yacht"})), &[])
        .await;
    assert_eq!((s, &e["error"]["code"]), (400, &json!("unknown_product")));

    let (s, order) = shop
        .http
        .request("POST", "/orders", Some(&json!({"product": "parking"})), &[])
        .await;
    assert_eq!(s, 201, "{order}");
    let order_id = order["id"].as_str().expect("id");
    let (_, m) = plugin
        .merchant(
            "GET",
            &format!(
                "/v1/payments/{}",
                order["payment_id"].as_str().expect("pay")
            ),
            None,
        )
        .await;
    assert_eq!(m["mode"], "time_cycle");
    assert_eq!(
        m["time_cycle"],
        json!({"unit_amount": 50, "period_seconds": 60, "max_units": 10})
    );

    let (s, _) = shop
        .http
        .request("POST", &format!("/orders/{order_id}/cancel"), None, &[])
        .await;
    assert_eq!(s, 200);
    shop.wait_for(order_id, "canceled").await;
}

//! Webhooks end to end on loopback: real HTTP(S) receivers, the real SQLite outbox, the
//! delivery worker on the test clock. Signatures verify (and refuse tampering), failed
//! deliveries are retried by the backoff with the same event id, events of one payment
//! arrive in order, and an event survives a restart of the plugin.

mod support;

use std::time::Duration;

use serde_json::json;
use shop_plugin::outbound::Outbound;
use shop_plugin::webhooks::deliver::{self, Attempt, Handle, Worker};
use shop_plugin::webhooks::outbox::{self, Outcome};
use shop_plugin::webhooks::sign::VerifyError;
use shop_plugin::webhooks::{verify, Backoff, WebhookSecret};
use support::receiver::{Receiver, TestCa};
use support::{Plugin, TestCard, T0};

const SECRET: &str = "whsec_test_0123456789abcdef";

const BACKOFF: Backoff = Backoff {
    first_secs: 30,
    max_delay_secs: 3600,
    give_up_secs: 86_400,
};

fn start_worker(p: &Plugin, backoff: Backoff, client: Outbound) -> Handle {
    deliver::spawn(Worker {
        store: p.app.engine.store().clone(),
        clock: p.clock.clone(),
        secret: WebhookSecret::new(SECRET).expect("secret"),
        backoff,
        client,
        wake: p.app.engine.outbox_wake(),
    })
}

fn client() -> Outbound {
    Outbound::new(None, Duration::from_secs(5)).expect("client")
}

async fn next_attempt(rx: &mut tokio::sync::broadcast::Receiver<Attempt>) -> Attempt {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("an attempt within the deadline")
        .expect("the worker runs")
}

async fn event_row(p: &Plugin, id: &str) -> outbox::EventRow {
    let id = id.to_string();
    p.app
        .engine
        .store()
        .read(move |c| outbox::get(c, &id))
        .await
        .expect("read")
        .expect("the event")
}

#[tokio::test]
async fn a_delivery_is_signed_and_tampering_is_refused() {
    let p = Plugin::start("wh-sign").await;
    let mut rx = Receiver::start(&[]).await;
    let worker = start_worker(&p, BACKOFF, client());
    let mut attempts = worker.subscribe();
    let (id, _, _) = p.create_notifying(1250, &rx.url("/hooks/purse")).await;

    let got = rx.next().await;
    assert_eq!(got.path, "/hooks/purse");
    let event = got.json();
    assert_eq!(event["type"], "payment.created");
    assert_eq!(event["data"]["object"]["id"], json!(id));
    assert_eq!(
        got.header("purse-event-id"),
        event["id"].as_str().expect("id")
    );
    assert_eq!(got.header("content-type"), "application/json");
    let sig = got.header("purse-signature").to_string();
    let s = SECRET.as_bytes();
    assert_eq!(verify(s, &sig, &got.body, T0 + 10, 300), Ok(T0));

    // A changed body, a changed timestamp, another secret, an old delivery: refused.
    let tampered = String::from_utf8(got.body.to_vec())
        .expect("utf-8")
        .replace("1250", "1");
    assert_eq!(
        verify(s, &sig, tampered.as_bytes(), T0, 300),
        Err(VerifyError::Mismatch)
    );
    let later = sig.replace(&format!("t={T0}"), &format!("t={}", T0 + 1));
    assert_eq!(
        verify(s, &later, &got.body, T0, 300),
        Err(VerifyError::Mismatch)
    );
    assert_eq!(
        verify(b"whsec_someone_else_0000", &sig, &got.body, T0, 300),
        Err(VerifyError::Mismatch)
    );
    assert!(matches!(
        verify(s, &sig, &got.body, T0 + 301, 300),
        Err(VerifyError::Stale { .. })
    ));

    let a = next_attempt(&mut attempts).await;
    assert_eq!((a.outcome, a.attempt), (Outcome::Delivered, 1));
    let row = event_row(&p, &a.event_id).await;
    assert_eq!((row.state(), row.delivered_at), ("delivered", Some(T0)));
    worker.stop().await;
}

#[tokio::test]
async fn a_failing_receiver_gets_the_same_event_again_by_the_backoff() {
    let p = Plugin::start("wh-retry").await;
    let mut rx = Receiver::start(&[500, 503]).await;
    let worker = start_worker(&p, BACKOFF, client());
    let mut attempts = worker.subscribe();
    p.create_notifying(700, &rx.url("/hook")).await;

    let first = rx.next().await;
    let a1 = next_attempt(&mut attempts).await;
    assert_eq!(a1.outcome, Outcome::Retry(T0 + 30), "first delay");
    assert_eq!(a1.error.as_deref(), Some("HTTP 500"));

    // Due by the shop's clock: the worker sends when woken (as the engine wakes it).
    p.set_time(T0 + 30);
    worker.wake();
    let second = rx.next().await;
    let a2 = next_attempt(&mut attempts).await;
    assert_eq!(a2.outcome, Outcome::Retry(T0 + 30 + 60), "doubled");

    p.set_time(T0 + 90);
    worker.wake();
    let third = rx.next().await;
    let a3 = next_attempt(&mut attempts).await;
    assert_eq!((a3.outcome, a3.attempt), (Outcome::Delivered, 3));

    let ids: Vec<&str> = [&first, &second, &third]
        .iter()
        .map(|r| r.header("purse-event-id"))
        .collect();
    assert_eq!(
        ids,
        vec![a1.event_id.as_str(); 3],
        "one event, three deliveries"
    );
    assert!(first.body == second.body && second.body == third.body);
    // Each attempt is signed at its own time.
    for (r, t) in [(&first, T0), (&second, T0 + 30), (&third, T0 + 90)] {
        assert_eq!(
            verify(
                SECRET.as_bytes(),
                r.header("purse-signature"),
                &r.body,
                t,
                0
            ),
            Ok(t)
        );
    }
    let row = event_row(&p, &a1.event_id).await;
    assert_eq!((row.attempts, row.delivered_at), (3, Some(T0 + 90)));
    assert!(rx.try_next().is_none(), "nothing more was sent");
    worker.stop().await;
}

#[tokio::test]
async fn events_of_a_payment_arrive_in_order_and_others_are_not_held_back() {
    let p = Plugin::start("wh-order").await;
    let mut rx = Receiver::start(&[500]).await;
    let worker = start_worker(&p, BACKOFF, client());
    let url = rx.url("/hook");

    // Payment A: its first event fails, then A is paid (two more events queue behind).
    let (a, secret, created) = p.create_notifying(1000, &url).await;
    let failed = rx.next().await;
    assert_eq!(failed.json()["type"], "payment.created");
    let mut card = TestCard::new(21, 5000);
    let (kv, init) = card.initialize(&created);
    let (s, step) = p.initialize(&a, &secret, kv, &init).await;
    assert_eq!(s, 200, "{step}");
    let answer = card.run(step["command"].as_str().expect("DEBIT"));
    let (s, done) = p.answer(&a, &secret, Some(&answer)).await;
    assert_eq!((s, &done["status"]), (200, &json!("succeeded")));

    // Payment B is delivered at once: A's backoff holds back only A's events.
    let (b, _, _) = p.create_notifying(300, &url).await;
    let got = rx.next().await.json();
    assert_eq!(
        (got["type"].as_str(), got["data"]["object"]["id"].as_str()),
        (Some("payment.created"), Some(b.as_str()))
    );

    p.set_time(T0 + 30);
    worker.wake();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let e = rx.next().await.json();
        assert_eq!(e["data"]["object"]["id"], json!(a));
        seen.push(e["type"].as_str().expect("type").to_string());
    }
    assert_eq!(
        seen,
        ["payment.created", "payment.authorized", "payment.succeeded"]
    );
    worker.stop().await;
}

#[tokio::test]
async fn an_event_survives_a_restart_and_is_delivered_after_it() {
    let dir = support::temp_dir("wh-restart");
    let mut rx = Receiver::start(&[503]).await;
    let event_id = {
        let p = Plugin::start_in(dir.clone()).await;
        let worker = start_worker(&p, BACKOFF, client());
        let mut attempts = worker.subscribe();
        p.create_notifying(900, &rx.url("/hook")).await;
        rx.next().await;
        let a = next_attempt(&mut attempts).await;
        assert_eq!(a.outcome, Outcome::Retry(T0 + 30));
        worker.stop().await;
        a.event_id
    };

    // A new engine and worker over the same database file, the retry now due.
    let p = Plugin::start_in(dir).await;
    p.set_time(T0 + 30);
    let worker = start_worker(&p, BACKOFF, client());
    let mut attempts = worker.subscribe();
    let got = rx.next().await;
    assert_eq!(got.header("purse-event-id"), event_id);
    let a = next_attempt(&mut attempts).await;
    assert_eq!(
        (a.event_id.as_str(), a.outcome),
        (event_id.as_str(), Outcome::Delivered)
    );
    let row = event_row(&p, &event_id).await;
    assert_eq!((row.state(), row.attempts), ("delivered", 2));
    worker.stop().await;
}

#[tokio::test]
async fn exhausted_retries_keep_the_event_failed_until_requeued() {
    let p = Plugin::start("wh-failed").await;
    let mut rx = Receiver::start(&[500]).await;
    let give_up_at_once = Backoff {
        give_up_secs: 0,
        ..BACKOFF
    };
    let worker = start_worker(&p, give_up_at_once, client());
    let mut attempts = worker.subscribe();
    p.create_notifying(100, &rx.url("/hook")).await;
    rx.next().await;
    let a = next_attempt(&mut attempts).await;
    assert_eq!(a.outcome, Outcome::Failed);
    let failed = p
        .app
        .engine
        .store()
        .read(|c| outbox::list(c, true, 10))
        .await
        .expect("list");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].last_error.as_deref(), Some("HTTP 500"));

    p.app
        .engine
        .store()
        .commit(vec![outbox::requeue(a.event_id.clone(), T0)])
        .await
        .expect("requeue");
    worker.wake();
    assert_eq!(rx.next().await.header("purse-event-id"), a.event_id);
    let again = next_attempt(&mut attempts).await;
    assert_eq!((again.outcome, again.attempt), (Outcome::Delivered, 1));
    worker.stop().await;
}

#[tokio::test]
async fn https_notify_urls_are_delivered_over_tls() {
    let p = Plugin::start("wh-tls").await;
    let ca = TestCa::new();
    let ca_file = p.dir.join("ca.pem");
    ca.write_ca(&ca_file);
    let mut rx = Receiver::start_tls(&[], &ca).await;

    // Without the private CA the certificate is refused, and the attempt says so.
    let untrusting = start_worker(&p, BACKOFF, client());
    let mut attempts = untrusting.subscribe();
    p.create_notifying(200, &rx.url("/hook")).await;
    let a = next_attempt(&mut attempts).await;
    assert_eq!(a.outcome, Outcome::Retry(T0 + 30));
    assert!(
        a.error.as_deref().unwrap_or("").contains("certificate"),
        "{:?}",
        a.error
    );
    untrusting.stop().await;

    let trusting = Outbound::new(Some(&ca_file), Duration::from_secs(5)).expect("client");
    p.set_time(T0 + 30);
    let worker = start_worker(&p, BACKOFF, trusting);
    let got = rx.next().await;
    assert_eq!(got.header("purse-event-id"), a.event_id);
    assert_eq!(
        verify(
            SECRET.as_bytes(),
            got.header("purse-signature"),
            &got.body,
            T0 + 30,
            300
        ),
        Ok(T0 + 30)
    );
    worker.stop().await;
}

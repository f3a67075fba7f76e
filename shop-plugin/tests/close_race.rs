//! The close of the period against the requests that move a time-cycle, at every point
//! where they can meet: a close paused at a seam (after it read which time-cycles run,
//! or once it holds their payments' locks) while a first unit is confirmed, a Stop, a
//! TICK or a recovery runs; and those requests before and after the close. Whatever the
//! order, a unit the batch settles reaches its payment: succeeded, no next due time,
//! one `payment.succeeded` event, stored with the batch.

mod support;

use std::time::Duration;

use purse::sam::Order;
use purse::settlement::Batch;
use purse::{Amount, Currency, Units};
use serde_json::{json, Value};
use shop_plugin::engine::{CloseStage, Engine, NewPayment};
use shop_plugin::payment::{Payment, Status};
use support::{Plugin, TestCard, T0};

/// The plugin's engine over a real SQLite file, on a clock the test moves (driven
/// directly: the HTTP layer adds nothing to these orders).
struct Shop {
    plugin: Plugin,
}

impl Shop {
    async fn open(name: &str) -> Shop {
        Shop {
            plugin: Plugin::start(name).await,
        }
    }

    fn engine(&self) -> &Engine {
        &self.plugin.app.engine
    }

    fn set_time(&self, t: i64) {
        self.plugin.set_time(t);
    }

    /// A time-cycle payment authorized by `card`. Returns (id, secret, the card's
    /// answer to its DEBIT), the answer not yet given to the shop.
    async fn authorize(
        &self,
        card: &mut TestCard,
        unit: u32,
        max: u16,
        period: u32,
        notify_url: Option<String>,
    ) -> (String, String, String) {
        let e = self.engine();
        let (p, secret) = e
            .new_payment(NewPayment {
                currency: Currency::EUR,
                order: Order::time_cycle(Amount(unit), Units(max), period),
                order_ref: None,
                description: None,
                return_url: None,
                notify_url,
            })
            .expect("new payment");
        e.durable(e.store().submit(e.create_ops(&p)))
            .await
            .expect("stored");
        let (kv, init) = card.initialize(&json!({ "initialize": e.initialize_commands(&p) }));
        let step = e
            .initialize(&p.id, &secret, kv, init)
            .await
            .expect("authorized");
        let answer = card.run(step.command.as_deref().expect("DEBIT"));
        (p.id, secret, answer)
    }

    /// A running time-cycle: authorized and its first unit confirmed.
    async fn running(&self, card: &mut TestCard, unit: u32, max: u16) -> (String, String) {
        let (id, secret, debit) = self.authorize(card, unit, max, 60, None).await;
        self.first_unit(&id, &secret, &debit).await;
        (id, secret)
    }

    async fn first_unit(&self, id: &str, secret: &str, debit: &str) {
        let step = self
            .engine()
            .answer(id, secret, Some(debit.to_string()))
            .await
            .expect("unit 1");
        assert_eq!(step.payment.status, Status::Running);
    }

    async fn payment(&self, id: &str) -> Payment {
        self.engine().load(id).await.expect("payment")
    }

    async fn events(&self, id: &str) -> Vec<String> {
        let id = id.to_string();
        self.engine()
            .store()
            .read(move |c| {
                let mut st =
                    c.prepare("SELECT type FROM events WHERE payment_id = ?1 ORDER BY seq")?;
                let r = st
                    .query_map([id], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>();
                r
            })
            .await
            .expect("events")
    }

    async fn close(&self) -> Batch {
        self.plugin.close().await
    }

    /// Closes with a pause at `stage`, running `meanwhile` there. Returns the batch.
    async fn close_around<F: std::future::Future<Output = ()>>(
        &self,
        stage: CloseStage,
        meanwhile: impl FnOnce() -> F,
    ) -> Batch {
        let pause = self.engine().pause_next_close(stage);
        let (batch, ()) = tokio::join!(self.close(), async {
            pause.reached().await;
            meanwhile().await;
            pause.resume();
        });
        batch
    }
}

/// The (units, total) each payment's transaction settles for in `batch`.
fn settled(batch: &Batch, payment: &Payment) -> Option<(u16, u32)> {
    let seq = payment.sam_tx_seq.expect("a SAM transaction");
    batch
        .transactions
        .iter()
        .find(|t| t.sam_tx_seq == seq)
        .map(|t| (t.units.0, t.total.0))
}

/// What a settled time-cycle's payment must show: succeeded with its units, nothing due,
/// its success event once, and ticks and Stop after it change nothing.
async fn assert_ended(shop: &Shop, id: &str, secret: &str, units: u16, total: u32) {
    let p = shop.payment(id).await;
    assert_eq!(p.status, Status::Succeeded, "{}", p.merchant_view());
    assert_eq!((p.units.0, p.total.0), (units, total));
    assert_eq!(p.next_due_at, None);
    let events = shop.events(id).await;
    assert_eq!(
        events.iter().filter(|e| *e == "payment.succeeded").count(),
        1,
        "{events:?}"
    );
    assert_eq!(events.last().map(String::as_str), Some("payment.succeeded"));
    // Later requests see the end, not a conflict.
    shop.set_time(shop.engine().now() + 86_400);
    let t = shop.engine().tick(id, secret, None).await.expect("tick");
    assert_eq!((t.payment.status, t.command), (Status::Succeeded, None));
    let s = shop.engine().stop(id, secret, None).await.expect("stop");
    assert_eq!(s.payment.status, Status::Succeeded);
    assert_eq!(shop.events(id).await, events, "no event after the end");
}

#[tokio::test]
async fn a_first_unit_confirmed_after_the_close_read_the_running_set_reaches_its_payment() {
    for stage in [CloseStage::Listed, CloseStage::Locked] {
        let shop = Shop::open("race-first-unit").await;
        // One time-cycle running when the close starts; another whose first unit is
        // confirmed while the close is paused.
        let mut alice = TestCard::new(1, 10_000);
        let (a, a_secret) = shop.running(&mut alice, 100, 10).await;
        let mut bob = TestCard::new(2, 10_000);
        let (b, b_secret, debit) = shop.authorize(&mut bob, 70, 10, 60, None).await;

        let batch = shop
            .close_around(stage, || shop.first_unit(&b, &b_secret, &debit))
            .await;

        let (pa, pb) = (shop.payment(&a).await, shop.payment(&b).await);
        assert_eq!(settled(&batch, &pa), Some((1, 100)), "{stage:?}");
        assert_eq!(settled(&batch, &pb), Some((1, 70)), "{stage:?}");
        assert!(batch.unresolved.is_empty(), "{stage:?}");
        assert_ended(&shop, &a, &a_secret, 1, 100).await;
        assert_ended(&shop, &b, &b_secret, 1, 70).await;
        assert_eq!(
            shop.events(&b).await,
            [
                "payment.created",
                "payment.authorized",
                "payment.running",
                "payment.succeeded"
            ]
        );
        assert!(shop.close().await.transactions.is_empty(), "settled once");
        assert_eq!(bob.balance(), 10_000 - 70);
    }
}

#[tokio::test]
async fn a_first_unit_confirmed_before_the_close_is_ended_by_it() {
    let shop = Shop::open("race-before").await;
    let mut card = TestCard::new(3, 10_000);
    let (id, secret, debit) = shop.authorize(&mut card, 40, 10, 60, None).await;
    shop.first_unit(&id, &secret, &debit).await;
    let batch = shop.close().await;
    assert_eq!(settled(&batch, &shop.payment(&id).await), Some((1, 40)));
    assert_ended(&shop, &id, &secret, 1, 40).await;
}

#[tokio::test]
async fn a_first_unit_confirmed_after_the_close_runs_on_to_the_next_close() {
    let shop = Shop::open("race-after").await;
    let mut card = TestCard::new(4, 10_000);
    let (id, secret, debit) = shop.authorize(&mut card, 40, 10, 60, None).await;
    // The DEBIT is in flight at the close: unresolved, nothing settled, still authorized.
    let first = shop.close().await;
    assert!(first.transactions.is_empty());
    assert_eq!(first.unresolved.len(), 1);
    assert_eq!(shop.payment(&id).await.status, Status::Authorized);

    shop.first_unit(&id, &secret, &debit).await;
    shop.set_time(T0 + 60);
    let t = shop
        .engine()
        .tick(&id, &secret, None)
        .await
        .expect("tick 2");
    let a2 = card.run(t.command.as_deref().expect("TICK 2 is due"));
    let t = shop
        .engine()
        .answer(&id, &secret, Some(a2))
        .await
        .expect("a2");
    assert_eq!(t.payment.status, Status::Running);

    let second = shop.close().await;
    assert_eq!(settled(&second, &shop.payment(&id).await), Some((2, 80)));
    assert!(second.unresolved.is_empty());
    assert_ended(&shop, &id, &secret, 2, 80).await;
    assert_eq!(card.balance(), 10_000 - 80);
}

#[tokio::test]
async fn a_stop_after_the_close_read_the_running_set_is_not_ended_twice() {
    let shop = Shop::open("race-stop").await;
    let mut card = TestCard::new(5, 10_000);
    let (id, secret) = shop.running(&mut card, 30, 10).await;
    let batch = shop
        .close_around(CloseStage::Listed, || async {
            let s = shop.engine().stop(&id, &secret, None).await.expect("stop");
            assert_eq!(s.payment.status, Status::Succeeded);
        })
        .await;
    assert_eq!(settled(&batch, &shop.payment(&id).await), Some((1, 30)));
    assert_ended(&shop, &id, &secret, 1, 30).await;
}

#[tokio::test]
async fn a_tick_after_the_close_read_the_running_set_is_unresolved_and_goes_on() {
    let shop = Shop::open("race-tick").await;
    let mut card = TestCard::new(6, 10_000);
    let (id, secret) = shop.running(&mut card, 25, 10).await;
    shop.set_time(T0 + 60);
    let mut a2 = None;
    let batch = shop
        .close_around(CloseStage::Listed, || async {
            let t = shop
                .engine()
                .tick(&id, &secret, None)
                .await
                .expect("tick 2");
            a2 = Some(card.run(t.command.as_deref().expect("TICK 2 is due")));
        })
        .await;
    // The TICK was in flight at the close: the transaction waits, the payment runs.
    assert!(batch.transactions.is_empty());
    assert_eq!(batch.unresolved.len(), 1);
    assert_eq!(shop.payment(&id).await.status, Status::Running);

    let t = shop.engine().answer(&id, &secret, a2).await.expect("a2");
    assert_eq!((t.payment.status, t.payment.units.0), (Status::Running, 2));
    let next = shop.close().await;
    assert_eq!(settled(&next, &shop.payment(&id).await), Some((2, 50)));
    assert_ended(&shop, &id, &secret, 2, 50).await;
}

#[tokio::test]
async fn a_tick_while_the_close_holds_the_payment_waits_and_finds_it_ended() {
    let shop = Shop::open("race-tick-locked").await;
    let mut card = TestCard::new(7, 10_000);
    let (id, secret) = shop.running(&mut card, 25, 10).await;
    shop.set_time(T0 + 60);
    let pause = shop.engine().pause_next_close(CloseStage::Locked);
    let (batch, tick) = tokio::join!(shop.close(), async {
        pause.reached().await;
        let mut tick = std::pin::pin!(shop.engine().tick(&id, &secret, None));
        // One poll: the tick queues on the payment's lock the close holds.
        assert!(tokio::time::timeout(Duration::ZERO, &mut tick)
            .await
            .is_err());
        pause.resume();
        tick.await
    });
    let tick = tick.expect("tick");
    assert_eq!(
        (tick.payment.status, tick.command),
        (Status::Succeeded, None)
    );
    assert_eq!(settled(&batch, &shop.payment(&id).await), Some((1, 25)));
    assert_ended(&shop, &id, &secret, 1, 25).await;
    assert_eq!(card.balance(), 10_000 - 25);
}

#[tokio::test]
async fn a_recovery_during_the_close_settles_its_unit_once() {
    for stage in [CloseStage::Listed, CloseStage::Locked] {
        let shop = Shop::open("race-recovery").await;
        let mut card = TestCard::new(8, 10_000);
        let (id, secret, debit) = shop.authorize(&mut card, 60, 10, 60, None).await;
        // The card took the DEBIT, its answer was lost.
        card.run(&debit);
        let lost = shop
            .engine()
            .answer(&id, &secret, None)
            .await
            .expect("lost");
        assert!(lost.payment.recovery_required);

        let batch = shop
            .close_around(stage, || async {
                let info = card.select();
                let mut r = shop
                    .engine()
                    .start_recovery(&id, info.card_id, info.kv)
                    .await
                    .expect("recovery");
                let rid = r["id"].as_str().expect("id").to_string();
                while r["done"] != json!(true) {
                    let answer = card.run(r["command"].as_str().expect("command"));
                    r = shop
                        .engine()
                        .recovery_answer(&rid, Some(answer))
                        .await
                        .expect("recovery step");
                }
                assert_eq!(r["outcomes"][0]["outcome"], json!("completed"), "{r}");
            })
            .await;
        assert_eq!(
            settled(&batch, &shop.payment(&id).await),
            Some((1, 60)),
            "{stage:?}"
        );
        assert!(batch.unresolved.is_empty(), "{stage:?}");
        assert_ended(&shop, &id, &secret, 1, 60).await;
        assert!(shop.close().await.transactions.is_empty());
        assert_eq!(card.balance(), 10_000 - 60);
    }
}

/// The longest period the API takes (an hour): units at +0, +3600, +7200 on the shop's
/// clock, none a second early; the daily close ends the cycle with the units charged,
/// and the merchant is told.
#[tokio::test]
async fn an_hourly_time_cycle_runs_to_the_daily_close() {
    use shop_plugin::outbound::Outbound;
    use shop_plugin::webhooks::deliver::{self, Worker};
    use shop_plugin::webhooks::{Backoff, WebhookSecret};

    let shop = Shop::open("hourly").await;
    let mut rx = support::receiver::Receiver::start(&[]).await;
    let worker = deliver::spawn(Worker {
        store: shop.engine().store().clone(),
        clock: shop.plugin.clock.clone(),
        secret: WebhookSecret::new("whsec_test_0123456789abcdef").expect("secret"),
        backoff: Backoff {
            first_secs: 30,
            max_delay_secs: 3600,
            give_up_secs: 86_400,
        },
        client: Outbound::new(None, Duration::from_secs(5)).expect("client"),
        wake: shop.engine().outbox_wake(),
    });
    let mut card = TestCard::new(9, 10_000);
    let (id, secret, debit) = shop
        .authorize(&mut card, 500, 24, 3600, Some(rx.url("/hooks")))
        .await;
    shop.first_unit(&id, &secret, &debit).await;
    assert_eq!(shop.payment(&id).await.next_due_at, Some(T0 + 3600));

    let mut answer = None;
    for k in 1..=2i64 {
        shop.set_time(T0 + k * 3600 - 1);
        let early = shop
            .engine()
            .tick(&id, &secret, answer.take().map(Some))
            .await
            .expect("early tick");
        assert_eq!(early.command, None, "unit {} one second early", k + 1);
        assert_eq!(early.payment.next_due_at, Some(T0 + k * 3600));
        shop.set_time(T0 + k * 3600);
        let due = shop.engine().tick(&id, &secret, None).await.expect("tick");
        answer = Some(card.run(due.command.as_deref().expect("the unit is due")));
    }
    let t = shop
        .engine()
        .answer(&id, &secret, answer)
        .await
        .expect("unit 3");
    assert_eq!((t.payment.units.0, t.payment.total.0), (3, 1500));
    assert_eq!(t.payment.next_due_at, Some(T0 + 3 * 3600));

    shop.set_time(T0 + 3 * 3600 + 10);
    let batch = shop.close().await;
    assert_eq!(settled(&batch, &shop.payment(&id).await), Some((3, 1500)));
    assert_ended(&shop, &id, &secret, 3, 1500).await;
    assert_eq!(card.balance(), 10_000 - 1500);

    // The merchant hears every step, the end last, with the units charged.
    let mut kinds: Vec<Value> = Vec::new();
    while kinds.last() != Some(&json!("payment.succeeded")) {
        let got = rx.next().await.json();
        if got["type"] == "payment.succeeded" {
            assert_eq!(
                got["data"]["object"]["charged"],
                json!({"units": 3, "total": 1500})
            );
            assert_eq!(got["data"]["object"]["status"], "succeeded");
        }
        kinds.push(got["type"].clone());
    }
    assert_eq!(
        kinds,
        [
            "payment.created",
            "payment.authorized",
            "payment.running",
            "payment.unit_charged",
            "payment.unit_charged",
            "payment.succeeded"
        ]
    );
    worker.stop().await;
}

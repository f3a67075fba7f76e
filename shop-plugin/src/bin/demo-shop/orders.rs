//! The demo shop's order book (in memory: a demo): the catalogue, orders and the payment
//! each one has at the plugin, and the stream of order changes that pages and tests
//! long-poll (`GET /events`) instead of polling.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::watch;

/// One thing the shop sells.
pub struct Product {
    pub id: &'static str,
    pub name: &'static str,
    /// The price in minor units; for a time-cycle, the price per period.
    pub amount: u32,
    /// `(period_seconds, max_units)` for a time-cycle.
    pub time_cycle: Option<(u32, u32)>,
}

/// The catalogue: a single purchase, one too dear for the demo card, and a time-cycle.
pub fn catalogue(period_secs: u32) -> Vec<Product> {
    vec![
        Product {
            id: "tea",
            name: "Green tea, 100 g",
            amount: 1250,
            time_cycle: None,
        },
        Product {
            id: "teapot",
            name: "Cast-iron teapot",
            amount: 15_000,
            time_cycle: None,
        },
        Product {
            id: "parking",
            name: "Parking by the tea house",
            amount: 50,
            time_cycle: Some((period_secs, 10)),
        },
    ]
}

impl Product {
    /// The merchant API's create request for this product.
    pub fn payment_request(&self, currency: &str, order: &str, notify_url: &str) -> Value {
        let mut v = json!({
            "currency": currency,
            "order_reference": order,
            "description": self.name,
            "notify_url": notify_url,
        });
        match self.time_cycle {
            None => {
                v["mode"] = json!("single");
                v["amount"] = json!(self.amount);
            }
            Some((period, max_units)) => {
                v["mode"] = json!("time_cycle");
                v["time_cycle"] = json!({"unit_amount": self.amount, "period_seconds": period, "max_units": max_units});
            }
        }
        v
    }
}

/// The shop's view of a payment status.
fn order_status(payment_status: &str) -> &'static str {
    match payment_status {
        "created" => "awaiting_payment",
        "authorized" => "processing",
        "running" => "running",
        "succeeded" => "paid",
        "failed" => "failed",
        "canceled" => "canceled",
        "expired" => "expired",
        _ => "unknown",
    }
}

#[derive(Clone)]
struct Order {
    id: String,
    product: &'static str,
    currency: String,
    payment_id: String,
    payment_status: String,
    charged_total: u64,
    charged_units: u64,
}

impl Order {
    fn view(&self) -> Value {
        let status = order_status(&self.payment_status);
        json!({
            "id": self.id,
            "product": self.product,
            "currency": self.currency,
            "payment_id": self.payment_id,
            "status": status,
            "final": matches!(status, "paid" | "failed" | "canceled" | "expired"),
            "charged_total": self.charged_total,
            "charged_units": self.charged_units,
        })
    }
}

#[derive(Default)]
struct Book {
    orders: HashMap<String, Order>,
    /// Every order change, in order: `(seq, order id, event json)`.
    log: Vec<(u64, String, Value)>,
    /// Webhook event ids already applied (the plugin delivers at least once).
    seen: HashSet<String>,
}

/// The orders and their changes.
pub struct Orders {
    book: Mutex<Book>,
    /// The last seq written: long-polls wait for it to move.
    last: watch::Sender<u64>,
}

impl Orders {
    pub fn new() -> Orders {
        Orders {
            book: Mutex::new(Book::default()),
            last: watch::Sender::new(0),
        }
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(&self, book: &mut Book, order: &Order, cause: &str) {
        let seq = book.log.len() as u64 + 1;
        let ev = json!({"seq": seq, "cause": cause, "order": order.view()});
        book.log.push((seq, order.id.clone(), ev));
        self.last.send_replace(seq);
    }

    /// Records a new order whose payment the plugin created.
    pub fn add(&self, id: &str, product: &'static str, payment: &Value) -> Value {
        let order = Order {
            id: id.to_string(),
            product,
            currency: payment["currency"].as_str().unwrap_or("").to_string(),
            payment_id: payment["id"].as_str().unwrap_or("").to_string(),
            payment_status: payment["status"].as_str().unwrap_or("created").to_string(),
            charged_total: 0,
            charged_units: 0,
        };
        let mut book = self.book();
        self.record(&mut book, &order, "created");
        book.orders.insert(id.to_string(), order.clone());
        order.view()
    }

    pub fn get(&self, id: &str) -> Option<Value> {
        self.book().orders.get(id).map(Order::view)
    }

    pub fn payment_id(&self, id: &str) -> Option<String> {
        self.book().orders.get(id).map(|o| o.payment_id.clone())
    }

    /// Applies a verified webhook event. Returns false when its order is unknown.
    pub fn apply_event(&self, event: &Value) -> bool {
        let payment = &event["data"]["object"];
        let Some(order_id) = payment["order_reference"].as_str() else {
            return false;
        };
        let mut book = self.book();
        let event_id = event["id"].as_str().unwrap_or("").to_string();
        if book.seen.contains(&event_id) {
            return true; // A redelivery: applied already.
        }
        let Some(mut order) = book.orders.get(order_id).cloned() else {
            return false;
        };
        // A final status never changes (the plugin guarantees it too).
        if !order.view()["final"].as_bool().unwrap_or(false) {
            order.payment_status = payment["status"].as_str().unwrap_or("").to_string();
        }
        order.charged_total = payment["charged"]["total"].as_u64().unwrap_or(0);
        order.charged_units = payment["charged"]["units"].as_u64().unwrap_or(0);
        let cause = event["type"].as_str().unwrap_or("event").to_string();
        self.record(&mut book, &order, &cause);
        book.orders.insert(order.id.clone(), order);
        book.seen.insert(event_id);
        true
    }

    /// The changes after `after` (of one order, or all), waiting up to `wait` for one.
    /// Returns `{events, last}`; ask again with `after = last`.
    pub async fn events(&self, after: u64, order: Option<&str>, wait: Duration) -> Value {
        let deadline = Instant::now() + wait;
        let mut rx = self.last.subscribe();
        loop {
            rx.borrow_and_update();
            let (events, last) = {
                let book = self.book();
                let events: Vec<Value> = book
                    .log
                    .iter()
                    .filter(|(seq, id, _)| *seq > after && order.is_none_or(|o| o == id))
                    .map(|(_, _, ev)| ev.clone())
                    .collect();
                (events, book.log.len() as u64)
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if !events.is_empty() || left.is_zero() {
                return json!({"events": events, "last": last.max(after)});
            }
            if tokio::time::timeout(left, rx.changed()).await.is_err() {
                continue; // The deadline: answer with what there is (nothing).
            }
        }
    }
}

//! Webhooks: the events of every payment status change, POSTed to the payment's notify
//! URL and signed with the shop's secret ([`sign`]), from the durable outbox the engine
//! fills in the transaction of each change ([`outbox`]), by a worker that retries with
//! backoff ([`deliver`], [`Backoff`]) and keeps the events it could not deliver for the
//! operator.

mod backoff;
pub mod deliver;
pub mod outbox;
pub mod sign;

pub use backoff::Backoff;
pub use sign::{verify, WebhookSecret};

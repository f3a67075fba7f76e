//! The delivery worker: sends due events to their notify URLs, signed, and records
//! each attempt in the database (so a restart carries on where it stopped).
//!
//! It wakes when the engine commits (the engine's outbox [`Notify`]), when the next
//! retry falls due, and at least every minute. A 2xx answer marks the event delivered;
//! anything else records the error and schedules the next attempt by the [`Backoff`],
//! until the schedule is spent and the event is kept as failed. Delivery is at least
//! once: a crash between the receiver's 2xx and our record sends it again, with the same
//! `Purse-Event-Id`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{broadcast, Notify};
use tokio::task::{JoinHandle, JoinSet};

use super::outbox::{self, Due, Outcome};
use super::sign::{sign, WebhookSecret, EVENT_ID_HEADER, SIGNATURE_HEADER};
use super::Backoff;
use crate::engine::Clock;
use crate::outbound::Outbound;
use crate::store::Store;

/// Events sent at once (each to its own payment's URL).
const BATCH: u32 = 32;
/// The longest the worker sleeps without looking (another process may have re-queued).
const IDLE: Duration = Duration::from_secs(60);
/// After a wake-up, commits that follow within this window are taken in the same pass:
/// under load the engine pokes thousands of times a second.
const COALESCE: Duration = Duration::from_millis(20);
/// The longest error text kept per event.
const MAX_ERROR: usize = 300;

/// What the worker needs.
pub struct Worker {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub secret: WebhookSecret,
    pub backoff: Backoff,
    pub client: Outbound,
    /// Poked by the engine after each durable commit.
    pub wake: Arc<Notify>,
}

/// One attempt, as the worker recorded it (for tests and monitoring).
#[derive(Clone, Debug)]
pub struct Attempt {
    pub event_id: String,
    pub payment_id: String,
    pub attempt: u32,
    pub outcome: Outcome,
    pub error: Option<String>,
}

/// The running worker.
pub struct Handle {
    task: JoinHandle<()>,
    wake: Arc<Notify>,
    attempts: broadcast::Sender<Attempt>,
    /// Subscribed before the worker started: the first subscriber misses nothing.
    first: std::sync::Mutex<Option<broadcast::Receiver<Attempt>>>,
}

impl Handle {
    /// Makes the worker look for due events now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Every attempt, once recorded in the database: from the worker's start for the
    /// first subscriber, from now on for later ones.
    pub fn subscribe(&self) -> broadcast::Receiver<Attempt> {
        let first = self.first.lock().ok().and_then(|mut f| f.take());
        first.unwrap_or_else(|| self.attempts.subscribe())
    }

    /// Stops the worker (an attempt in progress is abandoned: it is sent again later).
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Starts the worker on the current tokio runtime.
pub fn spawn(worker: Worker) -> Handle {
    let (attempts, first) = broadcast::channel(1024);
    let wake = worker.wake.clone();
    let tx = attempts.clone();
    let task = tokio::spawn(async move { Arc::new(worker).run(tx).await });
    Handle {
        task,
        wake,
        attempts,
        first: std::sync::Mutex::new(Some(first)),
    }
}

impl Worker {
    async fn run(self: Arc<Self>, attempts: broadcast::Sender<Attempt>) {
        loop {
            let now = self.clock.now();
            let due = self.store.read(move |c| outbox::due(c, now, BATCH)).await;
            let due = match due {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!("webhooks: reading the outbox: {e}");
                    self.idle(IDLE).await;
                    continue;
                }
            };
            if due.is_empty() {
                let next = self.store.read(outbox::next_due_at).await.ok().flatten();
                let wait = next.map_or(IDLE, |t| {
                    Duration::from_secs(u64::try_from(t - now).unwrap_or(0)).min(IDLE)
                });
                self.idle(wait).await;
                continue;
            }
            let mut sends = JoinSet::new();
            for d in due {
                let me = self.clone();
                let attempts = attempts.clone();
                sends.spawn(async move {
                    let (a, recorded) = me.attempt(d).await;
                    // No subscriber is the normal case.
                    let _ = attempts.send(a);
                    recorded
                });
            }
            let mut all_recorded = true;
            while let Some(r) = sends.join_next().await {
                all_recorded &= r.unwrap_or(false);
            }
            if !all_recorded {
                // The database refuses writes: do not resend in a tight loop.
                self.idle(IDLE).await;
            }
        }
    }

    /// Sleeps until `wait` passes or the engine commits.
    async fn idle(&self, wait: Duration) {
        if wait.is_zero() {
            return;
        }
        tokio::select! {
            _ = self.wake.notified() => tokio::time::sleep(COALESCE).await,
            _ = tokio::time::sleep(wait) => {}
        }
    }

    /// Sends one event and records the attempt; says whether the record is durable.
    async fn attempt(&self, d: Due) -> (Attempt, bool) {
        let t = self.clock.now();
        let headers = [
            (
                SIGNATURE_HEADER,
                sign(self.secret.as_bytes(), t, d.body.as_bytes()),
            ),
            (EVENT_ID_HEADER, d.id.clone()),
        ];
        let sent = self
            .client
            .post_json(&d.url, Bytes::from(d.body.clone()), &headers)
            .await;
        let attempt = d.attempts.saturating_add(1);
        let now = self.clock.now();
        let (outcome, error) = match sent {
            Ok(_) => (Outcome::Delivered, None),
            Err(e) => {
                let outcome = match self.backoff.after_failure(attempt) {
                    Some(delay) if !e.permanent => Outcome::Retry(now.saturating_add(delay)),
                    _ => Outcome::Failed,
                };
                (outcome, Some(clip(e.message, MAX_ERROR)))
            }
        };
        match &outcome {
            Outcome::Delivered => tracing::debug!("webhook {} delivered", d.id),
            Outcome::Retry(at) => tracing::info!(
                "webhook {} attempt {attempt} failed ({}); next attempt at {at}",
                d.id,
                error.as_deref().unwrap_or("")
            ),
            Outcome::Failed => tracing::warn!(
                "webhook {} failed for good after {attempt} attempts ({}); \
                 `shop-plugin events retry {}` sends it again",
                d.id,
                error.as_deref().unwrap_or(""),
                d.id
            ),
        }
        let op = outbox::record(d.seq, attempt, now, outcome.clone(), error.clone());
        let recorded = match self.store.commit(vec![op]).await {
            Ok(()) => true,
            Err(e) => {
                // Not recorded: the event stays due and is sent again (at least once).
                tracing::warn!("webhooks: recording an attempt of {}: {e}", d.id);
                false
            }
        };
        let a = Attempt {
            event_id: d.id,
            payment_id: d.payment_id,
            attempt,
            outcome,
            error,
        };
        (a, recorded)
    }
}

/// `s` cut to at most `max` bytes, at a character boundary (an error text may hold any
/// character: `String::truncate` inside one would panic).
fn clip(mut s: String, max: usize) -> String {
    if s.len() > max {
        let end = (0..=max)
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::{clip, MAX_ERROR};

    #[test]
    fn an_error_text_is_clipped_at_a_character_boundary() {
        // "é" is two bytes: bytes 299 and 300 (0-based), across the limit.
        let text = format!("{}é and more", "x".repeat(MAX_ERROR - 1));
        let kept = clip(text.clone(), MAX_ERROR);
        assert_eq!(kept, "x".repeat(MAX_ERROR - 1));
        // A four-byte character straddling the limit, and texts within it.
        let text = format!("{}🦀🦀", "y".repeat(MAX_ERROR - 2));
        assert_eq!(clip(text, MAX_ERROR), "y".repeat(MAX_ERROR - 2));
        assert_eq!(clip("HTTP 500".into(), MAX_ERROR), "HTTP 500");
        let exact = "é".repeat(MAX_ERROR / 2);
        assert_eq!(clip(exact.clone(), MAX_ERROR), exact);
    }
}

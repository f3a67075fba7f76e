//! The delivery side of the webhook outbox (table `events`; the engine inserts the rows
//! in the transaction of each status change): which events are due, recording each
//! attempt, the operator's listing and re-queueing.
//!
//! Order per payment: only the oldest undelivered event of a payment (its *head*) may be
//! sent, so a payment's events arrive in the order they happened. A failed head holds
//! back the events behind it until the operator re-queues it. Events without a notify
//! URL are not deliveries and never block anything.

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::store::Op;

/// An event ready to be sent.
#[derive(Clone, Debug)]
pub struct Due {
    pub seq: i64,
    pub id: String,
    pub payment_id: String,
    pub body: String,
    pub url: String,
    pub attempts: u32,
}

/// Heads of their payments: undelivered, not failed, with no older undelivered event.
const HEADS: &str = "FROM events e
    WHERE e.delivered_at IS NULL AND e.failed_at IS NULL AND e.notify_url IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM events p
                      WHERE p.delivered_at IS NULL AND p.notify_url IS NOT NULL
                        AND p.payment_id = e.payment_id AND p.seq < e.seq)";

/// The heads due at `now`, the longest waiting first.
pub fn due(conn: &Connection, now: i64, limit: u32) -> rusqlite::Result<Vec<Due>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT e.seq, e.id, e.payment_id, e.body, e.notify_url, e.attempts {HEADS}
           AND e.next_attempt_at <= ?1
         ORDER BY e.next_attempt_at, e.seq LIMIT ?2"
    ))?;
    let rows = st.query_map(params![now, limit], |r| {
        Ok(Due {
            seq: r.get(0)?,
            id: r.get(1)?,
            payment_id: r.get(2)?,
            body: r.get(3)?,
            url: r.get(4)?,
            attempts: r.get(5)?,
        })
    })?;
    rows.collect()
}

/// When the next head becomes due (None: nothing to send).
pub fn next_due_at(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    conn.query_row(&format!("SELECT MIN(e.next_attempt_at) {HEADS}"), [], |r| {
        r.get(0)
    })
}

/// What became of one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Tried again at the given time.
    Retry(i64),
    /// Kept as failed (retries exhausted, or a notify URL that can never work).
    Failed,
}

/// Records attempt number `attempt` of event `seq` made at `now`.
pub fn record(seq: i64, attempt: u32, now: i64, outcome: Outcome, error: Option<String>) -> Op {
    Box::new(move |tx: &Transaction<'_>| {
        let (delivered, next, failed) = match outcome {
            Outcome::Delivered => (Some(now), None, None),
            Outcome::Retry(at) => (None, Some(at), None),
            Outcome::Failed => (None, None, Some(now)),
        };
        tx.execute(
            "UPDATE events SET attempts = ?2, delivered_at = ?3,
                    next_attempt_at = COALESCE(?4, next_attempt_at), failed_at = ?5, last_error = ?6
             WHERE seq = ?1 AND delivered_at IS NULL",
            params![seq, attempt, delivered, next, failed, error],
        )?;
        Ok(())
    })
}

/// Where an event stands, for the operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRow {
    pub seq: i64,
    pub id: String,
    pub payment_id: String,
    pub kind: String,
    pub created_at: i64,
    pub notify_url: Option<String>,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub delivered_at: Option<i64>,
    pub failed_at: Option<i64>,
    pub last_error: Option<String>,
}

impl EventRow {
    pub fn state(&self) -> &'static str {
        match (self.notify_url.is_some(), self.delivered_at, self.failed_at) {
            (false, _, _) => "no_url",
            (_, Some(_), _) => "delivered",
            (_, None, Some(_)) => "failed",
            _ => "pending",
        }
    }
}

const EVENT_COLUMNS: &str = "seq, id, payment_id, type, created_at, notify_url, attempts, \
                             next_attempt_at, delivered_at, failed_at, last_error";

fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        payment_id: r.get(2)?,
        kind: r.get(3)?,
        created_at: r.get(4)?,
        notify_url: r.get(5)?,
        attempts: r.get(6)?,
        next_attempt_at: r.get(7)?,
        delivered_at: r.get(8)?,
        failed_at: r.get(9)?,
        last_error: r.get(10)?,
    })
}

/// The newest events first (only the failed ones with `failed_only`).
pub fn list(conn: &Connection, failed_only: bool, limit: u32) -> rusqlite::Result<Vec<EventRow>> {
    let mut st = conn.prepare(&format!(
        "SELECT {EVENT_COLUMNS} FROM events
         WHERE (?1 = 0 OR (failed_at IS NOT NULL AND delivered_at IS NULL))
         ORDER BY seq DESC LIMIT ?2"
    ))?;
    let rows = st.query_map(params![failed_only, limit], event_row)?;
    rows.collect()
}

pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<EventRow>> {
    conn.query_row(
        &format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1"),
        [id],
        event_row,
    )
    .optional()
}

/// Re-queues an undelivered event (failed or waiting): due at `now` with a fresh retry
/// schedule. Delivered events and events without a notify URL are left alone.
pub fn requeue(id: String, now: i64) -> Op {
    Box::new(move |tx: &Transaction<'_>| {
        tx.execute(
            "UPDATE events SET failed_at = NULL, attempts = 0, next_attempt_at = ?2
             WHERE id = ?1 AND delivered_at IS NULL AND notify_url IS NOT NULL",
            params![id, now],
        )?;
        Ok(())
    })
}

/// Re-queues every failed event.
pub fn requeue_failed(now: i64) -> Op {
    Box::new(move |tx: &Transaction<'_>| {
        tx.execute(
            "UPDATE events SET failed_at = NULL, attempts = 0, next_attempt_at = ?1
             WHERE failed_at IS NOT NULL AND delivered_at IS NULL",
            [now],
        )?;
        Ok(())
    })
}

//! Reading and writing the rows: payments, the SAM's journal and counters, webhook
//! events, idempotency records, settlement batches and the last good hotlist. Writes are [`Op`]s for the group
//! commit; reads take a connection.

use purse::{CloseSeq, SamId};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::Op;
use crate::payment::{Payment, Status};

fn to_json<T: serde::Serialize>(v: &T) -> rusqlite::Result<String> {
    serde_json::to_string(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// Runs a statement prepared once per connection: the writer runs the same few statements
/// thousands of times a second, and parsing them was a fifth of its work.
fn execute(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// `query_row` with the statement prepared once per connection.
fn query_row<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, f)
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> rusqlite::Result<T> {
    serde_json::from_str(s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Inserts or updates a payment. Refuses to move a stored terminal status (the check is
/// in SQL, so no caller can regress a payment by accident).
pub fn put_payment(p: &Payment) -> Op {
    put_checked(p, |from, to| from.may_become(to))
}

/// The failure code of a payment whose record the clearing office refused.
pub const CLEARING_REFUSED: &str = "clearing_refused";

/// Stores a payment the clearing office refused: the one documented move out of a
/// terminal status, `succeeded` to `failed` with the failure `clearing_refused`
/// (the record the shop was paid on never reaches the merchant). Nothing else passes.
pub fn put_clearing_refused(p: &Payment) -> Op {
    let refused = p.status == Status::Failed
        && p.failure
            .as_ref()
            .is_some_and(|f| f.code == CLEARING_REFUSED);
    put_checked(p, move |from, to| {
        from.may_become(to) || (refused && from == Status::Succeeded)
    })
}

fn put_checked(p: &Payment, allowed: impl Fn(Status, Status) -> bool + Send + 'static) -> Op {
    let p = p.clone();
    // Serialized by the caller's thread: the writer thread is the one serial stage.
    let data = to_json(&p);
    Box::new(move |tx: &Transaction<'_>| {
        let data = data?;
        let stored: Option<String> = query_row(
            tx,
            "SELECT status FROM payments WHERE id = ?1",
            [&p.id],
            |r| r.get(0),
        )
        .optional()?;
        if let Some(s) = stored.as_deref().and_then(Status::parse) {
            if !allowed(s, p.status) {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    format!(
                        "payment {} may not move from {} to {}",
                        p.id,
                        s.as_str(),
                        p.status.as_str()
                    )
                    .into(),
                ));
            }
        }
        execute(
            tx,
            "INSERT INTO payments (id, status, currency, amount, order_ref, created_at, updated_at, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT(id) DO UPDATE SET status = ?2, updated_at = ?7, data = ?8",
            params![
                p.id,
                p.status.as_str(),
                p.currency.numeric(),
                p.order.unit_amount.0,
                p.order_ref,
                p.created_at,
                p.updated_at,
                data
            ],
        )?;
        Ok(())
    })
}

pub fn load_payment(conn: &Connection, id: &str) -> rusqlite::Result<Option<Payment>> {
    query_row(conn, "SELECT data FROM payments WHERE id = ?1", [id], |r| {
        r.get::<_, String>(0)
    })
    .optional()?
    .map(|d| from_json(&d))
    .transpose()
}

/// A payment with its SAM slot (see [`sam_rows::load_with_slot`]).
pub fn load_payment_with_slot(
    conn: &Connection,
    id: &str,
) -> rusqlite::Result<Option<(Payment, Option<super::sam_rows::SamSlot>)>> {
    super::sam_rows::load_with_slot(conn, id)?
        .map(|(d, slot)| Ok((from_json(&d)?, slot)))
        .transpose()
}

/// Filters of the payment listing (newest first, keyset-paginated by `starting_after`).
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    pub status: Option<Status>,
    pub order_ref: Option<String>,
    pub created_gte: Option<i64>,
    pub created_lt: Option<i64>,
    pub starting_after: Option<String>,
    pub limit: u32,
}

pub fn list_payments(conn: &Connection, f: &ListFilter) -> rusqlite::Result<Vec<Payment>> {
    let after: Option<(i64, String)> = match &f.starting_after {
        Some(id) => conn
            .query_row(
                "SELECT created_at, id FROM payments WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?,
        None => None,
    };
    let mut stmt = conn.prepare_cached(
        "SELECT data FROM payments
         WHERE (?1 IS NULL OR status = ?1)
           AND (?2 IS NULL OR order_ref = ?2)
           AND (?3 IS NULL OR created_at >= ?3)
           AND (?4 IS NULL OR created_at < ?4)
           AND (?5 IS NULL OR (created_at, id) < (?5, ?6))
         ORDER BY created_at DESC, id DESC
         LIMIT ?7",
    )?;
    let rows = stmt.query_map(
        params![
            f.status.map(Status::as_str),
            f.order_ref,
            f.created_gte,
            f.created_lt,
            after.as_ref().map(|a| a.0),
            after.as_ref().map(|a| a.1.clone()),
            f.limit
        ],
        |r| r.get::<_, String>(0),
    )?;
    rows.map(|d| d.and_then(|d| from_json(&d))).collect()
}

/// Totals of what settles in the open period: the records the SAM counted in periods
/// with no batch yet (`completed`), and the transactions still open on the SAM, by
/// where they stand (`authorized`, `running`, `pending` when an answer was lost).
pub fn open_totals(conn: &Connection) -> rusqlite::Result<Vec<(String, i64, i64)>> {
    let mut stmt = conn.prepare(
        "SELECT 'completed', COUNT(*), COALESCE(SUM(json_extract(p.data, '$.total')), 0)
           FROM sam_record r JOIN payments p ON p.id = r.payment_id
          WHERE NOT EXISTS (SELECT 1 FROM batches b WHERE b.close_seq = r.period)
         UNION ALL
         SELECT state, COUNT(*), COALESCE(SUM(total), 0) FROM (
           SELECT CASE WHEN json_extract(p.data, '$.recovery_required') THEN 'pending'
                       ELSE p.status END AS state,
                  json_extract(p.data, '$.total') AS total
             FROM sam_payment s JOIN payments p ON p.id = s.payment_id
            WHERE s.open = 1 AND s.sam_tx_seq IS NOT NULL)
          GROUP BY state ORDER BY 1",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

/// A transaction whose card answer was lost: it settles through recovery, or through
/// the clearing office when the card shows up elsewhere.
pub struct Unresolved {
    pub sam_tx_seq: i64,
    pub card_id: String,
    pub payment_id: String,
}

pub fn unresolved(conn: &Connection) -> rusqlite::Result<Vec<Unresolved>> {
    let mut st = conn.prepare(
        "SELECT s.sam_tx_seq, s.card_id, s.payment_id FROM sam_payment s
           JOIN payments p ON p.id = s.payment_id
          WHERE s.open = 1 AND json_extract(p.data, '$.recovery_required')
          ORDER BY s.sam_tx_seq",
    )?;
    let rows = st.query_map([], |r| {
        Ok(Unresolved {
            sam_tx_seq: r.get(0)?,
            card_id: r.get(1)?,
            payment_id: r.get(2)?,
        })
    })?;
    rows.collect()
}

/// A webhook event to deliver (the outbox).
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub id: String,
    pub payment_id: String,
    pub kind: String,
    pub created_at: i64,
    pub body: String,
    pub notify_url: Option<String>,
}

pub fn insert_event(e: NewEvent) -> Op {
    Box::new(move |tx: &Transaction<'_>| {
        execute(
            tx,
            "INSERT INTO events (id, payment_id, type, created_at, body, notify_url, next_attempt_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?4)",
            params![e.id, e.payment_id, e.kind, e.created_at, e.body, e.notify_url],
        )?;
        Ok(())
    })
}

/// A stored idempotent response: the hash of the request body and the response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idempotent {
    pub body_hash: String,
    pub status: u16,
    pub response: String,
}

pub fn get_idempotent(conn: &Connection, key: &str) -> rusqlite::Result<Option<Idempotent>> {
    query_row(
        conn,
        "SELECT body_hash, status, response FROM idempotency WHERE key = ?1",
        [key],
        |r| {
            Ok(Idempotent {
                body_hash: r.get(0)?,
                status: r.get(1)?,
                response: r.get(2)?,
            })
        },
    )
    .optional()
}

/// Records the response of an idempotent request; the first record of a key wins.
pub fn put_idempotent(key: String, rec: Idempotent, at: i64) -> Op {
    Box::new(move |tx: &Transaction<'_>| {
        let n = execute(
            tx,
            "INSERT INTO idempotency (key, body_hash, status, response, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(key) DO NOTHING",
            params![key, rec.body_hash, rec.status, rec.response, at],
        )?;
        if n == 0 {
            // Two requests with one key raced: the later one must not commit its payment.
            return Err(rusqlite::Error::ToSqlConversionFailure(
                "idempotency key already used".into(),
            ));
        }
        Ok(())
    })
}

pub fn insert_batch(sam_id: SamId, close_seq: CloseSeq, created_at: i64, body: String) -> Op {
    Box::new(move |tx: &Transaction<'_>| {
        execute(
            tx,
            "INSERT INTO batches (sam_id, close_seq, created_at, body) VALUES (?1, ?2, ?3, ?4)",
            params![sam_id.to_hex(), close_seq.0, created_at, body],
        )?;
        Ok(())
    })
}

/// Replaces the held hotlist (verified by the caller) with `list`, served as `body`.
pub fn put_hotlist(list: &purse::hotlist::Verified, body: String, fetched_at: i64) -> Op {
    let issued_at = list.issued_at;
    let cards: Vec<String> = list.cards.iter().map(purse::CardId::to_hex).collect();
    Box::new(move |tx| {
        execute(
            tx,
            "INSERT INTO hotlist (id, issued_at, cards, body, fetched_at) VALUES (1, ?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET issued_at = ?1, cards = ?2, body = ?3, fetched_at = ?4",
            params![issued_at, to_json(&cards)?, body, fetched_at],
        )
        .map(drop)
    })
}

/// The held hotlist, if one was ever taken.
pub fn load_hotlist(conn: &Connection) -> rusqlite::Result<Option<purse::hotlist::Verified>> {
    let row: Option<(i64, String)> = query_row(
        conn,
        "SELECT issued_at, cards FROM hotlist WHERE id = 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()?;
    let Some((issued_at, cards)) = row else {
        return Ok(None);
    };
    let hex: Vec<String> = from_json(&cards)?;
    let cards = hex
        .iter()
        .map(|h| purse::CardId::from_hex(h))
        .collect::<Result<_, _>>()
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e))
        })?;
    Ok(Some(purse::hotlist::Verified { issued_at, cards }))
}

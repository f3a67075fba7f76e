//! The rows of the SAM card's payments: each payment's sealed SAM context with what the card said
//! (`sam_payment`), and each record the SAM counted with its tag (`sam_record`), read
//! back in `SAM_TxSeq` order when its period closes.

use purse::{CardId, CloseSeq, KeyVersion, Nt, SamId, SamTxSeq};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use super::Op;
use crate::sam::Counted;

/// A payment's place on its SAM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SamSlot {
    pub payment_id: String,
    pub sam_id: SamId,
    pub sam_tx_seq: Option<SamTxSeq>,
    pub card_id: Option<CardId>,
    /// The card's NT of the authorizing session (what recovery asks the proof of).
    pub nt: Option<Nt>,
    pub kv: Option<KeyVersion>,
    /// The DateTime the SAM authorized at (time-cycle units fall due from it).
    pub authorized_at: Option<i64>,
    /// The sealed context the SAM's next command takes.
    pub ctx: Vec<u8>,
    /// A transaction the SAM has not made final yet (recovery looks for these).
    pub open: bool,
}

pub fn put_slot(s: &SamSlot) -> Op {
    let s = s.clone();
    Box::new(move |tx: &Transaction<'_>| {
        tx.prepare_cached(
            "INSERT INTO sam_payment (payment_id, sam_id, sam_tx_seq, card_id, nt, kv, authorized_at, ctx, open)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT(payment_id) DO UPDATE SET sam_id = ?2, sam_tx_seq = ?3, card_id = ?4,
                nt = ?5, kv = ?6, authorized_at = ?7, ctx = ?8, open = ?9",
        )?
        .execute(params![
            s.payment_id,
            s.sam_id.to_hex(),
            s.sam_tx_seq.map(|x| x.0),
            s.card_id.map(|c| c.to_hex()),
            s.nt.map(|n| n.0),
            s.kv.map(|k| k.0),
            s.authorized_at,
            s.ctx,
            s.open,
        ])?;
        Ok(())
    })
}

fn hex8(s: Option<String>) -> Option<[u8; 8]> {
    let b = hex::decode(s?).ok()?;
    b.try_into().ok()
}

fn slot(r: &rusqlite::Row<'_>) -> rusqlite::Result<SamSlot> {
    slot_at(r, 0)
}

/// The slot in a row's columns from `o` on (in [`SLOT_COLUMNS`] order).
fn slot_at(r: &rusqlite::Row<'_>, o: usize) -> rusqlite::Result<SamSlot> {
    Ok(SamSlot {
        payment_id: r.get(o)?,
        sam_id: SamId(hex8(r.get(o + 1)?).unwrap_or_default()),
        sam_tx_seq: r.get::<_, Option<u32>>(o + 2)?.map(SamTxSeq),
        card_id: hex8(r.get(o + 3)?).map(CardId),
        nt: r.get::<_, Option<u32>>(o + 4)?.map(Nt),
        kv: r.get::<_, Option<u8>>(o + 5)?.map(KeyVersion),
        authorized_at: r.get(o + 6)?,
        ctx: r.get(o + 7)?,
        open: r.get(o + 8)?,
    })
}

const SLOT_COLUMNS: &str =
    "payment_id, sam_id, sam_tx_seq, card_id, nt, kv, authorized_at, ctx, open";

pub fn load_slot(conn: &Connection, payment_id: &str) -> rusqlite::Result<Option<SamSlot>> {
    conn.prepare_cached(&format!(
        "SELECT {SLOT_COLUMNS} FROM sam_payment WHERE payment_id = ?1"
    ))?
    .query_row([payment_id], slot)
    .optional()
}

/// A payment's stored data and its slot (if it has one), in one read: the shopper's
/// steps need both.
pub fn load_with_slot(
    conn: &Connection,
    payment_id: &str,
) -> rusqlite::Result<Option<(String, Option<SamSlot>)>> {
    conn.prepare_cached(
        "SELECT p.data, s.payment_id, s.sam_id, s.sam_tx_seq, s.card_id, s.nt, s.kv,
                s.authorized_at, s.ctx, s.open
           FROM payments p LEFT JOIN sam_payment s ON s.payment_id = p.id
          WHERE p.id = ?1",
    )?
    .query_row([payment_id], |r| {
        let has_slot = r.get::<_, Option<String>>(1)?.is_some();
        Ok((
            r.get(0)?,
            if has_slot { Some(slot_at(r, 1)?) } else { None },
        ))
    })
    .optional()
}

/// The open transactions of SAM `sam_id` with a card command in flight, with their
/// payments' unit amounts: what a batch lists as unresolved.
pub fn in_flight(conn: &Connection, sam_id: SamId) -> rusqlite::Result<Vec<(SamSlot, u32)>> {
    let mut st = conn.prepare_cached(
        "SELECT s.payment_id, s.sam_id, s.sam_tx_seq, s.card_id, s.nt, s.kv,
                s.authorized_at, s.ctx, s.open, json_extract(p.data, '$.order.unit_amount')
           FROM sam_payment s JOIN payments p ON p.id = s.payment_id
          WHERE s.sam_id = ?1 AND s.open = 1 AND s.sam_tx_seq IS NOT NULL
            AND json_extract(p.data, '$.pending_command') IS NOT NULL
          ORDER BY s.sam_tx_seq",
    )?;
    let rows = st.query_map([sam_id.to_hex()], |r| Ok((slot(r)?, r.get(9)?)))?;
    rows.collect()
}

/// Payments of SAM `sam_id` whose time-cycle runs with no card command in flight (the
/// close stops them first).
pub fn running_payments(conn: &Connection, sam_id: SamId) -> rusqlite::Result<Vec<String>> {
    let mut st = conn.prepare_cached(
        "SELECT s.payment_id FROM sam_payment s JOIN payments p ON p.id = s.payment_id
         WHERE s.sam_id = ?1 AND s.open = 1 AND p.status = 'running'
           AND json_extract(p.data, '$.pending_command') IS NULL",
    )?;
    let rows = st.query_map([sam_id.to_hex()], |r| r.get(0))?;
    rows.collect()
}

pub fn put_record(payment_id: &str, sam_id: SamId, c: &Counted) -> Op {
    let (payment_id, c) = (payment_id.to_string(), c.clone());
    Box::new(move |tx: &Transaction<'_>| {
        let seq = c.tx_record().map(|r| r.sam_tx_seq.0).unwrap_or(0);
        // A record counts once: the SAM gives each SAM_TxSeq one completion.
        tx.prepare_cached(
            "INSERT OR IGNORE INTO sam_record (sam_id, sam_tx_seq, period, rec, tag, payment_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            sam_id.to_hex(),
            seq,
            c.period.0,
            c.rec,
            c.tag.to_vec(),
            payment_id
        ])?;
        Ok(())
    })
}

/// The records SAM `sam_id` counted in `period`, in `SAM_TxSeq` order.
pub fn records_of(
    conn: &Connection,
    sam_id: SamId,
    period: CloseSeq,
) -> rusqlite::Result<Vec<Counted>> {
    let mut st = conn.prepare_cached(
        "SELECT rec, tag FROM sam_record WHERE sam_id = ?1 AND period = ?2 ORDER BY sam_tx_seq",
    )?;
    let rows = st.query_map(params![sam_id.to_hex(), period.0], |r| {
        let tag: Vec<u8> = r.get(1)?;
        Ok(Counted {
            period,
            rec: r.get(0)?,
            tag: tag.try_into().unwrap_or_default(),
        })
    })?;
    rows.collect()
}

/// The payments of SAM `sam_id`'s records `seqs` (those the SAM counted).
pub fn payments_of(
    conn: &Connection,
    sam_id: SamId,
    seqs: &[SamTxSeq],
) -> rusqlite::Result<Vec<String>> {
    let mut st = conn.prepare_cached(
        "SELECT payment_id FROM sam_record WHERE sam_id = ?1 AND sam_tx_seq = ?2",
    )?;
    let mut ids = Vec::new();
    for seq in seqs {
        if let Some(id) = st
            .query_row(params![sam_id.to_hex(), seq.0], |r| r.get(0))
            .optional()?
        {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// Whether SAM `sam_id`'s batch of `close_seq` is stored.
pub fn has_batch(conn: &Connection, sam_id: SamId, close_seq: CloseSeq) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM batches WHERE sam_id = ?1 AND close_seq = ?2")?
        .query_row(params![sam_id.to_hex(), close_seq.0], |_| Ok(()))
        .optional()
        .map(|r| r.is_some())
}

//! The batches the engine closed (table `batches`, one row per close, written with the
//! close itself) and what `settle` did with each: the file it wrote, when the clearing
//! office took it. Batch files are `batch-<sam_id>-<close_seq>.json`, the batch of spec
//! section 6 as `purse::settlement::Batch` serializes it.

use purse::settlement::Batch;
use rusqlite::{params, Connection, Transaction};

use crate::store::Op;

/// A closed batch as stored.
#[derive(Clone, Debug)]
pub struct BatchRow {
    pub close_seq: u32,
    pub created_at: i64,
    pub body: String,
    pub file: Option<String>,
    pub posted_at: Option<i64>,
}

pub fn list(conn: &Connection) -> rusqlite::Result<Vec<BatchRow>> {
    let mut st = conn.prepare(
        "SELECT close_seq, created_at, body, file, posted_at FROM batches ORDER BY close_seq",
    )?;
    let rows = st.query_map([], |r| {
        Ok(BatchRow {
            close_seq: r.get(0)?,
            created_at: r.get(1)?,
            body: r.get(2)?,
            file: r.get(3)?,
            posted_at: r.get(4)?,
        })
    })?;
    rows.collect()
}

pub fn set_file(close_seq: u32, file: String) -> Op {
    Box::new(move |tx: &Transaction<'_>| {
        tx.execute(
            "UPDATE batches SET file = ?2 WHERE close_seq = ?1",
            params![close_seq, file],
        )?;
        Ok(())
    })
}

pub fn set_posted(close_seq: u32, at: i64) -> Op {
    Box::new(move |tx: &Transaction<'_>| {
        tx.execute(
            "UPDATE batches SET posted_at = ?2 WHERE close_seq = ?1 AND posted_at IS NULL",
            params![close_seq, at],
        )?;
        Ok(())
    })
}

/// `batch-<sam_id>-<close_seq>.json`.
pub fn file_name(b: &Batch) -> String {
    format!("batch-{}-{}.json", b.sam_id.to_hex(), b.close_seq.0)
}

/// The file's bytes: the batch as pretty JSON with a final newline. The same batch
/// always gives the same bytes, so a rewrite of a lost file is identical to the first.
pub fn file_bytes(b: &Batch) -> Result<Vec<u8>, serde_json::Error> {
    let mut v = serde_json::to_vec_pretty(b)?;
    v.push(b'\n');
    Ok(v)
}

//! The batches the engine closed (table `batches`, one row per SAM and close, written with
//! the close itself) and what `settle` did with each: the file it wrote, the clearing
//! office's decision (and when it came), the upload tries. Batch files are
//! `batch-<sam_id>-<close_seq>.json`, the batch of spec section 6 as
//! `purse::settlement::Batch` serializes it.

use purse::settlement::Batch;
use rusqlite::{params, Connection, Transaction};

use crate::store::Op;

/// A closed batch as stored.
#[derive(Clone, Debug)]
pub struct BatchRow {
    /// The SAM that closed it (hex).
    pub sam_id: String,
    pub close_seq: u32,
    pub created_at: i64,
    pub body: String,
    pub file: Option<String>,
    /// When the office's decision came (delivered); NULL while not delivered.
    pub posted_at: Option<i64>,
    /// `accepted` / `rejected`; NULL while not delivered (or delivered before decisions
    /// were recorded: `posted_at` set).
    pub decision: Option<String>,
    /// The office's answer (JSON) with the decision.
    pub answer: Option<String>,
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// Every batch, each SAM's in close_seq order.
pub fn list(conn: &Connection) -> rusqlite::Result<Vec<BatchRow>> {
    let mut st = conn.prepare(
        "SELECT sam_id, close_seq, created_at, body, file, posted_at, decision, answer, \
         attempts, last_error FROM batches ORDER BY sam_id, close_seq",
    )?;
    let rows = st.query_map([], |r| {
        Ok(BatchRow {
            sam_id: r.get(0)?,
            close_seq: r.get(1)?,
            created_at: r.get(2)?,
            body: r.get(3)?,
            file: r.get(4)?,
            posted_at: r.get(5)?,
            decision: r.get(6)?,
            answer: r.get(7)?,
            attempts: r.get(8)?,
            last_error: r.get(9)?,
        })
    })?;
    rows.collect()
}

/// Records the office's decision: the batch is delivered.
pub fn set_decision(
    sam_id: String,
    close_seq: u32,
    at: i64,
    decision: &'static str,
    answer: String,
) -> Op {
    Box::new(move |tx: &Transaction<'_>| {
        tx.execute(
            "UPDATE batches SET posted_at = ?2, decision = ?3, answer = ?4, \
             attempts = attempts + 1, last_error = NULL WHERE close_seq = ?1 AND sam_id = ?5",
            params![close_seq, at, decision, answer, sam_id],
        )?;
        Ok(())
    })
}

/// Records a try that brought no decision: the batch stays not delivered.
pub fn set_failed_try(sam_id: String, close_seq: u32, error: String) -> Op {
    Box::new(move |tx: &Transaction<'_>| {
        tx.execute(
            "UPDATE batches SET attempts = attempts + 1, last_error = ?2 \
             WHERE close_seq = ?1 AND sam_id = ?3 AND posted_at IS NULL",
            params![close_seq, error, sam_id],
        )?;
        Ok(())
    })
}

/// Replaces a rejected batch by its correction (same close_seq): the new body goes out
/// as not yet sent; the rejection, the excluded SAM_TxSeqs and the old body are kept.
pub fn correct(sam_id: String, close_seq: u32, at: i64, body: String, excluded: String) -> Op {
    Box::new(move |tx: &Transaction<'_>| {
        tx.execute(
            "INSERT INTO batch_corrections \
             (sam_id, close_seq, corrected_at, rejected, excluded, old_body) \
             SELECT sam_id, close_seq, ?2, COALESCE(answer, ''), ?3, body FROM batches \
             WHERE close_seq = ?1 AND sam_id = ?4 AND decision = 'rejected'",
            params![close_seq, at, excluded, sam_id],
        )?;
        tx.execute(
            "UPDATE batches SET body = ?2, file = NULL, posted_at = NULL, decision = NULL, \
             answer = NULL, attempts = 0, last_error = NULL \
             WHERE close_seq = ?1 AND sam_id = ?3 AND decision = 'rejected'",
            params![close_seq, body, sam_id],
        )?;
        Ok(())
    })
}

pub fn set_file(sam_id: String, close_seq: u32, file: String) -> Op {
    Box::new(move |tx: &Transaction<'_>| {
        tx.execute(
            "UPDATE batches SET file = ?2 WHERE close_seq = ?1 AND sam_id = ?3",
            params![close_seq, file, sam_id],
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

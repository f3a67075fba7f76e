//! Batches and their records: the idempotency lookup by (SAM_ID, close_seq), the rows of
//! an accepted batch (written inside the one transaction that accepts it), conflicts
//! with earlier batches through the (card_id, nt) primary key, and the decision rows.

use anyhow::Result;
use purse::settlement::{BatchTx, UnresolvedTx};
use purse::{CardId, CloseSeq, Nt, SamId};
use sqlx::{Any, Transaction};

use super::{id64, id_bytes, int, text, Backend, Db};

/// Records per multi-row INSERT (13 parameters a record), per backend: large enough
/// that a statement's round trip to the driver is spread over many records, within
/// SQLite's 32,766 and PostgreSQL's 65,535 parameters.
///
/// On SQLite the parameters are anonymous `?`: sqlx binds each parameter after asking
/// SQLite its name, which for `$N` is a linear scan of the statement's names, so the
/// cost of `$N` grows with the square of the parameters per statement (46 % of a
/// 1,000,000-record batch's time at 32 rows a statement, in `sqlite3_bind_parameter_name`).
fn rows_per_insert(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 512,
        Backend::Postgres => 2048,
    }
}

/// A decision already recorded for a (SAM_ID, close_seq).
#[derive(Clone, Debug)]
pub struct Recorded {
    pub id: i64,
    pub body_sha256: String,
    pub decision: String,
    /// The answer as it was sent, JSON.
    pub response: String,
}

/// The summary columns of a batch row.
#[derive(Clone, Debug)]
pub struct BatchRow {
    pub sam_id: SamId,
    pub close_seq: CloseSeq,
    pub body_sha256: String,
    pub decision: &'static str,
    pub merchant_id: String,
    pub currency: u16,
    pub tx_count: i64,
    pub gross: i64,
    pub problem_count: i64,
    pub received_at: i64,
    pub day: String,
}

/// A record of this upload whose (CardID, NT) an earlier batch holds.
#[derive(Clone, Copy, Debug)]
pub struct Conflict {
    pub card_id: CardId,
    pub nt: Nt,
    pub batch_id: i64,
    pub sam_id: SamId,
}

impl Db {
    /// The last accepted close_seq of a SAM, 0 for none.
    pub async fn last_close_seq(&self, sam: SamId) -> Result<CloseSeq> {
        let v: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(close_seq) FROM batches WHERE sam_id = $1 AND decision = 'accepted'",
        )
        .bind(id64(sam.0))
        .fetch_one(&self.pool)
        .await?;
        Ok(CloseSeq(u32::try_from(v.unwrap_or(0)).unwrap_or(u32::MAX)))
    }

    /// Every decision recorded for (sam, close_seq), the newest first.
    pub async fn recorded(&self, sam: SamId, close_seq: CloseSeq) -> Result<Vec<Recorded>> {
        let rows = sqlx::query(
            "SELECT id, body_sha256, decision, response FROM batches
             WHERE sam_id = $1 AND close_seq = $2 ORDER BY id DESC",
        )
        .bind(id64(sam.0))
        .bind(i64::from(close_seq.0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Recorded {
                    id: int(r, 0)?,
                    body_sha256: text(r, 1)?,
                    decision: text(r, 2)?,
                    response: text(r, 3)?,
                })
            })
            .collect()
    }

    pub async fn begin(&self) -> Result<Transaction<'static, Any>> {
        Ok(self.pool.begin().await?)
    }
}

/// Inserts a batch row (its response filled in by [`set_response`]) and returns its id.
pub async fn insert_batch(tx: &mut Transaction<'_, Any>, b: &BatchRow) -> Result<i64> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO batches (sam_id, close_seq, body_sha256, decision, merchant_id, currency,
             tx_count, gross, problem_count, received_at, day, response)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, '') RETURNING id",
    )
    .bind(id64(b.sam_id.0))
    .bind(i64::from(b.close_seq.0))
    .bind(&b.body_sha256)
    .bind(b.decision)
    .bind(&b.merchant_id)
    .bind(i64::from(b.currency))
    .bind(b.tx_count)
    .bind(b.gross)
    .bind(b.problem_count)
    .bind(b.received_at)
    .bind(&b.day)
    .fetch_one(&mut **tx)
    .await?;
    Ok(id)
}

/// Sets the final decision, totals and answer of a batch row.
pub async fn set_response(
    tx: &mut Transaction<'_, Any>,
    id: i64,
    b: &BatchRow,
    response: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE batches SET decision = $1, tx_count = $2, gross = $3, problem_count = $4,
             response = $5 WHERE id = $6",
    )
    .bind(b.decision)
    .bind(b.tx_count)
    .bind(b.gross)
    .bind(b.problem_count)
    .bind(response)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Inserts records `first_index..` of a batch; a (card_id, nt) already present is
/// skipped, so the count returned falls short exactly when some record conflicts.
pub async fn insert_records(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    batch_id: i64,
    sam: SamId,
    first_index: usize,
    records: &[BatchTx],
) -> Result<u64> {
    let mut inserted = 0;
    let per = rows_per_insert(backend);
    for (c, chunk) in records.chunks(per).enumerate() {
        let mut sql = String::with_capacity(64 + chunk.len() * 80);
        sql.push_str(
            "INSERT INTO transactions (card_id, nt, batch_id, sam_id, idx, kv, sam_tx_seq,
                 datetime, mode, unit_amount, units, total, balance_after) VALUES ",
        );
        placeholders(&mut sql, backend, chunk.len(), 13, 1);
        sql.push_str(" ON CONFLICT (card_id, nt) DO NOTHING");
        let mut q = sqlx::query(&sql);
        for (i, t) in chunk.iter().enumerate() {
            let idx = first_index + c * per + i;
            q = q
                .bind(id64(t.card_id.0))
                .bind(i64::from(t.nt.0))
                .bind(batch_id)
                .bind(id64(sam.0))
                .bind(idx as i64)
                .bind(i64::from(t.kv.0))
                .bind(i64::from(t.sam_tx_seq.0))
                .bind(i64::from(t.datetime.0))
                .bind(i64::from(t.mode))
                .bind(i64::from(t.unit_amount.0))
                .bind(i64::from(t.units.0))
                .bind(i64::from(t.total.0))
                .bind(i64::from(t.balance_after.0));
        }
        inserted += q.execute(&mut **tx).await?.rows_affected();
    }
    Ok(inserted)
}

/// The records whose (card_id, nt) a batch other than `batch_id` holds.
pub async fn conflicts(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    batch_id: i64,
    records: &[BatchTx],
) -> Result<Vec<Conflict>> {
    let mut out = Vec::new();
    for chunk in records.chunks(rows_per_insert(backend)) {
        let mut sql = String::from(
            "SELECT card_id, nt, batch_id, sam_id FROM transactions
             WHERE (card_id, nt) IN (VALUES ",
        );
        placeholders(&mut sql, backend, chunk.len(), 2, 1);
        sql.push_str(") AND batch_id <> ");
        placeholders(&mut sql, backend, 1, 1, chunk.len() * 2 + 1);
        let mut q = sqlx::query(&sql);
        for t in chunk {
            q = q.bind(id64(t.card_id.0)).bind(i64::from(t.nt.0));
        }
        q = q.bind(batch_id);
        for r in q.fetch_all(&mut **tx).await? {
            out.push(Conflict {
                card_id: CardId(id_bytes(int(&r, 0)?)),
                nt: Nt(u32::try_from(int(&r, 1)?).unwrap_or(0)),
                batch_id: int(&r, 2)?,
                sam_id: SamId(id_bytes(int(&r, 3)?)),
            });
        }
    }
    Ok(out)
}

/// Lists a batch's unresolved transactions; one already known keeps its first batch
/// and any decision recorded on it.
pub async fn note_unresolved(
    tx: &mut Transaction<'_, Any>,
    batch_id: i64,
    sam: SamId,
    list: &[UnresolvedTx],
) -> Result<()> {
    for u in list {
        sqlx::query(
            "INSERT INTO unresolved (sam_id, card_id, nt, kv, sam_tx_seq, unit_amount, first_batch_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (sam_id, sam_tx_seq) DO NOTHING",
        )
        .bind(id64(sam.0))
        .bind(id64(u.card_id.0))
        .bind(i64::from(u.nt.0))
        .bind(i64::from(u.kv.0))
        .bind(i64::from(u.sam_tx_seq.0))
        .bind(i64::from(u.unit_amount.0))
        .bind(batch_id)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// `(p, p, …), (…)` for `rows` rows of `cols` parameters numbered from `first`: `$N` on
/// PostgreSQL, anonymous `?` on SQLite (see [`rows_per_insert`]), bound in order.
fn placeholders(sql: &mut String, backend: Backend, rows: usize, cols: usize, first: usize) {
    use std::fmt::Write;
    let multi = rows > 1 || cols > 1;
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        if multi {
            sql.push('(');
        }
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    let _ = write!(sql, "${}", first + r * cols + c);
                }
            }
        }
        if multi {
            sql.push(')');
        }
    }
}

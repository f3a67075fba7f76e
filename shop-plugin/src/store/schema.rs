//! The database schema as numbered migrations, applied in order and recorded in
//! `PRAGMA user_version`. A migration never changes once released: add a new one.

use rusqlite::Connection;

use super::StoreError;

const MIGRATIONS: &[&str] = &[
    // 1: payments, the SAM's journal and counters, the webhook outbox, idempotency keys,
    // settlement batches.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE sam_tx (
        sam_tx_seq INTEGER PRIMARY KEY,
        card_id    TEXT NOT NULL,
        state      TEXT NOT NULL,
        settled_in INTEGER,
        data       TEXT NOT NULL
    ) STRICT;
    CREATE INDEX sam_tx_open ON sam_tx(settled_in, state);
    CREATE TABLE payments (
        id          TEXT PRIMARY KEY,
        status      TEXT NOT NULL,
        currency    INTEGER NOT NULL,
        amount      INTEGER NOT NULL,
        order_ref   TEXT,
        sam_tx_seq  INTEGER UNIQUE,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        data        TEXT NOT NULL
    ) STRICT;
    CREATE INDEX payments_created ON payments(created_at, id);
    CREATE INDEX payments_status ON payments(status, created_at);
    CREATE TABLE events (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        id              TEXT NOT NULL UNIQUE,
        payment_id      TEXT NOT NULL,
        type            TEXT NOT NULL,
        created_at      INTEGER NOT NULL,
        body            TEXT NOT NULL,
        notify_url      TEXT,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        delivered_at    INTEGER,
        last_error      TEXT
    ) STRICT;
    CREATE INDEX events_due ON events(delivered_at, next_attempt_at);
    CREATE TABLE idempotency (
        key        TEXT PRIMARY KEY,
        body_hash  TEXT NOT NULL,
        status     INTEGER NOT NULL,
        response   TEXT NOT NULL,
        created_at INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE batches (
        close_seq  INTEGER PRIMARY KEY,
        created_at INTEGER NOT NULL,
        body       TEXT NOT NULL,
        file       TEXT,
        posted_at  INTEGER
    ) STRICT;
    "#,
    // 2: webhook delivery: events kept as failed after their retries, the outbox's due
    // heads and each payment's undelivered events found by index (events of payments
    // without a notify URL are records only, never in these indexes).
    r#"
    ALTER TABLE events ADD COLUMN failed_at INTEGER;
    CREATE INDEX events_outbox ON events(next_attempt_at)
        WHERE delivered_at IS NULL AND failed_at IS NULL AND notify_url IS NOT NULL;
    CREATE INDEX events_undelivered ON events(payment_id, seq)
        WHERE delivered_at IS NULL AND notify_url IS NOT NULL;
    "#,
    // 3: the clearing office's decision per batch (`decision` accepted / rejected with its
    // answer, NULL while not delivered; `posted_at` is when the decision came), the
    // upload tries, and the rejections a correction replaced (audit).
    r#"
    ALTER TABLE batches ADD COLUMN decision TEXT;
    ALTER TABLE batches ADD COLUMN answer TEXT;
    ALTER TABLE batches ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE batches ADD COLUMN last_error TEXT;
    CREATE TABLE batch_corrections (
        close_seq    INTEGER NOT NULL,
        corrected_at INTEGER NOT NULL,
        rejected     TEXT NOT NULL,
        excluded     TEXT NOT NULL,
        old_body     TEXT NOT NULL
    ) STRICT;
    "#,
    // 4: the last good hotlist of the clearing office (one row): its cards, as verified
    // when fetched, and the document as served (audit).
    r#"
    CREATE TABLE hotlist (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        issued_at  INTEGER NOT NULL,
        cards      TEXT NOT NULL,
        body       TEXT NOT NULL,
        fetched_at INTEGER NOT NULL
    ) STRICT;
    "#,
    // 5: SAM-card mode (the SAM applet in its own reader): each payment's sealed SAM
    // context (the begin context, then the transaction's) and what the card told about
    // it, and each record the SAM counted with its completion tag, for the close.
    r#"
    CREATE TABLE sam_payment (
        payment_id    TEXT PRIMARY KEY,
        sam_id        TEXT NOT NULL,
        sam_tx_seq    INTEGER,
        card_id       TEXT,
        nt            INTEGER,
        kv            INTEGER,
        authorized_at INTEGER,
        ctx           BLOB NOT NULL,
        open          INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    CREATE INDEX sam_payment_open ON sam_payment(card_id) WHERE open = 1;
    CREATE TABLE sam_record (
        sam_id     TEXT NOT NULL,
        sam_tx_seq INTEGER NOT NULL,
        period     INTEGER NOT NULL,
        rec        BLOB NOT NULL,
        tag        BLOB NOT NULL,
        payment_id TEXT NOT NULL,
        PRIMARY KEY (sam_id, sam_tx_seq)
    ) STRICT;
    CREATE INDEX sam_record_period ON sam_record(sam_id, period, sam_tx_seq);
    "#,
    // 6: several SAMs (a pool): each SAM closes its own periods, so a batch is known by
    // its SAM and close_seq (older rows take the SAM their body names), and SAM_TxSeq is
    // unique per SAM only (`sam_payment` and `sam_record` hold it with the SAM); the
    // legacy in-memory SAM's table goes.
    r#"
    CREATE TABLE payments_by_sam (
        id          TEXT PRIMARY KEY,
        status      TEXT NOT NULL,
        currency    INTEGER NOT NULL,
        amount      INTEGER NOT NULL,
        order_ref   TEXT,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        data        TEXT NOT NULL
    ) STRICT;
    INSERT INTO payments_by_sam (id, status, currency, amount, order_ref, created_at,
                                 updated_at, data)
        SELECT id, status, currency, amount, order_ref, created_at, updated_at, data
        FROM payments;
    DROP TABLE payments;
    ALTER TABLE payments_by_sam RENAME TO payments;
    CREATE INDEX payments_created ON payments(created_at, id);
    CREATE INDEX payments_status ON payments(status, created_at);
    CREATE TABLE batches_by_sam (
        sam_id     TEXT NOT NULL,
        close_seq  INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        body       TEXT NOT NULL,
        file       TEXT,
        posted_at  INTEGER,
        decision   TEXT,
        answer     TEXT,
        attempts   INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        PRIMARY KEY (sam_id, close_seq)
    ) STRICT;
    INSERT INTO batches_by_sam (sam_id, close_seq, created_at, body, file, posted_at,
                                decision, answer, attempts, last_error)
        SELECT json_extract(body, '$.sam_id'), close_seq, created_at, body, file, posted_at,
               decision, answer, attempts, last_error FROM batches;
    DROP TABLE batches;
    ALTER TABLE batches_by_sam RENAME TO batches;
    ALTER TABLE batch_corrections ADD COLUMN sam_id TEXT;
    UPDATE batch_corrections SET sam_id = json_extract(old_body, '$.sam_id');
    DROP TABLE sam_tx;
    DELETE FROM meta WHERE key IN ('next_tx_seq', 'last_close_seq');
    "#,
];

/// Brings the database to the newest schema, each migration in its own transaction.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = MIGRATIONS.len() as u32;
    if found > known {
        return Err(StoreError::TooNew { found, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let version = i as u32 + 1;
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .and_then(|()| tx.pragma_update(None, "user_version", version))
            .map_err(|source| StoreError::Migration { version, source })?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database of migration 5 (one SAM) keeps its batches and payments through 6:
    /// each batch takes the SAM its body names.
    #[test]
    fn migration_6_keys_batches_by_their_sam() {
        let mut conn = Connection::open_in_memory().expect("db");
        for sql in &MIGRATIONS[..5] {
            conn.execute_batch(sql).expect("old migration");
        }
        conn.pragma_update(None, "user_version", 5)
            .expect("version");
        conn.execute_batch(
            r#"INSERT INTO batches (close_seq, created_at, body, decision)
                 VALUES (1, 10, '{"sam_id":"5a00000000000007","close_seq":1}', 'accepted');
               INSERT INTO batch_corrections (close_seq, corrected_at, rejected, excluded, old_body)
                 VALUES (1, 11, '{}', '[2]', '{"sam_id":"5a00000000000007"}');
               INSERT INTO payments (id, status, currency, amount, sam_tx_seq, created_at,
                                     updated_at, data)
                 VALUES ('pay_1', 'succeeded', 978, 100, 1, 10, 10, '{}');"#,
        )
        .expect("old rows");
        migrate(&mut conn).expect("migrate");
        let batch: (String, u32, String) = conn
            .query_row("SELECT sam_id, close_seq, decision FROM batches", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .expect("batch");
        assert_eq!(batch, ("5a00000000000007".into(), 1, "accepted".into()));
        let corrected: String = conn
            .query_row("SELECT sam_id FROM batch_corrections", [], |r| r.get(0))
            .expect("correction");
        assert_eq!(corrected, "5a00000000000007");
        let payment: String = conn
            .query_row("SELECT status FROM payments WHERE id = 'pay_1'", [], |r| {
                r.get(0)
            })
            .expect("payment");
        assert_eq!(payment, "succeeded");
        // Two SAMs' batches of the same close_seq now fit.
        conn.execute(
            "INSERT INTO batches (sam_id, close_seq, created_at, body) VALUES ('5a00000000000008', 1, 12, '{}')",
            [],
        )
        .expect("a second SAM's batch 1");
    }
}

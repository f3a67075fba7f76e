//! Numbered migrations, run in order at start, each in its own transaction and recorded
//! in `schema_migrations`. The SQL is the same for SQLite and PostgreSQL but for `{ID}`,
//! an auto-numbered primary key.

use anyhow::{Context, Result};
use sqlx::Acquire;

use super::{now, Backend, Db};

/// (number, statements). Never edit a released migration: add the next one.
const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    "CREATE TABLE merchants (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE sams (
        sam_id BIGINT PRIMARY KEY,
        merchant_id TEXT NOT NULL REFERENCES merchants (id),
        currency BIGINT NOT NULL,
        key_version BIGINT NOT NULL,
        card_key_versions TEXT NOT NULL,
        credential_sha256 TEXT NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE batches (
        id {ID},
        sam_id BIGINT NOT NULL,
        close_seq BIGINT NOT NULL,
        body_sha256 TEXT NOT NULL,
        decision TEXT NOT NULL,
        merchant_id TEXT,
        currency BIGINT NOT NULL,
        tx_count BIGINT NOT NULL,
        gross BIGINT NOT NULL,
        problem_count BIGINT NOT NULL,
        received_at BIGINT NOT NULL,
        day TEXT NOT NULL,
        response TEXT NOT NULL
    );
    CREATE UNIQUE INDEX batches_accepted ON batches (sam_id, close_seq) WHERE decision = 'accepted';
    CREATE INDEX batches_by_sam ON batches (sam_id, close_seq);
    CREATE INDEX batches_by_day ON batches (day, merchant_id);
    CREATE TABLE transactions (
        card_id BIGINT NOT NULL,
        nt BIGINT NOT NULL,
        batch_id BIGINT NOT NULL,
        sam_id BIGINT NOT NULL,
        idx BIGINT NOT NULL,
        kv BIGINT NOT NULL,
        sam_tx_seq BIGINT NOT NULL,
        datetime BIGINT NOT NULL,
        mode BIGINT NOT NULL,
        unit_amount BIGINT NOT NULL,
        units BIGINT NOT NULL,
        total BIGINT NOT NULL,
        balance_after BIGINT NOT NULL,
        PRIMARY KEY (card_id, nt)
    );
    CREATE INDEX transactions_by_batch ON transactions (batch_id, idx);
    CREATE TABLE unresolved (
        sam_id BIGINT NOT NULL,
        card_id BIGINT NOT NULL,
        nt BIGINT NOT NULL,
        kv BIGINT NOT NULL,
        sam_tx_seq BIGINT NOT NULL,
        unit_amount BIGINT NOT NULL,
        first_batch_id BIGINT NOT NULL,
        decision TEXT,
        decided_at BIGINT,
        PRIMARY KEY (sam_id, sam_tx_seq)
    );
    CREATE TABLE card_flags (
        id {ID},
        card_id BIGINT NOT NULL,
        reason TEXT NOT NULL,
        detail TEXT NOT NULL,
        batch_id BIGINT NOT NULL,
        flagged_at BIGINT NOT NULL
    );
    CREATE INDEX card_flags_by_card ON card_flags (card_id);",
)];

pub async fn migrate(db: &Db) -> Result<()> {
    let _w = db.write_lock().await;
    let mut conn = db.pool.acquire().await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *conn)
    .await
    .context("creating schema_migrations")?;
    let id = match db.backend {
        Backend::Sqlite => "INTEGER PRIMARY KEY",
        Backend::Postgres => "BIGSERIAL PRIMARY KEY",
    };
    for (version, sql) in MIGRATIONS {
        let mut tx = conn.begin().await?;
        let done: Option<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(*version)
                .fetch_optional(&mut *tx)
                .await?;
        if done.is_some() {
            continue;
        }
        for stmt in sql.replace("{ID}", id).split(';') {
            if !stmt.trim().is_empty() {
                sqlx::query(stmt)
                    .execute(&mut *tx)
                    .await
                    .with_context(|| format!("migration {version}"))?;
            }
        }
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(*version)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}

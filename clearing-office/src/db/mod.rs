//! The database, SQLite or PostgreSQL through one code path (sqlx's `Any` driver): the
//! same SQL for both (`$1` parameters, `BIGINT` and `TEXT` columns), only the DDL of an
//! auto-numbered key differs ([`schema`]). Numbered migrations run at start.
//!
//! Writes are serialised by [`Db::write_lock`]: SQLite has one writer anyway, and one
//! batch at a time keeps a batch's checks against the unique index deterministic; the
//! unique indexes are still the final word if two offices share a PostgreSQL database.

pub mod batches;
pub mod registry;
pub mod reports;
mod schema;
pub mod unresolved;

use std::time::Duration;

use anyhow::{Context, Result};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};
use tokio::sync::{Mutex, MutexGuard};

/// Which database the URL named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
    writer: Mutex<()>,
}

/// The error of a database call, with what was being done.
pub type DbResult<T> = Result<T>;

impl Db {
    /// Connects (creating a SQLite file when absent) and runs the migrations.
    pub async fn open(url: &str) -> Result<Db> {
        sqlx::any::install_default_drivers();
        let (backend, url) = match url.strip_prefix("sqlite:") {
            Some(path) => (Backend::Sqlite, format!("sqlite://{path}?mode=rwc")),
            None => (Backend::Postgres, url.to_string()),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 4 } else { 8 })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL: readers never wait for the writer; FULL: a commit is on
                        // disk before it returns (a batch's decision is acknowledged
                        // only then).
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA busy_timeout = 30000").await?;
                    } else {
                        // No JIT: the office's statements are index lookups, and as the
                        // history grew their cost estimates crossed the JIT thresholds, so
                        // each batch's shadow-balance query was compiled first (150 ms of
                        // the 100th batch of 10,000's 380 ms, none of the 1st's).
                        conn.execute("SET jit = off").await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .context("connecting to the database")?;
        let db = Db {
            pool,
            backend,
            writer: Mutex::new(()),
        };
        schema::migrate(&db).await?;
        Ok(db)
    }

    /// Held for every write transaction.
    pub async fn write_lock(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().await
    }

    /// SQLite's journal mode and synchronous level (for the tests: WAL, FULL = 2).
    pub async fn sqlite_settings(&self) -> Result<(String, i64)> {
        let mut conn = self.pool.acquire().await?;
        let mode: String = sqlx::query("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
        let sync: i64 = sqlx::query("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await?
            .try_get(0)?;
        Ok((mode, sync))
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// An 8-byte identifier (CardID, SAM_ID) as the signed 64-bit integer the tables hold:
/// compact, and indexed as one machine word on both databases.
pub fn id64(b: [u8; 8]) -> i64 {
    i64::from_be_bytes(b)
}

pub fn id_bytes(v: i64) -> [u8; 8] {
    v.to_be_bytes()
}

/// Column `i` of a row as i64 (NULL as 0).
pub fn int(row: &AnyRow, i: usize) -> Result<i64> {
    Ok(row.try_get::<Option<i64>, _>(i)?.unwrap_or(0))
}

pub fn text(row: &AnyRow, i: usize) -> Result<String> {
    Ok(row.try_get::<Option<String>, _>(i)?.unwrap_or_default())
}

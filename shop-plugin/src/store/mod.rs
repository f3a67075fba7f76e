//! The plugin's one SQLite database: opening it (WAL, synchronous=FULL), its versioned
//! migrations, a writer thread that group-commits the writes of many requests in one
//! transaction (one fsync for all of them), a thread that checkpoints the WAL beside it,
//! and a small pool of read connections.
//!
//! A write is a list of [`Op`]s; each request's ops run in a savepoint of the shared
//! transaction, so one failing request never takes another's writes with it. `commit`
//! returns only after the transaction is durable.

mod schema;

pub mod rows;
pub mod sam_rows;

use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, Transaction};
use thiserror::Error;
use tokio::sync::oneshot;

/// One write, applied inside the group transaction.
pub type Op = Box<dyn FnOnce(&Transaction<'_>) -> rusqlite::Result<()> + Send>;

/// How many requests' writes at most share one transaction.
const MAX_GROUP: usize = 512;
/// Read connections kept open.
const READERS: usize = 4;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("the database writer has stopped")]
    WriterGone,
    #[error("database migration {version} failed: {source}")]
    Migration {
        version: u32,
        source: rusqlite::Error,
    },
    #[error("the database is of a newer schema ({found}) than this build knows ({known})")]
    TooNew { found: u32, known: u32 },
}

struct Job {
    ops: Vec<Op>,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// A submitted write; `wait` returns once it is durable (or failed).
pub struct Committed(oneshot::Receiver<Result<(), StoreError>>);

impl Committed {
    pub async fn wait(self) -> Result<(), StoreError> {
        self.0.await.map_err(|_| StoreError::WriterGone)?
    }
}

/// The database, shared by the whole service.
#[derive(Clone)]
pub struct Store {
    writer: mpsc::Sender<Job>,
    readers: Arc<Mutex<Vec<Connection>>>,
    path: Arc<PathBuf>,
}

fn open_conn(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    // Durable before acknowledged: WAL with a full fsync at every commit.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // The savepoint of each request in a group commit copies the pages it touches to a
    // statement journal; in a temporary file that was a third of the writer's work.
    // It only serves rollback to the savepoint, never recovery: memory will do.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // Every statement of the hot path stays prepared (rows.rs caches them).
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl Store {
    /// Opens (creating and migrating) the database and starts its writer thread.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let mut conn = open_conn(path)?;
        schema::migrate(&mut conn)?;
        // Checkpoints run on their own thread and connection, not inside the writer's
        // commits (they were a fifth of the one serial stage's work).
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpoints = open_conn(path)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let (wrote, written) = mpsc::sync_channel::<()>(1);
        let spawn_err = |e: std::io::Error| {
            StoreError::Sql(rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
        };
        thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || writer_loop(conn, rx, wrote))
            .map_err(spawn_err)?;
        thread::Builder::new()
            .name("db-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpoints, written))
            .map_err(spawn_err)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            readers.push(open_conn(path)?);
        }
        Ok(Store {
            writer: tx,
            readers: Arc::new(Mutex::new(readers)),
            path: Arc::new(path.to_path_buf()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues `ops` for the next group commit and returns what to await. Writes are
    /// applied in the order they were submitted: callers that must keep an order (the
    /// SAM's records) submit while they hold the lock that orders them.
    pub fn submit(&self, ops: Vec<Op>) -> Result<Committed, StoreError> {
        let (done, wait) = oneshot::channel();
        self.writer
            .send(Job { ops, done })
            .map_err(|_| StoreError::WriterGone)?;
        Ok(Committed(wait))
    }

    /// Applies `ops` atomically and durably; returns once they are on disk.
    pub async fn commit(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.submit(ops)?.wait().await
    }

    /// Runs a read on a pooled connection, off the async threads.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.lookup(f))
            .await
            .map_err(|_| StoreError::WriterGone)?
    }

    /// Runs a short read (a lookup by key) on a pooled connection, on the calling thread:
    /// for a few microseconds of work, handing it to another thread and back costs more
    /// than the read. Scans and listings use [`Store::read`].
    pub fn lookup<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let conn = self.readers.lock().ok().and_then(|mut p| p.pop());
        let conn = match conn {
            Some(c) => c,
            None => open_conn(&self.path)?,
        };
        let r = f(&conn).map_err(StoreError::from);
        if let Ok(mut p) = self.readers.lock() {
            p.push(conn);
        }
        r
    }

    /// A read on a fresh connection, for synchronous start-up code.
    pub fn read_now<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let conn = open_conn(&self.path)?;
        Ok(f(&conn)?)
    }
}

/// The least time between two checkpoints while writes go on: about as many pages as
/// SQLite's automatic checkpoint would copy at thousands of payments a second.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

/// Copies the WAL into the database (PASSIVE: never blocks the writer or readers) after
/// commits, at most once per [`CHECKPOINT_EVERY`]. Ends with the writer.
fn checkpoint_loop(conn: Connection, written: mpsc::Receiver<()>) {
    while written.recv().is_ok() {
        let started = Instant::now();
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!("checkpointing the database: {e}");
        }
        thread::sleep(CHECKPOINT_EVERY.saturating_sub(started.elapsed()));
    }
}

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Job>, wrote: mpsc::SyncSender<()>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let results = apply_group(&mut conn, &mut jobs);
        for (job, r) in jobs.into_iter().zip(results) {
            let _ = job.done.send(r);
        }
        // Wakes the checkpointer unless it has a wake-up pending already.
        let _ = wrote.try_send(());
    }
}

/// Runs every job in its own savepoint of one transaction, then commits once.
fn apply_group(conn: &mut Connection, jobs: &mut [Job]) -> Vec<Result<(), StoreError>> {
    let tx = match conn.transaction() {
        Ok(t) => t,
        Err(e) => {
            return jobs
                .iter()
                .map(|_| Err(StoreError::Sql(clone_err(&e))))
                .collect()
        }
    };
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs.iter_mut() {
        let ops = std::mem::take(&mut job.ops);
        results.push(run_job(&tx, ops));
    }
    if let Err(e) = tx.commit() {
        return results
            .iter()
            .map(|_| Err(StoreError::Sql(clone_err(&e))))
            .collect();
    }
    results
}

fn run_job(tx: &Transaction<'_>, ops: Vec<Op>) -> Result<(), StoreError> {
    // Cached statements: these run once per request.
    tx.prepare_cached("SAVEPOINT job")?.execute([])?;
    for op in ops {
        if let Err(e) = op(tx) {
            tx.execute_batch("ROLLBACK TO job; RELEASE job")?;
            return Err(e.into());
        }
    }
    tx.prepare_cached("RELEASE job")?.execute([])?;
    Ok(())
}

fn clone_err(e: &rusqlite::Error) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(e.to_string().into())
}

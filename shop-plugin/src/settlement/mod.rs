//! Daily settlement (`shop-plugin settle`): close the open period of every SAM into its
//! batch, write the batch files atomically to the outbox directory, and upload them to
//! the clearing office when one is configured, recording the office's decision per batch.
//!
//! The rule that makes re-running safe: a period is a UTC day. A run closes a period
//! only when no batch was closed yet on the current UTC day (or with `force`); every run
//! then writes the file of any batch whose file is missing, and posts every batch not
//! yet posted, in close_seq order. The close itself is one transaction (batch row, new
//! close_seq, SAM records), so a crash leaves either no close or a whole one, whose file
//! and upload the next run completes. A day without a run is not skipped: the next close
//! takes everything completed since the last one (close_seq has no gaps).
//!
//! Each SAM's uploads go in close_seq order and stop at the first batch without an
//! acceptance (another SAM's go on): the office takes a SAM's close_seq n + 1 only after n, and a rejected close_seq must be corrected
//! (see [`Settler::correct`]) before anything after it can be accepted. A try that brings
//! no decision is tried again within the run (bounded, the delay doubling) and on every
//! later run.

pub mod batches;
mod correct;
pub mod office;
mod upload;

use std::path::{Path, PathBuf};

use purse::settlement::{rfc3339, Batch};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::engine::{ApiError, Engine};
use crate::files::{write_atomic, FileError};
use crate::outbound::Outbound;
use crate::store::StoreError;
use batches::BatchRow;
use office::OfficeLink;

pub use correct::{Corrected, Correction};

/// Batch files hold no secret but card IDs: not for every user of the machine.
const FILE_MODE: u32 = 0o640;

#[derive(Debug, Error)]
pub enum SettleError {
    #[error("closing the period: {0}")]
    Close(ApiError),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error(
        "writing a batch file: {0} (the batch is safe in the database: the next run writes it)"
    )]
    File(#[from] FileError),
    #[error("outbox directory {path}: {source}")]
    Outbox {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("stored batch {close_seq} of SAM {sam_id} is not a valid batch: {message}")]
    Corrupt {
        sam_id: String,
        close_seq: u32,
        message: String,
    },
    #[error("batch {close_seq} cannot be corrected: {why}")]
    NotCorrectable { close_seq: u32, why: String },
}

/// Where batches go.
#[derive(Clone)]
pub struct Settler {
    pub outbox: PathBuf,
    pub office: Option<OfficeLink>,
    pub client: Outbound,
    /// Policy: correct a rejection that names only records, then upload again.
    pub auto_correct: bool,
}

/// A batch: the SAM that closed it and its close_seq.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchId {
    pub sam_id: String,
    pub close_seq: u32,
}

impl std::fmt::Display for BatchId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} of SAM {}", self.close_seq, self.sam_id)
    }
}

/// A batch a run closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closed {
    pub sam_id: String,
    pub close_seq: u32,
    pub count: u32,
    pub sum: u64,
    pub unresolved: usize,
    pub file: String,
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The batches closed by this run, one per SAM.
    pub closed: Vec<Closed>,
    /// Why no period was closed.
    pub not_closed: Option<String>,
    /// Files of earlier batches that were missing and are written again.
    pub rewritten: Vec<String>,
    /// Batches the clearing office accepted in this run.
    pub posted: Vec<BatchId>,
    /// Batches the clearing office rejected (in this run, or earlier and not corrected).
    pub rejected: Vec<Rejected>,
    /// Batches corrected in this run (closed again without the refused records).
    pub corrected: Vec<Corrected>,
    /// Why an upload stopped (the batch and every later one of its SAM wait for the
    /// next run).
    pub post_error: Option<String>,
}

/// A rejected batch and the office's problems, one line each.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    pub sam_id: String,
    pub close_seq: u32,
    pub why: Vec<String>,
}

impl Report {
    /// Whether every batch is accepted (nothing rejected, no upload failed).
    pub fn all_delivered(&self) -> bool {
        self.post_error.is_none() && self.rejected.is_empty()
    }

    /// The report for the operator, one line each.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.closed {
            out.push(format!(
                "closed period {} of SAM {}: {} transaction(s), sum {} (minor units), {} \
                 unresolved -> {}",
                c.close_seq, c.sam_id, c.count, c.sum, c.unresolved, c.file
            ));
        }
        if let Some(why) = &self.not_closed {
            out.push(format!("no period closed: {why}"));
        }
        for f in &self.rewritten {
            out.push(format!("wrote missing batch file {f}"));
        }
        out.extend(self.corrected.iter().map(Corrected::line));
        for s in &self.posted {
            out.push(format!("the clearing office accepted batch {s}"));
        }
        for r in &self.rejected {
            out.push(format!(
                "the clearing office rejected batch {} of SAM {} (`shop-plugin batches correct \
                 {} --sam {}` leaves the refused records out):",
                r.close_seq, r.sam_id, r.close_seq, r.sam_id
            ));
            out.extend(r.why.iter().map(|w| format!("  {w}")));
        }
        if let Some(e) = &self.post_error {
            out.push(format!(
                "upload to the clearing office failed: {e} (retried on the next run)"
            ));
        }
        out
    }
}

fn utc_day(t: i64) -> i64 {
    t.div_euclid(86_400)
}

/// The office's stored decision on a batch.
fn stored_decision(row: &BatchRow) -> Option<office::Decision> {
    row.answer
        .as_deref()
        .and_then(|a| serde_json::from_str(a).ok())
}

/// A stored batch and the bytes of its file.
fn load(row: &BatchRow) -> Result<(Batch, Vec<u8>), SettleError> {
    let corrupt = |e: serde_json::Error| SettleError::Corrupt {
        sam_id: row.sam_id.clone(),
        close_seq: row.close_seq,
        message: e.to_string(),
    };
    let batch: Batch = serde_json::from_str(&row.body).map_err(corrupt)?;
    let bytes = batches::file_bytes(&batch).map_err(corrupt)?;
    Ok((batch, bytes))
}

impl Settler {
    /// One settlement run (see the module's rule). The caller owns the engine's SAM:
    /// this is `settle` in-process, or the running server on its admin socket.
    pub async fn run(&self, engine: &Engine, force: bool) -> Result<Report, SettleError> {
        if let Some(source) = engine.hotlist_source() {
            // A failed fetch keeps the last good list; settlement goes on.
            match source.refresh(engine).await {
                Ok(n) => tracing::info!("hotlist taken: {n} card(s)"),
                Err(e) => tracing::warn!("{e}"),
            }
        }
        let store = engine.store().clone();
        let mut rows = store.read(batches::list).await?;
        let now = engine.now();
        let mut report = Report::default();
        match rows.iter().max_by_key(|r| r.created_at) {
            Some(last) if !force && utc_day(last.created_at) >= utc_day(now) => {
                report.not_closed = Some(format!(
                    "period {} of SAM {} was closed at {}, and one period closes per UTC day \
                     (--force closes another)",
                    last.close_seq,
                    last.sam_id,
                    rfc3339(u64::try_from(last.created_at).unwrap_or(0))
                ));
            }
            _ => {
                for batch in engine.close_period().await.map_err(SettleError::Close)? {
                    report.closed.push(Closed {
                        sam_id: batch.sam_id.to_hex(),
                        close_seq: batch.close_seq.0,
                        count: batch.totals.count,
                        sum: batch.totals.sum.0,
                        unresolved: batch.unresolved.len(),
                        file: self
                            .outbox
                            .join(batches::file_name(&batch))
                            .display()
                            .to_string(),
                    });
                }
                rows = store.read(batches::list).await?;
            }
        }
        std::fs::create_dir_all(&self.outbox).map_err(|source| SettleError::Outbox {
            path: self.outbox.clone(),
            source,
        })?;
        for row in &rows {
            let (batch, bytes) = load(row)?;
            let path = self.outbox.join(batches::file_name(&batch));
            let just_closed = report
                .closed
                .iter()
                .any(|c| c.sam_id == row.sam_id && c.close_seq == row.close_seq);
            if self.ensure_file(&store, row, &bytes, &path).await? && !just_closed {
                report.rewritten.push(path.display().to_string());
            }
        }
        if let Some(link) = &self.office {
            let mut sams: Vec<String> = rows.iter().map(|r| r.sam_id.clone()).collect();
            sams.dedup();
            for sam in sams {
                self.upload(engine, link, &sam, &mut report).await?;
            }
        }
        Ok(report)
    }

    /// Writes the batch's file when it is missing or not what the database holds, and
    /// records its path. Returns whether it wrote.
    async fn ensure_file(
        &self,
        store: &crate::store::Store,
        row: &BatchRow,
        bytes: &[u8],
        path: &Path,
    ) -> Result<bool, SettleError> {
        let written = match std::fs::read(path) {
            Ok(existing) if existing == *bytes => false,
            Ok(_) => {
                tracing::warn!(
                    "{} differs from batch {} in the database: writing it again",
                    path.display(),
                    row.close_seq
                );
                write_atomic(path, bytes, FILE_MODE)?;
                true
            }
            Err(_) => {
                write_atomic(path, bytes, FILE_MODE)?;
                true
            }
        };
        let shown = path.display().to_string();
        if row.file.as_deref() != Some(shown.as_str()) {
            store
                .commit(vec![batches::set_file(
                    row.sam_id.clone(),
                    row.close_seq,
                    shown,
                )])
                .await?;
        }
        Ok(written)
    }
}

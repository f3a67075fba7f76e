//! An upload spooled to a temporary file while it arrives: its SHA-256 computed on the
//! way, its size held to the limit, each frame within the idle timeout. The file is
//! removed when the [`Spooled`] drops (and left-overs of a killed office at start).

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::Body;
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;
use tokio::io::AsyncWriteExt;

/// A client that stops sending its upload for this long is cut off.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
const PREFIX: &str = "clearing-upload-";

pub struct Spooled {
    file: NamedTempFile,
    pub sha256: String,
    pub len: u64,
}

impl Spooled {
    pub fn path(&self) -> &Path {
        self.file.path()
    }
}

#[derive(Debug)]
pub enum SpoolError {
    TooLarge(u64),
    TimedOut,
    /// The client's connection failed mid-body.
    Client(String),
    Io(std::io::Error),
}

/// Writes the body to a new file in `dir`.
pub async fn spool(dir: &Path, body: Body, limit: u64) -> Result<Spooled, SpoolError> {
    let file = tempfile::Builder::new()
        .prefix(PREFIX)
        .tempfile_in(dir)
        .map_err(SpoolError::Io)?;
    let std_file = file.reopen().map_err(SpoolError::Io)?;
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(std_file));
    let mut hasher = Sha256::new();
    let mut len = 0u64;
    let mut body = body;
    loop {
        let frame = match tokio::time::timeout(IDLE_TIMEOUT, body.frame()).await {
            Err(_) => return Err(SpoolError::TimedOut),
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(SpoolError::Client(e.to_string())),
            Ok(Some(Ok(f))) => f,
        };
        if let Ok(data) = frame.into_data() {
            len += data.len() as u64;
            if len > limit {
                return Err(SpoolError::TooLarge(limit));
            }
            hasher.update(&data);
            out.write_all(&data).await.map_err(SpoolError::Io)?;
        }
    }
    out.flush().await.map_err(SpoolError::Io)?;
    Ok(Spooled {
        file,
        sha256: hex::encode(hasher.finalize()),
        len,
    })
}

/// Removes the spool files a killed office left behind.
pub fn clean(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(PREFIX) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The spool directory: the configured one or the system's temporary directory.
pub fn dir(configured: Option<&Path>) -> PathBuf {
    configured.map_or_else(std::env::temp_dir, Path::to_path_buf)
}

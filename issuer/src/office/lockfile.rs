//! Serializing read-modify-write cycles on one file, and creating private files that
//! must not silently replace an existing one.
//!
//! Files are replaced by rename ([`crate::files::write_atomic`]), so a lock on the file
//! itself would be lost with its inode: the lock is on a sibling `.NAME.lock` that is
//! never renamed. Without it, two runs at once would both read the old file and the
//! second rename would drop the first's change (a key version, a load, an accepted batch).

use std::fs;
use std::io;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::files::lock::sibling_lock_path;
use crate::files::{write_atomic, FileLock};

/// Waits for and takes the lock of `path` (the file itself need not exist).
pub fn lock(path: &Path) -> Result<FileLock> {
    let lp =
        sibling_lock_path(path).with_context(|| format!("{} has no file name", path.display()))?;
    FileLock::exclusive(&lp).with_context(|| format!("locking {}", lp.display()))
}

/// Whether anything (a file, a directory, a dangling symlink) is at `path`.
pub fn exists(path: &Path) -> Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("checking {}", path.display())),
    }
}

/// Writes a new 0600 file; an existing one is replaced only with `force`.
pub fn create_private(path: &Path, bytes: &[u8], force: bool) -> Result<()> {
    let _lock = lock(path)?;
    if !force && exists(path)? {
        bail!(
            "{} already exists; refusing to replace it (use --force to overwrite)",
            path.display()
        );
    }
    Ok(write_atomic(path, bytes, 0o600)?)
}

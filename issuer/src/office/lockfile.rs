//! Serializing read-modify-write cycles on one file, and creating private files that
//! must not silently replace an existing one.
//!
//! Files are replaced by rename ([`crate::files::write_atomic`]), so a lock on the file
//! itself would be lost with its inode: the lock is on a sibling `.NAME.lock` that is
//! never renamed. Without it, two runs at once would both read the old file and the
//! second rename would drop the first's change (a key version, a load, an accepted batch).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::files::write_atomic;

/// An exclusive advisory lock, released when dropped (the descriptor closes).
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

fn lock_path(path: &Path) -> Result<PathBuf> {
    let name = path
        .file_name()
        .with_context(|| format!("{} has no file name", path.display()))?;
    Ok(path.with_file_name(format!(".{}.lock", name.to_string_lossy())))
}

/// Waits for and takes the lock of `path` (the file itself need not exist).
pub fn lock(path: &Path) -> Result<Lock> {
    let lp = lock_path(path)?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&lp)
        .with_context(|| format!("opening lock file {}", lp.display()))?;
    // SAFETY: flock only reads the descriptor, which `file` keeps open for the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    if rc != 0 {
        return Err(io::Error::last_os_error())
            .with_context(|| format!("locking {}", lp.display()));
    }
    Ok(Lock { _file: file })
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

//! Advisory file locks (`flock`), the one implementation every binary uses: a lock on a
//! file that is never renamed (a sibling `.NAME.lock` of a file replaced by
//! [`crate::write_atomic`], or a lock file of its own), released when the handle drops or
//! the process ends, however it ends.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// An exclusive advisory lock; released when dropped (the descriptor closes).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}

fn flock(file: &File, op: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: flock only reads the descriptor, which `file` keeps open for the call.
        if unsafe { libc::flock(file.as_raw_fd(), op) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

impl FileLock {
    /// Waits for and takes the lock on `path` (created 0600 if missing).
    pub fn exclusive(path: &Path) -> io::Result<FileLock> {
        let file = open(path)?;
        flock(&file, libc::LOCK_EX)?;
        Ok(FileLock { _file: file })
    }

    /// Takes the lock on `path` if it is free; `None` while another holder has it.
    pub fn try_exclusive(path: &Path) -> io::Result<Option<FileLock>> {
        let file = open(path)?;
        match flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
            Ok(()) => Ok(Some(FileLock { _file: file })),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The lock file that guards `path` when `path` itself is replaced by rename: the
/// sibling `.NAME.lock` (a lock on the file itself would be lost with its inode).
pub fn sibling_lock_path(path: &Path) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    Ok(path.with_file_name(format!(".{}.lock", name.to_string_lossy())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_is_exclusive_until_dropped() {
        let p = std::env::temp_dir().join(format!("secure-files-lock-{}", std::process::id()));
        let held = FileLock::try_exclusive(&p).expect("lock").expect("free");
        // flock locks belong to the open file description: a second open conflicts.
        assert!(FileLock::try_exclusive(&p).expect("try").is_none());
        drop(held);
        let again = FileLock::exclusive(&p).expect("lock again");
        drop(again);
        let _ = std::fs::remove_file(&p);
        assert_eq!(
            sibling_lock_path(Path::new("/d/keys.json")).expect("name"),
            Path::new("/d/.keys.json.lock")
        );
    }
}

//! One SAM per database: the process that runs the SAM (`serve`, or `settle` when no
//! server runs) holds an exclusive `flock` on `<database>.lock` for its whole life. The
//! kernel drops the lock when the process ends, however it ends (kill -9 included), so
//! a stale lock cannot outlive its holder.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The held lock; released when dropped.
#[derive(Debug)]
pub struct InstanceLock {
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
    // SAFETY: flock only reads the descriptor, which `file` keeps open during the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Takes the lock if it is free; `None` when another process holds it.
pub fn try_lock(path: &Path) -> io::Result<Option<InstanceLock>> {
    let file = open(path)?;
    match flock(&file, libc::LOCK_EX | libc::LOCK_NB) {
        Ok(()) => Ok(Some(InstanceLock { _file: file })),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

/// Waits for the lock (blocking the thread).
pub fn lock(path: &Path) -> io::Result<InstanceLock> {
    let file = open(path)?;
    flock(&file, libc::LOCK_EX)?;
    Ok(InstanceLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_is_exclusive_until_dropped() {
        let p = std::env::temp_dir().join(format!("shop-plugin-lock-{}", std::process::id()));
        let held = try_lock(&p).expect("lock").expect("free");
        // flock locks belong to the open file description: a second open conflicts.
        assert!(try_lock(&p).expect("try").is_none());
        drop(held);
        assert!(try_lock(&p).expect("try").is_some());
        let _ = std::fs::remove_file(&p);
    }
}

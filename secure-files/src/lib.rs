//! Files that hold keys, card state, secrets and settlement batches, for every binary of
//! the system: secrets refused when other users may read them (mode 0600 or stricter),
//! new private files that never replace an existing one, and atomic durable writes
//! (temporary file, fsync, rename, directory fsync), and the advisory locks that guard
//! them (`lock`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

pub mod lock;
pub use lock::FileLock;

#[derive(Debug, Error)]
pub enum FileError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{path} is accessible by group or others (mode {mode:o}); it holds a secret: chmod 600 it"
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("{path} already exists; refusing to replace it")]
    Exists { path: PathBuf },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> FileError + '_ {
    move |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a file that holds a secret, refusing it when its group or others have any
/// access to it.
pub fn read_private(path: &Path) -> Result<String, FileError> {
    let mode = fs::metadata(path)
        .map_err(io_err(path))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(FileError::TooOpen {
            path: path.to_path_buf(),
            mode,
        });
    }
    fs::read_to_string(path).map_err(io_err(path))
}

/// Creates `path` with mode 0600 and writes `bytes`; fails if anything is there already
/// (`O_EXCL`: a secret is never silently replaced).
pub fn create_private(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => FileError::Exists {
                path: path.to_path_buf(),
            },
            _ => io_err(path)(e),
        })?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io_err(path))
}

/// Writes `bytes` to `path` so that after a crash the file holds the old content or the
/// new one, never a mix, and the new one is on disk when this returns.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FileError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| FileError::Io {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "no file name"),
    })?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        // open()'s mode passes through the umask: set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_0600_never_replaced_and_open_ones_refused() {
        let dir = std::env::temp_dir().join(format!("secure-files-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("secret");
        let _ = fs::remove_file(&p);
        create_private(&p, b"s3cret").expect("create");
        assert_eq!(
            fs::metadata(&p).expect("meta").permissions().mode() & 0o777,
            0o600
        );
        assert!(matches!(
            create_private(&p, b"other"),
            Err(FileError::Exists { .. })
        ));
        assert_eq!(read_private(&p).expect("read"), "s3cret");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = read_private(&p).expect_err("refused");
        assert!(e.to_string().contains("chmod 600"), "{e}");
        assert!(!e.to_string().contains("s3cret"), "never the secret: {e}");

        let b = dir.join("batch.json");
        write_atomic(&b, b"{}", 0o640).expect("atomic");
        write_atomic(&b, b"{\"a\":1}", 0o640).expect("atomic again");
        assert_eq!(fs::read(&b).expect("read"), b"{\"a\":1}");
        assert_eq!(
            fs::metadata(&b).expect("meta").permissions().mode() & 0o777,
            0o640
        );
        fs::remove_dir_all(&dir).expect("clean");
    }
}

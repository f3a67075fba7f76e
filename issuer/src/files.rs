//! Files that hold keys and card state: atomic durable writes (write a temporary file,
//! fsync, rename, fsync the directory) and reads that refuse secrets other users could read.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{bail, Context, Result};

/// Writes `bytes` to `path` atomically and durably with the given mode (e.g. 0o600):
/// after a crash the file holds either the old or the new content, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{} has no file name", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        // The mode given to open() is filtered by the umask: set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.sync_all()
            .with_context(|| format!("syncing {}", tmp.display()))?;
        fs::rename(&tmp, path).with_context(|| format!("renaming onto {}", path.display()))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("syncing directory {}", dir.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Reads a file that holds secrets, refusing it when its group or others may read or
/// write it (the mode must be 0600 or stricter).
pub fn read_private(path: &Path) -> Result<String> {
    let meta = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{} is accessible by group or others (mode {:o}); it holds keys: chmod 600 it",
            path.display(),
            mode
        );
    }
    fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_sets_mode_and_private_read_refuses_open_files() {
        let dir = std::env::temp_dir().join(format!("purse-files-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("k.json");
        write_atomic(&p, b"{}", 0o600).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(read_private(&p).unwrap(), "{}");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        let e = read_private(&p).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }
}

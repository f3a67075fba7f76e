//! `native-host install` / `uninstall`: writes and removes the host manifest of each
//! browser, per user or system-wide. Files are written atomically (temporary file,
//! rename) with mode 0644: browsers must read them, and they hold no secret.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::manifest::{
    check_chrome_id, check_firefox_id, manifest_dir, manifest_file, manifest_json, Browser,
    Platform, Scope,
};

#[derive(Debug, Error)]
pub enum InstallError {
    #[error("{0}")]
    BadId(String),
    #[error("the host binary {0} must be an absolute path to an existing file")]
    BadBinary(PathBuf),
    #[error(
        "no extension id for {0}: pass --chrome-id (Chrome, Chromium) or --firefox-id (Firefox)"
    )]
    NoIds(&'static str),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where manifests go.
#[derive(Clone, Debug)]
pub struct Target {
    pub scope: Scope,
    pub platform: Platform,
    /// The user's home (user scope).
    pub home: PathBuf,
    /// The file-system root (system scope): `/`, or a staging directory.
    pub root: PathBuf,
}

impl Target {
    pub fn dir(&self, browser: Browser) -> PathBuf {
        manifest_dir(browser, self.scope, self.platform, &self.home, &self.root)
    }

    pub fn file(&self, browser: Browser) -> PathBuf {
        manifest_file(&self.dir(browser))
    }
}

/// What to install.
#[derive(Clone, Debug)]
pub struct Install {
    pub target: Target,
    /// The browsers; empty means every browser that has an id.
    pub browsers: Vec<Browser>,
    pub binary: PathBuf,
    pub chrome_ids: Vec<String>,
    pub firefox_ids: Vec<String>,
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> InstallError + 'a {
    move |source| InstallError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Writes the manifests; returns the files written.
pub fn install(req: &Install) -> Result<Vec<PathBuf>, InstallError> {
    for id in &req.chrome_ids {
        check_chrome_id(id).map_err(InstallError::BadId)?;
    }
    for id in &req.firefox_ids {
        check_firefox_id(id).map_err(InstallError::BadId)?;
    }
    if !req.binary.is_absolute() || !req.binary.is_file() {
        return Err(InstallError::BadBinary(req.binary.clone()));
    }
    let browsers: Vec<Browser> = if req.browsers.is_empty() {
        Browser::ALL
            .into_iter()
            .filter(|b| {
                if b.is_chromium_family() {
                    !req.chrome_ids.is_empty()
                } else {
                    !req.firefox_ids.is_empty()
                }
            })
            .collect()
    } else {
        req.browsers.clone()
    };
    if browsers.is_empty() {
        return Err(InstallError::NoIds("any browser"));
    }
    let mut written = Vec::new();
    for b in browsers {
        let ids = if b.is_chromium_family() {
            &req.chrome_ids
        } else {
            &req.firefox_ids
        };
        if ids.is_empty() {
            return Err(InstallError::NoIds(b.name()));
        }
        let dir = req.target.dir(b);
        fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
        let file = manifest_file(&dir);
        let mut json = serde_json::to_vec_pretty(&manifest_json(b, &req.binary, ids))
            .map_err(|e| io("serializing", &file)(std::io::Error::other(e)))?;
        json.push(b'\n');
        write_atomic(&file, &json)?;
        written.push(file);
    }
    Ok(written)
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<(), InstallError> {
    let tmp = path.with_extension("json.tmp");
    let mut f = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o644)
        .open(&tmp)
        .map_err(io("creating", &tmp))?;
    f.write_all(data).map_err(io("writing", &tmp))?;
    f.sync_all().map_err(io("syncing", &tmp))?;
    // The umask may have narrowed the mode: browsers of every user must read it.
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644)).map_err(io("chmod", &tmp))?;
    fs::rename(&tmp, path).map_err(io("renaming", path))
}

/// Removes our manifest of each browser (every browser when empty); returns each file
/// and whether it was there.
pub fn uninstall(
    target: &Target,
    browsers: &[Browser],
) -> Result<Vec<(PathBuf, bool)>, InstallError> {
    let browsers = if browsers.is_empty() {
        &Browser::ALL[..]
    } else {
        browsers
    };
    let mut out = Vec::new();
    for &b in browsers {
        let file = target.file(b);
        match fs::remove_file(&file) {
            Ok(()) => out.push((file, true)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => out.push((file, false)),
            Err(e) => return Err(io("removing", &file)(e)),
        }
    }
    Ok(out)
}

//! `native-host install` / `uninstall`: writes and removes the host manifest of each
//! browser, per user or system-wide. Files are written with `secure_files::write_atomic`
//! with mode 0644: browsers must read them, and they hold no secret.

use std::fs;
use std::path::{Path, PathBuf};

use secure_files::{write_atomic, FileError};
use thiserror::Error;

use crate::manifest::{
    check_chrome_id, check_firefox_id, manifest_dirs, manifest_file, manifest_json, Browser,
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
    #[error("writing the manifest: {0}")]
    Write(#[from] FileError),
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
    /// The directories `browser` reads on this system (`/usr/lib64/...` only where
    /// `/usr/lib64` exists).
    pub fn dirs(&self, browser: Browser) -> Vec<PathBuf> {
        manifest_dirs(browser, self.scope, self.platform, &self.home, &self.root)
            .into_iter()
            .filter(|d| d.only_with.as_ref().is_none_or(|p| p.is_dir()))
            .map(|d| d.path)
            .collect()
    }

    /// Our manifest file in each of those directories.
    pub fn files(&self, browser: Browser) -> Vec<PathBuf> {
        self.dirs(browser)
            .iter()
            .map(|d| manifest_file(d))
            .collect()
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
        let mut json = serde_json::to_vec_pretty(&manifest_json(b, &req.binary, ids))
            .map_err(|e| io("serializing", &req.binary)(std::io::Error::other(e)))?;
        json.push(b'\n');
        for dir in req.target.dirs(b) {
            fs::create_dir_all(&dir).map_err(io("creating", &dir))?;
            let file = manifest_file(&dir);
            write_atomic(&file, &json, 0o644)?;
            written.push(file);
        }
    }
    Ok(written)
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
        for file in target.files(b) {
            match fs::remove_file(&file) {
                Ok(()) => out.push((file, true)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => out.push((file, false)),
                Err(e) => return Err(io("removing", &file)(e)),
            }
        }
    }
    Ok(out)
}

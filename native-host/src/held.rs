//! The held responses: every DEBIT or TICK answer that reached the host, kept in a file
//! until the extension acknowledges that the shop has it, so that a reply lost between
//! host, extension and shop can be delivered again (by this host process or a later
//! one: the browser starts a new host for every connection).
//!
//! The file (`held.json`, format `purse-native-host-held/1`, mode 0600) lives in the
//! host's state directory; every change is a locked read-modify-write (the one
//! `secure_files::FileLock`), written with `secure_files::write_atomic`, so host
//! processes running side by side and a crash at any point leave the old or the new
//! list. It holds card answers (MACs, no
//! keys) and is capped at [`CAPACITY`] entries, the oldest dropped first.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use secure_files::{write_atomic, FileError, FileLock};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The most responses kept; a shop acknowledges within seconds, so this is generous.
pub const CAPACITY: usize = 256;

const FORMAT: &str = "purse-native-host-held/1";
const FILE: &str = "held.json";
const LOCK: &str = "held.lock";

/// Which command the held answer belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeldCommand {
    Debit,
    Tick,
}

/// One card answer to a DEBIT or TICK, as relayed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeldResponse {
    pub held_id: String,
    /// The host session that relayed it.
    pub session: String,
    pub card_id: String,
    /// The card's NT of the purchase, when the guard saw its INITIALIZE answer.
    pub nt: Option<u32>,
    pub command: HeldCommand,
    /// The unit: 1 for DEBIT, k for TICK.
    pub k: u16,
    /// The command as relayed (hex), so the shop can match its SAM_TxSeq or k.
    pub command_apdu: String,
    /// The card's response APDU (hex), status word included.
    pub response: String,
    /// When the host received it (Unix seconds).
    pub at: u64,
}

#[derive(Debug, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct HeldFile {
    format: String,
    responses: Vec<HeldResponse>,
}

impl HeldFile {
    fn empty() -> HeldFile {
        HeldFile {
            format: FORMAT.into(),
            responses: Vec::new(),
        }
    }

    /// Adds `r`, dropping the oldest beyond [`CAPACITY`]; returns how many were dropped.
    fn add(&mut self, r: HeldResponse) -> usize {
        self.responses.push(r);
        let over = self.responses.len().saturating_sub(CAPACITY);
        self.responses.drain(..over);
        over
    }

    fn remove(&mut self, held_id: &str) -> bool {
        let before = self.responses.len();
        self.responses.retain(|r| r.held_id != held_id);
        self.responses.len() != before
    }
}

#[derive(Debug, Error)]
pub enum HeldError {
    #[error("held responses in {path}: {what}: {source}")]
    Io {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("held responses: {0}")]
    File(#[from] FileError),
}

fn io<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(std::io::Error) -> HeldError + 'a {
    move |source| HeldError::Io {
        path: path.to_path_buf(),
        what,
        source,
    }
}

/// The held responses of this user, in `dir`.
#[derive(Clone, Debug)]
pub struct HeldStore {
    dir: PathBuf,
}

impl HeldStore {
    /// The store in `dir` (created, mode 0700, on first write).
    pub fn new(dir: impl Into<PathBuf>) -> HeldStore {
        HeldStore { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Keeps `r`; durable when this returns.
    pub fn add(&self, r: HeldResponse) -> Result<(), HeldError> {
        self.update(|f| {
            let dropped = f.add(r);
            if dropped > 0 {
                eprintln!(
                    "native-host: held responses: {dropped} unacknowledged answer(s) dropped (more than {CAPACITY} kept)"
                );
            }
        })
        .map(|_| ())
    }

    /// Forgets `held_id`; whether it was there.
    pub fn remove(&self, held_id: &str) -> Result<bool, HeldError> {
        self.update(|f| f.remove(held_id))
    }

    /// Every held response, oldest first.
    pub fn list(&self) -> Result<Vec<HeldResponse>, HeldError> {
        if !self.dir.exists() {
            return Ok(Vec::new());
        }
        let _lock = self.lock()?;
        Ok(self.read()?.responses)
    }

    fn update<T>(&self, change: impl FnOnce(&mut HeldFile) -> T) -> Result<T, HeldError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(io(&self.dir, "creating the state directory"))?;
        let _lock = self.lock()?;
        let mut file = self.read()?;
        let out = change(&mut file);
        self.write(&file)?;
        Ok(out)
    }

    /// The store's exclusive lock, released when the handle drops.
    fn lock(&self) -> Result<FileLock, HeldError> {
        let path = self.dir.join(LOCK);
        FileLock::exclusive(&path).map_err(io(&path, "locking"))
    }

    fn read(&self) -> Result<HeldFile, HeldError> {
        let path = self.dir.join(FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HeldFile::empty()),
            Err(e) => return Err(io(&path, "reading")(e)),
        };
        match serde_json::from_str::<HeldFile>(&text) {
            Ok(f) if f.format == FORMAT => Ok(f),
            // Never lose a broken file silently: set it aside and start afresh.
            other => {
                let aside = self.dir.join(format!("{FILE}.unreadable"));
                let why = match other {
                    Ok(f) => format!("unknown format '{}'", f.format),
                    Err(e) => e.to_string(),
                };
                eprintln!(
                    "native-host: {} is unreadable ({why}); moved to {}",
                    path.display(),
                    aside.display()
                );
                fs::rename(&path, &aside).map_err(io(&path, "setting aside"))?;
                Ok(HeldFile::empty())
            }
        }
    }

    fn write(&self, f: &HeldFile) -> Result<(), HeldError> {
        let path = self.dir.join(FILE);
        let json = serde_json::to_vec_pretty(f).map_err(|e| HeldError::Io {
            path: path.clone(),
            what: "serializing",
            source: std::io::Error::other(e),
        })?;
        Ok(write_atomic(&path, &json, 0o600)?)
    }
}

/// The host's state directory: `$PURSE_HOST_STATE_DIR` when set (tests, packagers),
/// else the platform's per-user state directory. `env` looks a variable up.
pub fn state_dir(env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let set = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(d) = set("PURSE_HOST_STATE_DIR") {
        return Some(d);
    }
    if cfg!(target_os = "macos") {
        return set("HOME").map(|h| h.join("Library/Application Support/purse-native-host"));
    }
    set("XDG_STATE_HOME")
        .or_else(|| set("HOME").map(|h| h.join(".local/state")))
        .map(|d| d.join("purse-native-host"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn held(id: &str) -> HeldResponse {
        HeldResponse {
            held_id: id.into(),
            session: "s".into(),
            card_id: "1000000000000001".into(),
            nt: Some(1),
            command: HeldCommand::Debit,
            k: 1,
            command_apdu: "8054000010".into(),
            response: "9000".into(),
            at: 1,
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("native-host-held-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn responses_are_kept_across_stores_until_removed() {
        let dir = scratch("keep");
        let a = HeldStore::new(&dir);
        assert_eq!(a.list().unwrap(), vec![]);
        a.add(held("1")).unwrap();
        a.add(held("2")).unwrap();
        // Another process sees them.
        let b = HeldStore::new(&dir);
        assert_eq!(b.list().unwrap(), vec![held("1"), held("2")]);
        assert!(b.remove("1").unwrap());
        assert!(!b.remove("1").unwrap());
        assert_eq!(a.list().unwrap(), vec![held("2")]);
        let mode = fs::metadata(dir.join(FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_oldest_go_first_beyond_capacity() {
        let mut f = HeldFile::empty();
        for i in 0..CAPACITY {
            assert_eq!(f.add(held(&i.to_string())), 0);
        }
        assert_eq!(f.add(held("new")), 1);
        assert_eq!(f.responses.len(), CAPACITY);
        assert_eq!(f.responses[0].held_id, "1");
        assert_eq!(f.responses[CAPACITY - 1].held_id, "new");
    }

    #[test]
    fn an_unreadable_file_is_set_aside_not_lost() {
        let dir = scratch("broken");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(FILE), "{not json").unwrap();
        let s = HeldStore::new(&dir);
        assert_eq!(s.list().unwrap(), vec![]);
        assert_eq!(
            fs::read_to_string(dir.join("held.json.unreadable")).unwrap(),
            "{not json"
        );
        s.add(held("x")).unwrap();
        assert_eq!(s.list().unwrap(), vec![held("x")]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_state_dir_follows_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        assert_eq!(
            state_dir(env(&[("PURSE_HOST_STATE_DIR", "/x"), ("HOME", "/h")])),
            Some(PathBuf::from("/x"))
        );
        if cfg!(target_os = "linux") {
            assert_eq!(
                state_dir(env(&[("HOME", "/h")])),
                Some(PathBuf::from("/h/.local/state/purse-native-host"))
            );
            assert_eq!(
                state_dir(env(&[("HOME", "/h"), ("XDG_STATE_HOME", "/s")])),
                Some(PathBuf::from("/s/purse-native-host"))
            );
        }
        assert_eq!(state_dir(env(&[])), None);
    }
}

//! The emulated cards' non-volatile memory: a state file per card (the purse card's
//! `purse-card-state/1` here, the SAM's `purse-sam-card/1` in [`crate::sam_card`]).
//! Every state change a card makes is written atomically and durably (mode 0600: it
//! holds the card's keys) before the card answers, so a power cut leaves the old or the
//! new state.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use purse::card::{CardState, CardStore, StoreError};
use zeroize::Zeroizing;

use secure_files::{read_private, write_atomic};

/// A [`CardStore`] backed by one state file.
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    pub fn new(path: impl Into<PathBuf>) -> FileStore {
        FileStore { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the state file, refusing one that group or others could read.
    pub fn load(&self) -> Result<CardState> {
        let json = read_state_file(&self.path)?;
        CardState::from_json(&json)
            .with_context(|| format!("{} is not a valid card state", self.path.display()))
    }
}

impl CardStore for FileStore {
    fn persist(&mut self, state: &CardState) -> Result<(), StoreError> {
        let json = Zeroizing::new(state.to_json());
        write_state_file("card-emulator", &self.path, &json).map_err(StoreError)
    }
}

/// Reads a state file, refusing one that group or others could read. The text holds
/// the card's keys: it is wiped when dropped.
pub fn read_state_file(path: &Path) -> Result<Zeroizing<String>> {
    Ok(Zeroizing::new(read_private(path)?))
}

/// Replaces a state file atomically and durably, mode 0600. On failure the error (paths
/// and OS errors only, never key material) is logged under `name` and returned.
pub fn write_state_file(name: &str, path: &Path, json: &str) -> Result<(), String> {
    write_atomic(path, json.as_bytes(), 0o600).map_err(|e| {
        eprintln!(
            "{name}: persisting the state to {} failed: {e:#}",
            path.display()
        );
        format!("{e:#}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use purse::commands::TxRecord;
    use purse::{Amount, CardId, Currency, Key, KeyVersion, Nt};

    fn state(balance: u32) -> CardState {
        CardState {
            card_id: CardId([1, 2, 3, 4, 5, 6, 7, 8]),
            kv: KeyVersion(1),
            currency: Currency::EUR,
            balance: Amount(balance),
            nt_last: Nt(0),
            k_pur: Key::from_bytes([0x11; 16]),
            k_tac: Key::from_bytes([0x22; 16]),
            log: Vec::<TxRecord>::new(),
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("purse-store-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn persist_writes_the_state_json_with_mode_0600() {
        let dir = scratch("persist");
        let path = dir.join("card.json");
        let mut store = FileStore::new(&path);
        let s = state(1234);
        store.persist(&s).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::read_to_string(&path).unwrap(), s.to_json());
        // A second write replaces the file (rename), still 0600, no temporary left.
        store.persist(&state(1000)).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), state(1000).to_json());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn persist_failure_is_a_store_error_not_a_panic() {
        let dir = scratch("fail");
        let mut store = FileStore::new(dir.join("missing-dir").join("card.json"));
        assert!(store.persist(&state(1)).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn load_refuses_a_state_file_others_can_read() {
        let dir = scratch("load");
        let path = dir.join("card.json");
        fs::write(&path, "{}").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let e = format!("{:#}", FileStore::new(&path).load().unwrap_err());
        assert!(e.contains("chmod 600"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }
}

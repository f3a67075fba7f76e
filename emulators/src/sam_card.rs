//! The SAM card ([`purse::sam_applet::SamApplet`]) as an [`Applet`]: its persistent
//! state (keys, `K_CTX`, counters, windows, period totals, blocked flag) lives in a
//! `purse-sam-card/1` file, written atomically and durably (mode 0600) through the
//! applet's [`SamStore`] before any answer leaves. `RND_S` comes from the OS.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use purse::sam_applet::{SamApplet, SamState, SamStore, SamStoreError};
use zeroize::Zeroizing;

use crate::applet::{os_rnd, Applet};
use crate::atr::{SAM_ATR, SAM_ATR_T0};
use crate::store::{read_state_file, write_state_file};

const NAME: &str = "sam-emulator";

/// A [`SamStore`] backed by one SAM card file.
#[derive(Debug, Clone)]
pub struct SamFileStore {
    path: PathBuf,
}

impl SamFileStore {
    pub fn new(path: impl Into<PathBuf>) -> SamFileStore {
        SamFileStore { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the SAM card file, refusing one that group or others could read.
    pub fn load(&self) -> Result<SamState> {
        let json = read_state_file(&self.path)?;
        SamState::from_json(&json)
            .with_context(|| format!("{} is not a valid SAM card", self.path.display()))
    }
}

impl SamStore for SamFileStore {
    fn persist(&mut self, state: &SamState) -> Result<(), SamStoreError> {
        let json = Zeroizing::new(state.to_json());
        write_state_file(NAME, &self.path, &json).map_err(SamStoreError)
    }
}

pub struct SamCard {
    applet: SamApplet,
    store: SamFileStore,
}

impl SamCard {
    pub fn new(state: SamState, store: SamFileStore) -> SamCard {
        SamCard {
            applet: SamApplet::new(state),
            store,
        }
    }
}

impl Applet for SamCard {
    const NAME: &'static str = NAME;

    fn atr(&self, t0: bool) -> &'static [u8] {
        if t0 {
            &SAM_ATR_T0
        } else {
            &SAM_ATR
        }
    }

    fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.applet.process(apdu, os_rnd(NAME), &mut self.store)
    }

    fn reset(&mut self) {
        self.applet.reset();
    }

    fn status(&self) -> String {
        let s = self.applet.state();
        format!(
            "sam_id={} next_tx_seq={} last_close_seq={} period_count={} period_sum={} blocked={}",
            s.keys.sam_id.to_hex(),
            s.next_tx_seq,
            s.last_close_seq,
            s.period.count,
            s.period.sum,
            s.blocked
        )
    }
}

//! Test support for the purse on the real PC/SC stack (pcscd + vsmartcard's vpcd): the
//! two vpcd slots and a machine-wide lock per slot, test directories, card state files
//! and SAM card files, the card emulators as a process or in a thread ([`emulator`]) and PC/SC helpers
//! ([`reader`]). A dev-dependency of the crates whose tests need real parts.
//!
//! Tests that need PC/SC FAIL with a clear message when pcscd is not running; they never
//! skip. Nothing here sleeps to wait for a condition: card presence is awaited with
//! `SCardGetStatusChange`, the emulator's readiness and replies on its pipes and socket.

pub mod emulator;
pub mod reader;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use purse::card::CardState;
use purse::keys::{IssuerKeys, MasterKeys, SamKeys};
use purse::sam_applet::SamState;
use purse::{Amount, CardId, Currency, Key, KeyVersion, SamId};
use secure_files::{read_private, write_atomic, FileLock};

pub use emulator::{Emulator, EmulatorStatus};
pub use reader::{
    connect, is_card_removed, pcsc_context, select_purse, split_sw, transmit, wait_absent,
    wait_card, wait_present,
};

/// How long pcscd may take to notice a card arriving or leaving (it polls vpcd about
/// every 0.4 s; a loaded CI machine gets a wide margin).
pub const CARD_EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// One slot of pcscd's vpcd driver: the TCP port the card connects to and the reader
/// name PC/SC clients see.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub port: u16,
    pub reader: &'static str,
}

/// The two slots of the stock `/etc/reader.conf.d/vpcd`.
pub const SLOT_0: Slot = Slot {
    port: 35963,
    reader: "Virtual PCD 00 00",
};
pub const SLOT_1: Slot = Slot {
    port: 35964,
    reader: "Virtual PCD 00 01",
};

/// Exclusive use of one vpcd slot, across threads and test binaries (pcscd is
/// machine-wide): an `flock` on `$TMPDIR/purse-vpcd-<port>.lock`, released on drop,
/// also when the test panics or the process dies.
pub struct SlotLock {
    slot: Slot,
    _lock: FileLock,
}

impl SlotLock {
    /// Blocks until the slot is ours, then checks that pcscd is up, knows the reader,
    /// and the reader is empty (a previous emulator has gone).
    pub fn acquire(slot: Slot) -> SlotLock {
        let path = std::env::temp_dir().join(format!("purse-vpcd-{}.lock", slot.port));
        let lock = FileLock::exclusive(&path)
            .unwrap_or_else(|e| panic!("locking the slot {}: {e}", path.display()));
        let ctx = pcsc_context();
        if let Err(e) = wait_card(&ctx, slot.reader, false, CARD_EVENT_TIMEOUT) {
            panic!(
                "reader '{}' should be empty before a test puts its card in: {e}. Another \
                 card emulator (a stale process?) is connected to vpcd port {}",
                slot.reader, slot.port
            );
        }
        SlotLock { slot, _lock: lock }
    }

    pub fn slot(&self) -> Slot {
        self.slot
    }
}

/// A fresh directory under `$TMPDIR`, removed on drop unless the test failed (then it
/// is kept for inspection and its path printed).
pub struct TestDir(PathBuf);

impl TestDir {
    pub fn new(name: &str) -> TestDir {
        let p = std::env::temp_dir().join(format!("purse-test-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap_or_else(|e| panic!("creating {}: {e}", p.display()));
        TestDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test files kept in {}", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// Fixed master keys of key version 1 for tests (never a real issuer's keys).
pub fn test_master_keys() -> MasterKeys {
    MasterKeys {
        mk_pur: Key::from_bytes([0xA1; 16]),
        mk_tac: Key::from_bytes([0xA2; 16]),
        mk_sam: Key::from_bytes([0xA3; 16]),
    }
}

pub const TEST_KV: KeyVersion = KeyVersion(1);

/// A freshly personalised EUR card of key version [`TEST_KV`], its keys diversified from
/// [`test_master_keys`] as the issuer would.
pub fn new_card_state(card_id: CardId, balance: Amount) -> CardState {
    let mk = test_master_keys();
    CardState::new(
        card_id,
        TEST_KV,
        Currency::EUR,
        balance,
        mk.k_pur(card_id),
        mk.k_tac(card_id),
    )
}

/// Writes a card state file the way the issuer does (atomic, mode 0600).
pub fn write_card_state(path: &Path, state: &CardState) {
    write_atomic(path, state.to_json().as_bytes(), 0o600)
        .unwrap_or_else(|e| panic!("writing {}: {e:#}", path.display()));
}

/// Reads a card state file, refusing one with a mode other than 0600 or stricter.
pub fn read_card_state(path: &Path) -> CardState {
    let json = read_private(path).unwrap_or_else(|e| panic!("{e:#}"));
    CardState::from_json(&json).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The issuer's keys of [`test_master_keys`] (key version [`TEST_KV`] only), as the
/// clearing office checks batches with them.
pub fn test_issuer_keys() -> IssuerKeys {
    IssuerKeys {
        versions: [(TEST_KV, test_master_keys())].into(),
    }
}

/// A freshly personalised EUR SAM card accepting [`TEST_KV`], as `purse-issuer sam
/// issue-card` makes it from [`test_issuer_keys`] (with a fixed `K_CTX`).
pub fn new_sam_card_state(sam_id: SamId) -> SamState {
    let keys = SamKeys::issue(
        &test_issuer_keys(),
        sam_id,
        Currency::EUR,
        TEST_KV,
        &[TEST_KV],
    )
    .unwrap_or_else(|e| panic!("SAM keys: {e}"));
    SamState::personalise(keys, Key::from_bytes([0xC7; 16]))
}

/// Writes a SAM card file the way the issuer does (atomic, mode 0600).
pub fn write_sam_card(path: &Path, state: &SamState) {
    write_atomic(path, state.to_json().as_bytes(), 0o600)
        .unwrap_or_else(|e| panic!("writing {}: {e:#}", path.display()));
}

/// Reads a SAM card (its file, refused with a mode other than 0600 or stricter, and its
/// journal replayed) without writing anything: the SAM's state as a restart would find it.
pub fn read_sam_card(path: &Path) -> SamState {
    card_emulators::sam_store::load(path)
        .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()))
        .0
        .state
}

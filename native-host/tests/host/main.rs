//! The native host end to end: the built binary spawned as a browser spawns it, on the
//! real PC/SC stack (pcscd, vsmartcard's vpcd, the card emulator running in-process from
//! `purse_issuer::emulator`), driven by the SAM of `purse` through the host's protocol.
//! Every message sent and received is checked against the JSON Schema.
//!
//! Needs a running pcscd with the vpcd driver (scripts/test-all starts one): without it
//! these tests fail, they do not skip.

mod harness;
mod hostile;
mod install;
mod payment;
mod recovery;
mod service;
mod wire;

use std::collections::BTreeMap;
use std::path::PathBuf;

use purse::keys::{IssuerKeys, SamKeys};
use purse::{Amount, CardId, Currency, SamId};
use testkit::{
    new_card_state, pcsc_context, test_master_keys, wait_present, write_card_state, Emulator, Slot,
    SlotLock, TestDir, TEST_KV,
};

/// A purse card in a locked vpcd slot, the emulator in this process.
pub struct Rig {
    // Drop order: the emulator leaves before the slot is unlocked.
    pub emu: Emulator,
    pub dir: TestDir,
    pub reader: &'static str,
    pub card_file: PathBuf,
    _lock: SlotLock,
}

impl Rig {
    /// A card `…id_last` holding `balance` cents of EUR in `slot`, present in the reader.
    pub fn new(slot: Slot, name: &str, id_last: u8, balance: u32) -> Rig {
        Rig::with_card(slot, name, id_last, balance, false)
    }

    /// A card of another kind (no purse application) present in `slot`'s reader.
    pub fn without_purse(slot: Slot, name: &str) -> Rig {
        Rig::with_card(slot, name, 0xF0, 0, true)
    }

    fn with_card(slot: Slot, name: &str, id_last: u8, balance: u32, without_purse: bool) -> Rig {
        let lock = SlotLock::acquire(slot);
        let dir = TestDir::new(name);
        let card_file = dir.join("card.json");
        write_card_state(
            &card_file,
            &new_card_state(
                CardId([0x10, 0, 0, 0, 0, 0, 0x4E, id_last]),
                Amount(balance),
            ),
        );
        let emu = Emulator::in_process_as(&lock, &card_file, true, without_purse);
        wait_present(&pcsc_context(), slot.reader);
        Rig {
            emu,
            dir,
            reader: slot.reader,
            card_file,
            _lock: lock,
        }
    }

    pub fn balance(&self) -> u32 {
        self.emu.status().balance
    }
}

/// The test shop's SAM.
pub const SAM_ID: SamId = SamId([0x5A, 0, 0, 0, 0, 0, 0, 3]);

pub fn sam_keys() -> SamKeys {
    sam_keys_of(SAM_ID)
}

/// The keys of the SAM `sam_id` (another shop's, when it is not [`SAM_ID`]).
pub fn sam_keys_of(sam_id: SamId) -> SamKeys {
    let mut versions = BTreeMap::new();
    versions.insert(TEST_KV, test_master_keys());
    SamKeys::issue(
        &IssuerKeys { versions },
        sam_id,
        Currency::EUR,
        TEST_KV,
        &[TEST_KV],
    )
    .expect("SAM keys")
}

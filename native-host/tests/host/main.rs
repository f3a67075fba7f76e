//! The native host end to end: the built binary spawned as a browser spawns it, on the
//! real PC/SC stack (pcscd, vsmartcard's vpcd, the card emulator running in-process from
//! `card_emulators`), driven by the SAM of `purse` through the host's protocol.
//! Every message sent and received is checked against the JSON Schema.
//!
//! Needs a running pcscd with the vpcd driver (scripts/test-all starts one): without it
//! these tests fail, they do not skip.

mod harness;
mod history;
mod hostile;
mod install;
mod payment;
mod recovery;
mod service;
mod several_cards;
mod wire;

use std::collections::BTreeMap;
use std::path::PathBuf;

use purse::keys::{IssuerKeys, SamKeys};
use purse::sam::{Completion, Order, Sam};
use purse::surrogate::{MemoryJournal, Purchase, Surrogate};
use purse::{Amount, CardId, Currency, SamId};
use purse::{DateTime, Rnd};
use serde_json::json;

use crate::harness::{Host, HostLink};
use testkit::emulator::CardKind;
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
        Rig::with_card(slot, name, id_last, balance, CardKind::Purse)
    }

    /// A card of another kind (no purse application) present in `slot`'s reader.
    pub fn without_purse(slot: Slot, name: &str) -> Rig {
        Rig::with_card(slot, name, 0xF0, 0, CardKind::WithoutPurse)
    }

    /// [`Rig::new`] with a card that answers as a T=0 card (61xx, GET RESPONSE).
    pub fn t0(slot: Slot, name: &str, id_last: u8, balance: u32) -> Rig {
        Rig::with_card(slot, name, id_last, balance, CardKind::PurseT0)
    }

    fn with_card(slot: Slot, name: &str, id_last: u8, balance: u32, kind: CardKind) -> Rig {
        Rig::in_slot(SlotLock::acquire(slot), name, id_last, balance, kind)
    }

    /// A card of `kind` in the slot already locked (a test that takes both slots locks
    /// them in slot order first).
    pub fn in_slot(lock: SlotLock, name: &str, id_last: u8, balance: u32, kind: CardKind) -> Rig {
        let slot = lock.slot();
        let dir = TestDir::new(name);
        let card_file = dir.join("card.json");
        write_card_state(
            &card_file,
            &new_card_state(
                CardId([0x10, 0, 0, 0, 0, 0, 0x4E, id_last]),
                Amount(balance),
            ),
        );
        let emu = Emulator::in_process_as(&lock, &card_file, true, kind);
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

/// One single purchase of `amount` by `sam` in its own payment session on `reader`,
/// confirmed by the card; the session closed again.
pub fn pay(host: &mut Host, reader: &str, sam: &mut Sam, amount: u32, seed: u8) -> Purchase {
    let session = host.open_payment(reader, amount);
    pay_in(host, &session, sam, amount, seed)
}

/// [`pay`] in the payment session `session`, already open for `amount`.
pub fn pay_in(host: &mut Host, session: &str, sam: &mut Sam, amount: u32, seed: u8) -> Purchase {
    let mut journal = MemoryJournal::default();
    let mut s = Surrogate {
        sam,
        journal: &mut journal,
    };
    let mut link = HostLink::new(host, session);
    let p = s
        .purchase(
            &mut link,
            Order::single(Amount(amount)),
            Rnd([seed; 16]),
            DateTime(1_795_300_000),
        )
        .expect("purchase");
    assert!(link.errors.is_empty(), "{:?}", link.errors);
    assert!(
        matches!(p.completion, Completion::Confirmed { .. }),
        "{p:?}"
    );
    host.expect(
        json!({"type":"close_session","session":session}),
        "session_closed",
    );
    p
}

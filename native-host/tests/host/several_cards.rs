//! Several cards on one computer, no reader named by the extension: a purse card beside
//! a card that is not one (a SAM card, as in the second vpcd reader of our test machines,
//! or a laptop's ID card), in either slot. The host reports, reads, pays with and waits
//! for the purse card and passes the other card over; with no purse card in, it says so
//! and names what is in instead; of two purse cards it takes the first by reader name.
//! Every test here takes both slots, in slot order.

use purse::sam::Sam;
use purse::SamId;
use serde_json::{json, Value};
use testkit::emulator::CardKind;
use testkit::{
    new_sam_card_state, pcsc_context, wait_present, write_sam_card, Emulator, SlotLock, TestDir,
    SLOT_0, SLOT_1,
};

use crate::harness::{payment_request, Host};
use crate::{pay_in, sam_keys, Rig};

/// Both vpcd slots, locked in slot order (two tests that take both never deadlock).
fn both_slots() -> [SlotLock; 2] {
    [SlotLock::acquire(SLOT_0), SlotLock::acquire(SLOT_1)]
}

/// A SAM card in the locked slot, present in its reader.
struct SamInSlot {
    // Drop order: the emulator leaves before its files and the slot go.
    emu: Emulator,
    reader: &'static str,
    _dir: TestDir,
    _lock: SlotLock,
}

impl SamInSlot {
    fn new(lock: SlotLock, name: &str) -> SamInSlot {
        let dir = TestDir::new(name);
        let file = dir.join("sam-card.json");
        write_sam_card(
            &file,
            &new_sam_card_state(SamId([0x5A, 0, 0, 0, 0, 0, 0xFB, 1])),
        );
        let emu = Emulator::in_process_sam(&lock, &file, true);
        let reader = lock.slot().reader;
        wait_present(&pcsc_context(), reader);
        SamInSlot {
            emu,
            reader,
            _dir: dir,
            _lock: lock,
        }
    }
}

fn assert_event(r: &Value, reader: &str, present: bool) {
    assert_eq!(r["type"], "card_event", "{r}");
    assert_eq!(r["present"], present, "{r}");
    assert_eq!(r["reader"], reader, "{r}");
}

/// The purse card in one slot and a SAM card in the other.
fn the_purse_card_beside_a_sam(purse_in_slot_0: bool) {
    let [l0, l1] = both_slots();
    let (purse_lock, sam_lock) = if purse_in_slot_0 { (l0, l1) } else { (l1, l0) };
    let sam = SamInSlot::new(sam_lock, "host-beside-sam");
    let rig = Rig::in_slot(
        purse_lock,
        "host-beside-purse",
        0x40,
        5_000,
        CardKind::Purse,
    );
    let purse = rig.reader;
    let mut host = Host::spawn(rig.dir.path(), &[]);

    // Reported and read: the purse card, wherever it is.
    let info = host.expect(json!({"type":"card_info"}), "card_info");
    assert_eq!(info["reader"], purse, "{info}");
    assert_eq!(info["card"]["balance"], 5_000, "{info}");
    let history = host.expect(json!({"type":"card_history"}), "card_history");
    assert_eq!(history["reader"], purse, "{history}");
    let r = host.expect(json!({"type":"wait_card","timeout_ms":5000}), "card_event");
    assert_event(&r, purse, true);

    // Paid with.
    let session = host.open_payment_chosen(1_000);
    let status = host.expect(json!({"type":"status"}), "status");
    assert_eq!(status["session"]["reader"], purse, "{status}");
    pay_in(&mut host, &session, &mut Sam::new(sam_keys()), 1_000, 0x40);
    assert_eq!(rig.balance(), 4_000);

    // Waiting for the card to leave is about the purse card: it is still in...
    let r = host.expect_error(
        json!({"type":"wait_card","present":false,"timeout_ms":300}),
        "timeout",
    );
    assert!(r["detail"].as_str().unwrap_or("").contains("300 ms"), "{r}");
    // ...and when it leaves, that is the event, while the SAM stays in its reader.
    let wait = host.request_later(json!({"type":"wait_card","present":false,"timeout_ms":20000}));
    rig.emu.remove();
    assert_event(&host.reply_to(wait), purse, false);

    // Only the SAM is in: no purse card, and the error says what is in instead.
    let r = host.expect_error(json!({"type":"card_info"}), "no_card");
    let detail = r["detail"].as_str().unwrap_or("");
    assert!(detail.contains("no purse card"), "{r}");
    assert!(
        detail.contains(sam.reader) && detail.contains("6A82"),
        "{r}"
    );
    assert!(!detail.contains(purse), "{r}");
    host.expect_error(payment_request(1_000), "no_card");
    host.expect_error(json!({"type":"card_history"}), "no_card");
    // A wait for a card passes the SAM over, and ends when the purse card is back.
    let r = host.expect_error(json!({"type":"wait_card","timeout_ms":300}), "timeout");
    assert!(
        r["detail"].as_str().unwrap_or("").contains("no purse card"),
        "{r}"
    );
    let wait = host.request_later(json!({"type":"wait_card","timeout_ms":20000}));
    rig.emu.insert();
    assert_event(&host.reply_to(wait), purse, true);
    let info = host.expect(json!({"type":"card_info"}), "card_info");
    assert_eq!(info["card"]["balance"], 4_000, "{info}");
    // The SAM was looked at, never taken: it is still in and answers its own SELECT.
    assert!(sam.emu.control("status").starts_with("ok"));
    assert!(host.wait_exit().success());
}

#[test]
fn the_purse_card_in_the_first_reader_beside_a_sam() {
    the_purse_card_beside_a_sam(true);
}

#[test]
fn the_purse_card_in_the_second_reader_beside_a_sam() {
    the_purse_card_beside_a_sam(false);
}

#[test]
fn no_purse_card_among_other_cards_is_said_so() {
    let [l0, l1] = both_slots();
    let other = Rig::in_slot(l0, "host-other-card", 0xF0, 0, CardKind::WithoutPurse);
    let sam = SamInSlot::new(l1, "host-other-sam");
    let mut host = Host::spawn(other.dir.path(), &[]);
    let r = host.expect_error(json!({"type":"card_info"}), "no_card");
    assert_eq!(
        r["message"],
        "There is no purse card in the reader. Insert your purse card."
    );
    let detail = r["detail"].as_str().unwrap_or("");
    for reader in [other.reader, sam.reader] {
        assert!(
            detail.contains(&format!("'{reader}' holds another card")),
            "{r}"
        );
    }
    host.expect_error(payment_request(100), "no_card");
    host.expect_error(json!({"type":"card_history"}), "no_card");
    // No purse card is in: it has left already.
    let r = host.expect(
        json!({"type":"wait_card","present":false,"timeout_ms":20000}),
        "card_event",
    );
    assert_eq!(r["present"], false, "{r}");
    // Named, a card of another kind is still refused as such.
    host.expect_error(
        json!({"type":"card_info","reader":other.reader}),
        "unsupported_card",
    );
}

#[test]
fn of_two_purse_cards_the_first_reader_by_name() {
    let [l0, l1] = both_slots();
    let first = Rig::in_slot(l0, "host-two-first", 0x41, 100, CardKind::Purse);
    let second = Rig::in_slot(l1, "host-two-second", 0x42, 200, CardKind::Purse);
    let mut host = Host::spawn(first.dir.path(), &[]);
    for _ in 0..2 {
        let info = host.expect(json!({"type":"card_info"}), "card_info");
        assert_eq!(info["reader"], first.reader, "{info}");
        assert_eq!(info["card"]["balance"], 100, "{info}");
    }
    let session = host.open_payment_chosen(50);
    let status = host.expect(json!({"type":"status"}), "status");
    assert_eq!(status["session"]["reader"], first.reader, "{status}");
    pay_in(&mut host, &session, &mut Sam::new(sam_keys()), 50, 0x41);
    assert_eq!((first.balance(), second.balance()), (50, 200));
}

//! The host and the PC/SC service: pcscd not running, no such reader, no card, a card
//! of another kind, waiting for a card to arrive and leave, a wait that times out, a wait
//! the shopper cancels.

use serde_json::json;
use testkit::{Emulator, SlotLock, TestDir, SLOT_0, SLOT_1};

use crate::harness::Host;
use crate::Rig;

#[test]
fn without_pcscd_every_card_request_says_so() {
    let dir = TestDir::new("host-no-pcscd");
    // The PC/SC client library talks to the socket this names: nothing listens there.
    let socket = dir.join("no-pcscd.comm");
    let mut host = Host::spawn(
        dir.path(),
        &[("PCSCLITE_CSOCK_NAME", socket.to_str().unwrap())],
    );
    let status = host.expect(json!({"type":"status"}), "status");
    assert_eq!(status["pcsc"], "down");
    assert_eq!(status["readers"], json!([]));
    let r = host.expect_error(json!({"type":"card_info"}), "no_pcsc_service");
    assert!(r["message"].as_str().unwrap().contains("pcscd"), "{r}");
    host.expect_error(
        json!({"type":"wait_card","timeout_ms":100}),
        "no_pcsc_service",
    );
    host.expect_error(
        json!({"type":"open_session","purpose":"recovery","recovery":{"nt":1}}),
        "no_pcsc_service",
    );
    assert!(host.wait_exit().success());
}

#[test]
fn readers_and_cards_that_are_not_there() {
    let lock = SlotLock::acquire(SLOT_1);
    let dir = TestDir::new("host-no-card");
    let mut host = Host::spawn(dir.path(), &[]);
    let status = host.expect(json!({"type":"status"}), "status");
    let names: Vec<&str> = status["readers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(names.contains(&lock.slot().reader), "{status}");
    let ghost = "Virtual PCD 09 09";
    host.expect_error(json!({"type":"card_info","reader":ghost}), "no_reader");
    host.expect_error(
        json!({"type":"wait_card","reader":ghost,"timeout_ms":100}),
        "no_reader",
    );
    host.expect_error(
        json!({"type":"open_session","purpose":"recovery","recovery":{"nt":1},"reader":ghost}),
        "no_reader",
    );
    // The locked slot's reader is empty.
    let reader = lock.slot().reader;
    host.expect_error(json!({"type":"card_info","reader":reader}), "no_card");
    host.expect_error(
        json!({"type":"open_session","purpose":"recovery","recovery":{"nt":1},"reader":reader}),
        "no_card",
    );
    let r = host.expect_error(
        json!({"type":"wait_card","reader":reader,"timeout_ms":200}),
        "timeout",
    );
    assert!(r["detail"].as_str().unwrap().contains("200 ms"), "{r}");
}

#[test]
fn waiting_for_a_card_to_arrive_and_to_leave() {
    let lock = SlotLock::acquire(SLOT_0);
    let dir = TestDir::new("host-wait");
    let card = dir.join("card.json");
    testkit::write_card_state(
        &card,
        &testkit::new_card_state(
            purse::CardId([0x10, 0, 0, 0, 0, 0, 0x4E, 8]),
            purse::Amount(42),
        ),
    );
    let emu = Emulator::in_process(&lock, &card, false);
    let reader = lock.slot().reader;
    let mut host = Host::spawn(dir.path(), &[]);
    let id = host.request_later(json!({"type":"wait_card","reader":reader,"timeout_ms":20000}));
    emu.insert();
    let r = host.reply_to(id);
    assert_eq!(
        (r["type"].as_str(), r["present"].as_bool()),
        (Some("card_event"), Some(true)),
        "{r}"
    );
    assert_eq!(r["reader"], reader);
    let id = host.request_later(
        json!({"type":"wait_card","reader":reader,"present":false,"timeout_ms":20000}),
    );
    emu.remove();
    let r = host.reply_to(id);
    assert_eq!(
        (r["type"].as_str(), r["present"].as_bool()),
        (Some("card_event"), Some(false)),
        "{r}"
    );
    drop(emu);
}

#[test]
fn the_shopper_cancels_a_wait() {
    let rig = Rig::new(SLOT_1, "host-cancel", 9, 100);
    let mut host = Host::spawn(rig.dir.path(), &[]);
    // The card is in: waiting for it to leave blocks until the shopper cancels.
    let wait = host.request_later(
        json!({"type":"wait_card","reader":rig.reader,"present":false,"timeout_ms":60000}),
    );
    let cancel = host.request_later(json!({"type":"cancel"}));
    let r = host.reply_to(wait);
    assert_eq!(r["code"], "user_cancelled", "{r}");
    let c = host.reply_to(cancel);
    assert_eq!(c["type"], "cancelled", "{c}");
    // Later waits run normally.
    let r = host.expect(
        json!({"type":"wait_card","reader":rig.reader,"timeout_ms":5000}),
        "card_event",
    );
    assert_eq!(r["present"], true);
}

#[test]
fn a_card_without_the_purse_is_unsupported() {
    let rig = Rig::without_purse(SLOT_1, "host-unsupported");
    let mut host = Host::spawn(rig.dir.path(), &[]);
    let r = host.expect_error(
        json!({"type":"card_info","reader":rig.reader}),
        "unsupported_card",
    );
    assert!(r["detail"].as_str().unwrap_or("").contains("6A82"), "{r}");
    host.expect_error(
        json!({"type":"open_session","purpose":"payment","reader":rig.reader,
               "payment":{"mode":"single","unit_amount":100,"max_units":1,"currency":978}}),
        "unsupported_card",
    );
    // The card is left as it was and the host serves on: a purse card works next.
    let status = host.expect(json!({"type":"status"}), "status");
    assert_eq!(status["session"], json!(null), "{status}");
}

//! Payments through the host against the SAM: a single purchase (also with a T=0 card),
//! a time-cycle up to its cap, and the guard at work: a foreign APDU, an INITIALIZE with a changed amount, a
//! tick beyond the cap, a DEBIT before any INITIALIZE, two sessions at once.

use purse::commands::{CardCommand, TickCmd};
use purse::sam::{Completion, Order, Sam};
use purse::surrogate::{MemoryJournal, Surrogate, SurrogateError};
use purse::{Amount, DateTime, Mac8, Rnd, Units};
use serde_json::json;
use testkit::{SLOT_0, SLOT_1};

use crate::harness::{Host, HostLink};
use crate::{pay, sam_keys, Rig};

const T0: u32 = 1_795_000_000;

fn apdu(host: &mut Host, session: &str, bytes: &[u8]) -> serde_json::Value {
    host.request(json!({"type":"apdu","session":session,"apdu":hex::encode(bytes)}))
}

#[test]
fn a_single_purchase_through_the_host() {
    let rig = Rig::new(SLOT_0, "host-single", 1, 10_000);
    let mut host = Host::spawn(rig.dir.path(), &[]);
    let hello = host.expect(
        json!({"type":"hello","protocol":1,"client":"test"}),
        "hello",
    );
    assert_eq!(hello["supported"], json!([1]));
    let info = host.expect(json!({"type":"card_info","reader":rig.reader}), "card_info");
    assert_eq!(info["card"]["balance"], 10_000);
    assert_eq!(info["card"]["balance_text"], "100.00 EUR");
    assert_eq!(info["card"]["currency_code"], "EUR");

    let session = host.open_payment(rig.reader, 1250);
    let status = host.expect(json!({"type":"status"}), "status");
    assert_eq!(status["session"]["session"], session.as_str());
    assert_eq!(status["pcsc"], "up");

    let mut sam = Sam::new(sam_keys());
    let mut journal = MemoryJournal::default();
    let mut s = Surrogate {
        sam: &mut sam,
        journal: &mut journal,
    };
    let mut link = HostLink::new(&mut host, &session);
    let p = s
        .purchase(
            &mut link,
            Order::single(Amount(1250)),
            Rnd([1; 16]),
            DateTime(T0),
        )
        .expect("purchase");
    assert_eq!(
        p.completion,
        Completion::Confirmed {
            units: Units(1),
            total: Amount(1250),
            balance_after: Amount(8750),
            finished: true
        }
    );
    assert!(link.errors.is_empty(), "{:?}", link.errors);
    assert_eq!(link.held.len(), 1, "the DEBIT answer is held");
    let held_id = link.held[0].clone();
    assert_eq!(rig.balance(), 8750);

    // The answer stays held until the extension says the shop has it.
    let held = host.expect(json!({"type":"held"}), "held");
    assert_eq!(held["responses"][0]["held_id"], held_id.as_str());
    assert_eq!(held["responses"][0]["command"], "debit");
    let acked = host.expect(json!({"type":"ack","held_id":held_id}), "acked");
    assert_eq!(acked["removed"], true);
    assert_eq!(
        host.expect(json!({"type":"held"}), "held")["responses"],
        json!([])
    );

    let closed = host.expect(
        json!({"type":"close_session","session":session}),
        "session_closed",
    );
    assert_eq!(closed["reason"], "closed");
    // Closed sessions take no more APDUs.
    host.expect_error(
        json!({"type":"apdu","session":session,"apdu":"00A4040007F0455055525345"}),
        "no_session",
    );
    assert!(host.wait_exit().success());
}

#[test]
fn a_time_cycle_ticks_up_to_its_cap_and_no_further() {
    let rig = Rig::new(SLOT_1, "host-time-cycle", 2, 5_000);
    let mut host = Host::spawn(rig.dir.path(), &[]);
    // One unit per second: with the host's 1 s tolerance unit 2 is due at once.
    let session = host.open_time_cycle(rig.reader, 200, 2, 1);
    let mut sam = Sam::new(sam_keys());
    let mut journal = MemoryJournal::default();
    let mut s = Surrogate {
        sam: &mut sam,
        journal: &mut journal,
    };
    let mut link = HostLink::new(&mut host, &session);
    let tc = s
        .purchase(
            &mut link,
            Order::time_cycle(Amount(200), Units(2), 1),
            Rnd([2; 16]),
            DateTime(T0),
        )
        .expect("time-cycle");
    assert!(matches!(
        tc.completion,
        Completion::Confirmed {
            units: Units(1),
            finished: false,
            ..
        }
    ));
    for k in 2..=2u16 {
        let c = s
            .tick(&mut link, tc.sam_tx_seq, DateTime(T0 + u32::from(k - 1)))
            .expect("tick");
        assert!(
            matches!(c, Completion::Confirmed { units, finished, .. } if units == Units(k) && finished == (k == 2)),
            "{c:?}"
        );
    }
    assert_eq!(link.held.len(), 2);
    assert_eq!(rig.balance(), 5_000 - 400);

    // A shop that goes on ticking: unit 3 is beyond what the shopper confirmed.
    let tick3 = CardCommand::Tick(TickCmd {
        k: Units(3),
        s2k: Mac8([0; 8]),
    })
    .encode();
    let r = apdu(link.host, &session, &tick3);
    assert_eq!(r["code"], "cap_exceeded", "{r}");
    assert_eq!(
        r["message"],
        "The shop asked for more than you confirmed. It was blocked and nothing more was charged."
    );
    assert_eq!(rig.balance(), 5_000 - 400);
}

#[test]
fn the_guard_blocks_foreign_apdus_and_changed_amounts() {
    let rig = Rig::new(SLOT_0, "host-guard", 3, 10_000);
    let mut host = Host::spawn(rig.dir.path(), &[]);
    let session = host.open_payment(rig.reader, 1000);

    // Other applications and other instructions never reach the card.
    for foreign in [
        "00A4040007A000000003101000", // SELECT of a payment-scheme AID
        "00B0000000",                 // READ BINARY
        "0084000008",                 // GET CHALLENGE
        "00A4040C07F045505552534500", // SELECT of the purse with P2 0C
        "",
    ] {
        let r = apdu(&mut host, &session, &hex::decode(foreign).unwrap());
        assert_eq!(r["code"], "command_not_allowed", "{foreign}: {r}");
    }
    // A DEBIT before any INITIALIZE.
    let debit = "80540000100000000100000001".to_string() + "0000000000000000";
    let r = apdu(&mut host, &session, &hex::decode(debit).unwrap());
    assert_eq!(r["code"], "command_not_allowed", "{r}");
    // Status-only INITIALIZE is for recovery sessions.
    let mut init00 = vec![0x80, 0x50, 0x00, 0x01, 0x1E];
    init00.extend_from_slice(&[0; 30]);
    let r = apdu(&mut host, &session, &init00);
    assert_eq!(r["code"], "command_not_allowed", "{r}");

    // The shop's SAM asks for 12.50 while the shopper confirmed 10.00.
    let mut sam = Sam::new(sam_keys());
    let mut journal = MemoryJournal::default();
    let mut s = Surrogate {
        sam: &mut sam,
        journal: &mut journal,
    };
    let mut link = HostLink::new(&mut host, &session);
    let e = s
        .purchase(
            &mut link,
            Order::single(Amount(1250)),
            Rnd([3; 16]),
            DateTime(T0),
        )
        .expect_err("the host refuses the INITIALIZE");
    assert!(matches!(e, SurrogateError::Refused(_)), "{e:?}");
    assert_eq!(link.errors, vec!["amount_mismatch"]);
    assert_eq!(rig.balance(), 10_000, "nothing was charged");

    // The confirmed amount goes through in the same session.
    let p = s
        .purchase(
            &mut link,
            Order::single(Amount(1000)),
            Rnd([4; 16]),
            DateTime(T0),
        )
        .expect("purchase");
    assert!(
        matches!(p.completion, Completion::Confirmed { .. }),
        "{p:?}"
    );
    assert_eq!(rig.balance(), 9_000);
    // And only once: a second purchase in this session is over the cap.
    let _ = s.purchase(
        &mut link,
        Order::single(Amount(1000)),
        Rnd([5; 16]),
        DateTime(T0),
    );
    assert_eq!(link.errors.last().map(String::as_str), Some("cap_exceeded"));
    assert_eq!(rig.balance(), 9_000);
}

#[test]
fn two_sessions_at_once_get_busy() {
    let rig = Rig::new(SLOT_1, "host-busy", 4, 1_000);
    let dir2 = rig.dir.join("second");
    std::fs::create_dir_all(&dir2).unwrap();
    let mut first = Host::spawn(rig.dir.path(), &[]);
    let mut second = Host::spawn(&dir2, &[]);
    let session = first.open_payment(rig.reader, 100);

    // A double click: the same host asked again, and a second host on the same card.
    first.expect_error(
        json!({"type":"open_session","purpose":"payment","reader":rig.reader,
               "payment":{"mode":"single","unit_amount":100,"max_units":1,"currency":978}}),
        "busy",
    );
    second.expect_error(
        json!({"type":"open_session","purpose":"recovery","recovery":{"nt":1},"reader":rig.reader}),
        "busy",
    );
    second.expect_error(json!({"type":"card_info","reader":rig.reader}), "busy");

    // Cancelled by the shopper: the card is free again.
    let c = first.expect(json!({"type":"cancel"}), "cancelled");
    assert_eq!(c["session"], session.as_str());
    let info = second.expect(json!({"type":"card_info","reader":rig.reader}), "card_info");
    assert_eq!(info["card"]["balance"], 1_000);
    let other = second.open_recovery(rig.reader, 1);
    second.expect(
        json!({"type":"close_session","session":other}),
        "session_closed",
    );
}

#[test]
fn a_card_in_another_currency_is_refused_at_open() {
    let rig = Rig::new(SLOT_0, "host-currency", 5, 1_000);
    let mut host = Host::spawn(rig.dir.path(), &[]);
    let r = host.expect_error(
        json!({"type":"open_session","purpose":"payment","reader":rig.reader,
               "payment":{"mode":"single","unit_amount":100,"max_units":1,"currency":840}}),
        "currency_mismatch",
    );
    assert!(r["detail"].as_str().unwrap().contains("EUR"), "{r}");
    // And an idle session lets go of the card by itself.
    let r = host.request(
        json!({"type":"open_session","purpose":"recovery","recovery":{"nt":1},"reader":rig.reader,
                                "idle_timeout_ms":300}),
    );
    assert_eq!(r["type"], "session_opened", "{r}");
    let closed = host.recv();
    assert_eq!(closed["type"], "session_closed", "{closed}");
    assert_eq!(closed["reason"], "timeout");
    assert!(closed.get("id").is_none(), "an event has no id");
}

#[test]
fn a_t0_card_pays_through_get_response() {
    // Every answer with data comes as 61xx: the host fetches it with GET RESPONSE.
    let rig = Rig::t0(SLOT_1, "host-t0", 0x30, 3_000);
    let mut host = Host::spawn(rig.dir.path(), &[]);
    let info = host.expect(json!({"type":"card_info","reader":rig.reader}), "card_info");
    assert_eq!(info["card"]["balance"], 3_000, "{info}");
    let p = pay(&mut host, rig.reader, &mut Sam::new(sam_keys()), 1250, 0x30);
    // The DEBIT's answer arrived whole (never a bare 61xx: "nothing debited").
    assert_eq!(
        p.completion,
        Completion::Confirmed {
            units: Units(1),
            total: Amount(1250),
            balance_after: Amount(1750),
            finished: true
        }
    );
    let held = host.expect(json!({"type":"held"}), "held");
    let response = held["responses"][0]["response"].as_str().expect("held");
    assert_eq!(response.len(), 2 * (20 + 2), "{held}");
    assert!(response.ends_with("9000"), "{held}");
    assert_eq!(rig.balance(), 1750);
}

//! `card_history`: the shopper's own card read by the host itself for the extension's
//! popup (SELECT and the proofs of the newest NTs, chosen by the host), on the real
//! stack: every shop's records, newest first, at most the card's 16; `busy` while any
//! session holds the card; `no_card` without one.

use purse::sam::Sam;
use purse::SamId;
use serde_json::{json, Value};
use testkit::{pcsc_context, wait_absent, SLOT_0};

use crate::harness::Host;
use crate::{pay, sam_keys, sam_keys_of, Rig, SAM_ID};

fn history(host: &mut Host, reader: &str) -> Value {
    host.expect(
        json!({"type":"card_history","reader":reader}),
        "card_history",
    )
}

#[test]
fn the_shoppers_own_history_is_read_by_the_host() {
    let rig = Rig::new(SLOT_0, "host-history", 0x31, 10_000);
    let mut host = Host::spawn(rig.dir.path(), &[]);

    let fresh = history(&mut host, rig.reader);
    assert_eq!(fresh["records"], json!([]), "{fresh}");
    assert_eq!(fresh["card"]["balance"], 10_000);
    assert_eq!(fresh["card"]["card_id"], "1000000000004e31");

    // 17 purchases at two shops: the card keeps the newest 16, the history shows them all.
    let other = SamId([0x5A, 0, 0, 0, 0, 0, 0, 9]);
    let mut ours = Sam::new(sam_keys());
    let mut theirs = Sam::new(sam_keys_of(other));
    let mut balance = 10_000;
    for i in 1..=17u32 {
        let sam = if i % 5 == 0 { &mut theirs } else { &mut ours };
        pay(&mut host, rig.reader, sam, 100 + i, i as u8);
        balance -= 100 + i;
    }
    let h = history(&mut host, rig.reader);
    assert_eq!(h["card"]["balance"], balance);
    assert_eq!(h["card"]["nt_last"], 17);
    let records = h["records"].as_array().expect("records");
    let nts: Vec<u64> = records.iter().map(|r| r["nt"].as_u64().unwrap()).collect();
    assert_eq!(
        nts,
        (2..=17).rev().collect::<Vec<u64>>(),
        "newest first, 16 kept"
    );
    assert_eq!(records[0]["balance_after"], balance);
    assert_eq!(
        records[0],
        json!({"nt":17,"sam_id":SAM_ID.to_hex(),"sam_tx_seq":records[0]["sam_tx_seq"],
               "datetime":1_795_300_000u32,"mode":"single","unit_amount":117,"units":1,
               "total":117,"balance_after":balance})
    );
    assert_eq!(
        records[2]["sam_id"],
        other.to_hex(),
        "NT 15 was the other shop's"
    );
    for pair in records.windows(2) {
        assert_eq!(
            pair[1]["balance_after"].as_u64().unwrap() - pair[0]["total"].as_u64().unwrap(),
            pair[0]["balance_after"].as_u64().unwrap(),
            "each record follows the one before"
        );
    }
    assert_eq!(rig.balance(), balance, "reading the history moved no money");

    // While a session of this host holds the card: busy; the session goes on.
    let session = host.open_payment(rig.reader, 50);
    host.expect_error(json!({"type":"card_history","reader":rig.reader}), "busy");
    host.expect(
        json!({"type":"close_session","session":session}),
        "session_closed",
    );

    // While another host's session holds the card: busy.
    let mut shop_side = Host::spawn(rig.dir.path(), &[]);
    let held = shop_side.open_payment(rig.reader, 50);
    host.expect_error(json!({"type":"card_history","reader":rig.reader}), "busy");
    shop_side.expect(
        json!({"type":"close_session","session":held}),
        "session_closed",
    );
    assert_eq!(history(&mut host, rig.reader)["records"], h["records"]);

    // No card: said so.
    rig.emu.remove();
    wait_absent(&pcsc_context(), rig.reader);
    host.expect_error(
        json!({"type":"card_history","reader":rig.reader}),
        "no_card",
    );

    // Nothing but the reader may be given: the host chooses every command itself.
    host.send_unchecked(&json!({"type":"card_history","id":"x","apdu":"805A00000400000001"}));
    assert_eq!(host.reply_to_text("x")["code"], "invalid_request");
}

//! Lost answers: the card pulled mid-payment (the host reports a failed exchange, ends
//! the session, and a recovery session lets the SAM prove the debit), and an answer that
//! reached the host but not the shop (held by the host, delivered again by a later host
//! process, released by `ack`).

use purse::commands::INS_DEBIT;
use purse::sam::{Completion, Exchange, Order, Outcome, Sam};
use purse::surrogate::{CardLink, LinkError, MemoryJournal, Surrogate};
use purse::{Amount, DateTime, Rnd, Units};
use serde_json::json;
use testkit::{pcsc_context, wait_absent, wait_present, SLOT_0, SLOT_1};

use crate::harness::{Host, HostLink};
use crate::{sam_keys, Rig};

const T0: u32 = 1_795_100_000;

#[test]
fn a_card_pulled_mid_payment_is_reported_and_recovered() {
    let rig = Rig::new(SLOT_1, "host-pulled", 6, 10_000);
    let mut host = Host::spawn(rig.dir.path(), &[]);
    let session = host.open_payment(rig.reader, 700);
    let mut sam = Sam::new(sam_keys());
    let mut journal = MemoryJournal::default();
    let mut s = Surrogate {
        sam: &mut sam,
        journal: &mut journal,
    };

    // The card debits, then leaves the reader before its answer.
    rig.emu.pull_after(INS_DEBIT);
    let mut link = HostLink::new(&mut host, &session);
    let lost = s
        .purchase(
            &mut link,
            Order::single(Amount(700)),
            Rnd([6; 16]),
            DateTime(T0),
        )
        .expect("a lost answer is not an error");
    assert_eq!(lost.completion, Completion::Lost);
    assert_eq!(link.errors, vec!["card_removed"]);
    // The session ended by itself, and the host is clean again.
    let event = host.recv();
    assert_eq!(event["type"], "session_closed", "{event}");
    assert_eq!(
        (event["session"].as_str(), event["reason"].as_str()),
        (Some(session.as_str()), Some("card_removed"))
    );
    let status = host.expect(json!({"type":"status"}), "status");
    assert_eq!(status["session"], serde_json::Value::Null);
    host.expect_error(
        json!({"type":"apdu","session":session,"apdu":"00A4040007F0455055525345"}),
        "no_session",
    );
    let ctx = pcsc_context();
    wait_absent(&ctx, rig.reader);
    host.expect_error(json!({"type":"card_info","reader":rig.reader}), "no_card");
    assert_eq!(rig.balance(), 9_300, "the card did debit");

    // Back in the reader: a recovery session moves no money, and proves the debit.
    rig.emu.insert();
    wait_present(&ctx, rig.reader);
    let nt = s.sam.tx(lost.sam_tx_seq).expect("the lost payment").nt;
    let rec = host.open_recovery(rig.reader, nt.0);
    let debit = format!("8054000010{}", "00".repeat(16));
    let r = host.request(json!({"type":"apdu","session":rec,"apdu":debit}));
    assert_eq!(r["code"], "command_not_allowed", "{r}");
    let mut link = HostLink::new(&mut host, &rec);
    let outcomes = s.recover(&mut link, Rnd([7; 16])).expect("recover");
    assert_eq!(outcomes, vec![(lost.sam_tx_seq, Outcome::Completed)]);
    assert!(link.errors.is_empty(), "{:?}", link.errors);
    host.expect(
        json!({"type":"close_session","session":rec}),
        "session_closed",
    );
    assert_eq!(rig.balance(), 9_300);
}

/// Relays through the host but loses the DEBIT's answer on the way back to the shop.
struct LosingLink<'a> {
    inner: HostLink<'a>,
}

impl CardLink for LosingLink<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, LinkError> {
        let answer = self.inner.transmit(apdu)?;
        if apdu.get(1) == Some(&INS_DEBIT) {
            return Err(LinkError("the shop's connection dropped".into()));
        }
        Ok(answer)
    }
}

#[test]
fn an_answer_lost_after_the_host_is_delivered_again() {
    let rig = Rig::new(SLOT_0, "host-held", 7, 2_000);
    let mut host = Host::spawn(rig.dir.path(), &[]);
    let session = host.open_payment(rig.reader, 450);
    let mut sam = Sam::new(sam_keys());
    let mut journal = MemoryJournal::default();
    let mut s = Surrogate {
        sam: &mut sam,
        journal: &mut journal,
    };
    let mut link = LosingLink {
        inner: HostLink::new(&mut host, &session),
    };
    let p = s
        .purchase(
            &mut link,
            Order::single(Amount(450)),
            Rnd([8; 16]),
            DateTime(T0),
        )
        .expect("purchase");
    assert_eq!(
        p.completion,
        Completion::Lost,
        "the shop never saw the answer"
    );
    let held_id = link
        .inner
        .held
        .first()
        .cloned()
        .expect("the host held the answer");
    // The browser goes away; the next host process still has the answer.
    assert!(host.wait_exit().success());
    let mut host = Host::spawn(rig.dir.path(), &[]);
    let held = host.expect(json!({"type":"held"}), "held");
    let responses = held["responses"].as_array().expect("responses");
    assert_eq!(responses.len(), 1, "{held}");
    let r = &responses[0];
    assert_eq!(r["held_id"], held_id.as_str());
    assert_eq!(r["session"], session.as_str());
    assert_eq!(r["nt"], 1);
    assert_eq!(r["k"], 1);
    assert!(r["command_apdu"]
        .as_str()
        .unwrap()
        .starts_with("8054000010"));
    let answer = hex::decode(r["response"].as_str().unwrap()).unwrap();
    let (completion, _durable) = s
        .sam
        .complete(p.sam_tx_seq, &Exchange::from_bytes(Some(&answer)))
        .expect("complete");
    assert_eq!(
        completion,
        Completion::Confirmed {
            units: Units(1),
            total: Amount(450),
            balance_after: Amount(1_550),
            finished: true
        }
    );
    assert_eq!(host.expect(json!({"type":"status"}), "status")["held"], 1);
    // An id the host never held (or already forgot) is harmless: nothing else goes.
    let unknown = host.expect(json!({"type":"ack","held_id":"0000000000000000"}), "acked");
    assert_eq!(unknown["removed"], false);
    let file = rig.dir.join("held.json");
    assert!(std::fs::read_to_string(&file).unwrap().contains(&held_id));
    let acked = host.expect(json!({"type":"ack","held_id":held_id}), "acked");
    assert_eq!(acked["removed"], true);
    // Acknowledged means gone from the file, not only from the list.
    let kept = std::fs::read_to_string(&file).unwrap();
    assert!(!kept.contains(&held_id), "{kept}");
    assert!(!kept.contains(r["response"].as_str().unwrap()), "{kept}");
    let again = host.expect(json!({"type":"ack","held_id":held_id}), "acked");
    assert_eq!(again["removed"], false);
    assert_eq!(
        host.expect(json!({"type":"held"}), "held")["responses"],
        json!([])
    );
}

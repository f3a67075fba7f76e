//! A hostile shop against the host's guard, on the real stack: TICKs sent the instant
//! the DEBIT is answered (the host holds them to the period the shopper confirmed), and
//! GET TRANSACTION PROOF used to read the card's log (other NTs, other shops' records,
//! in a payment session): refused, and no record of another shop leaves the host.

use std::time::{Duration, Instant};

use purse::commands::{CardCommand, InitializeCmd, TickCmd, TxRecord};
use purse::sam::{Completion, Order, Sam};
use purse::surrogate::{MemoryJournal, Surrogate};
use purse::{Amount, DateTime, Mac8, Mode, Nt, Rnd, SamId, Units};
use serde_json::{json, Value};
use testkit::{SLOT_0, SLOT_1, TEST_KV};

use crate::harness::{Host, HostLink};
use crate::{pay, sam_keys, sam_keys_of, Rig, SAM_ID};

const T0: u32 = 1_795_200_000;

fn apdu(host: &mut Host, session: &str, bytes: &[u8]) -> Value {
    host.request(json!({"type":"apdu","session":session,"apdu":hex::encode(bytes)}))
}

fn bogus_tick(k: u16) -> Vec<u8> {
    CardCommand::Tick(TickCmd {
        k: Units(k),
        s2k: Mac8([0; 8]),
    })
    .encode()
}

#[test]
fn ticks_sent_at_once_wait_for_the_confirmed_period() {
    let rig = Rig::new(SLOT_0, "host-hostile-ticks", 0x21, 5_000);
    let mut host = Host::spawn(rig.dir.path(), &[]);
    // The one rule for periods: 1 to 3600 s; an hour's session is held past the hour.
    let open = |period: u32| {
        json!({"type":"open_session","purpose":"payment","reader":rig.reader,
               "payment":{"mode":"time_cycle","unit_amount":200,"max_units":8,
                          "currency":978,"period_seconds":period}})
    };
    host.send_unchecked(&{
        let mut r = open(3601);
        r["id"] = json!("long");
        r
    });
    assert_eq!(host.reply_to_text("long")["code"], "invalid_request");
    let hour = host.expect(open(3600), "session_opened");
    assert_eq!(hour["idle_timeout_ms"], 3_660_000, "{hour}");
    host.expect(
        json!({"type":"close_session","session":hour["session"]}),
        "session_closed",
    );

    let session = host.open_time_cycle(rig.reader, 200, 8, 2);
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
            Order::time_cycle(Amount(200), Units(8), 2),
            Rnd([0x21; 16]),
            DateTime(T0),
        )
        .expect("time-cycle");
    // The host took the DEBIT's time no later than this.
    let debited = Instant::now();
    assert!(matches!(
        tc.completion,
        Completion::Confirmed {
            units: Units(1),
            ..
        }
    ));
    // The shop's reply carries TICK after TICK at once: none reaches the card.
    for k in 2..=8 {
        let r = apdu(link.host, &session, &bogus_tick(k));
        assert_eq!(r["code"], "too_early", "TICK {k}: {r}");
        assert_eq!(
            r["message"],
            "The shop asked for the next unit before its time was up. It was blocked and nothing more was charged."
        );
    }
    assert_eq!(rig.balance(), 5_000 - 200, "one unit only");
    // Had a bogus TICK reached the card, its 6982 would have ended the card's session:
    // the shop's real TICK 2, once due (2 s after the DEBIT, less the host's 1 s
    // tolerance), still passes. Waiting here is the period under test, not a condition.
    std::thread::sleep(
        (debited + Duration::from_secs(1)).saturating_duration_since(Instant::now()),
    );
    let c = s
        .tick(&mut link, tc.sam_tx_seq, DateTime(T0 + 2))
        .expect("tick 2");
    assert!(
        matches!(
            c,
            Completion::Confirmed {
                units: Units(2),
                ..
            }
        ),
        "{c:?}"
    );
    // Unit 3 is due two periods after the DEBIT, not one after unit 2.
    let r = apdu(link.host, &session, &bogus_tick(3));
    assert_eq!(r["code"], "too_early", "{r}");
    assert_eq!(rig.balance(), 5_000 - 400);
}

fn status_initialize(sam_id: SamId) -> Vec<u8> {
    CardCommand::Initialize(InitializeCmd {
        mode: Mode::StatusOnly,
        kv: TEST_KV,
        sam_id,
        rnd_s: Rnd([9; 16]),
        u: Amount(0),
        max_units: Units(0),
    })
    .encode()
}

fn proof(nt: u32) -> Vec<u8> {
    CardCommand::GetProof { nt: Nt(nt) }.encode()
}

#[test]
fn a_shop_reads_no_record_but_the_one_its_recovery_is_about() {
    let rig = Rig::new(SLOT_1, "host-hostile-proofs", 0x22, 10_000);
    let mut host = Host::spawn(rig.dir.path(), &[]);
    // The card's log: NT 1 and 3 at this shop, NT 2 at another shop.
    let mut ours = Sam::new(sam_keys());
    let other_id = SamId([0x0B, 0, 0, 0, 0, 0, 0, 9]);
    let mut theirs = Sam::new(sam_keys_of(other_id));
    pay(&mut host, rig.reader, &mut ours, 100, 1);
    pay(&mut host, rig.reader, &mut theirs, 2_500, 2);
    pay(&mut host, rig.reader, &mut ours, 300, 3);
    assert_eq!(rig.emu.status().nt_last, 3);

    // A payment session reads no record at all.
    let session = host.open_payment(rig.reader, 100);
    for nt in 1..=3 {
        let r = apdu(&mut host, &session, &proof(nt));
        assert_eq!(r["code"], "proof_not_allowed", "{r}");
    }
    host.expect(
        json!({"type":"close_session","session":session}),
        "session_closed",
    );

    // A recovery of NT 3: nothing before the card's NT is known, then NT 3 only.
    let rec = host.open_recovery(rig.reader, 3);
    assert_eq!(
        apdu(&mut host, &rec, &proof(3))["code"],
        "proof_not_allowed"
    );
    let init = apdu(&mut host, &rec, &status_initialize(SAM_ID));
    assert_eq!(init["type"], "apdu", "{init}");
    for nt in [0, 1, 2, 4, u32::MAX] {
        let r = apdu(&mut host, &rec, &proof(nt));
        assert_eq!(r["code"], "proof_not_allowed", "NT {nt}: {r}");
        assert!(r.get("response").is_none());
    }
    let r = apdu(&mut host, &rec, &proof(3));
    assert_eq!(r["type"], "apdu", "{r}");
    let answer = hex::decode(r["response"].as_str().expect("response")).expect("hex");
    let (record, sw) = answer.split_at(answer.len() - 2);
    assert_eq!(sw, [0x90, 0]);
    let record = TxRecord::parse(record).expect("a record");
    assert_eq!((record.nt, record.sam_id), (Nt(3), SAM_ID));
    host.expect(
        json!({"type":"close_session","session":rec}),
        "session_closed",
    );

    // A recovery "of NT 2" by this shop: the card holds another shop's record there,
    // read but withheld.
    let rec = host.open_recovery(rig.reader, 2);
    apdu(&mut host, &rec, &status_initialize(SAM_ID));
    let r = apdu(&mut host, &rec, &proof(2));
    assert_eq!(r["code"], "proof_not_allowed", "{r}");
    assert!(
        !r.to_string().contains(&hex::encode_upper(other_id.0)),
        "the other shop's SAM ID never leaves the host: {r}"
    );
    // The session goes on: the host withheld an answer, the card did nothing wrong.
    let r = apdu(&mut host, &rec, &CardCommand::select().encode());
    assert_eq!(r["type"], "apdu", "{r}");
    host.expect(
        json!({"type":"close_session","session":rec}),
        "session_closed",
    );
    assert_eq!(rig.balance(), 10_000 - 2_900);
}

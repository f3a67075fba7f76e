//! The purse end to end on the real PC/SC stack: pcscd, vsmartcard's vpcd, the card
//! emulator (in this process, from `card-emulators`), the `pcsc` crate, and the SAM of
//! `purse`. A single purchase, a time-cycle up to its cap, a lost DEBIT answer recovered,
//! an undelivered DEBIT voided, the close of the period, and the issuer tool accepting
//! the batch and rejecting a tampered copy.
//! The `pcsc-pay` demo (the README's main job) is run the same way.

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::Duration;

use purse::commands::INS_DEBIT;
use purse::keys::{IssuerKeys, SamKeys};
use purse::sam::{Completion, Order, Outcome, Sam, SamError};
use purse::surrogate::{Journal, MemoryJournal, Surrogate, SurrogateError};
use purse::{Amount, CardId, Currency, DateTime, Rnd, SamId, SamTxSeq, Units};
use purse_issuer::files::write_atomic;
use purse_issuer::pcsc_link::{establish, wait_for_card, PcscLink};
use testkit::{
    new_card_state, read_card_state, test_master_keys, write_card_state, Emulator, SlotLock,
    TestDir, SLOT_1, TEST_KV,
};

const T0: u32 = 1_795_000_000;
const WAIT: Duration = Duration::from_secs(10);

fn issuer() -> IssuerKeys {
    let mut versions = BTreeMap::new();
    versions.insert(TEST_KV, test_master_keys());
    IssuerKeys { versions }
}

fn sam_keys() -> SamKeys {
    SamKeys::issue(
        &issuer(),
        SamId([0x5A, 0, 0, 0, 0, 0, 0, 1]),
        Currency::EUR,
        TEST_KV,
        &[TEST_KV],
    )
    .expect("SAM keys")
}

fn connect(reader: &str) -> PcscLink {
    let ctx = establish().unwrap_or_else(|e| panic!("{e}"));
    wait_for_card(&ctx, reader, true, WAIT).unwrap_or_else(|e| panic!("{e}"));
    PcscLink::connect(&ctx, reader).unwrap_or_else(|e| panic!("{e}"))
}

fn wait_absent(reader: &str) {
    let ctx = establish().unwrap_or_else(|e| panic!("{e}"));
    wait_for_card(&ctx, reader, false, WAIT).unwrap_or_else(|e| panic!("{e}"));
}

fn rnd(n: u8) -> Rnd {
    Rnd([n; 16])
}

fn issuer_tool(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_purse-issuer"))
        .args(args)
        .output()
        .expect("running purse-issuer")
}

#[test]
fn purchases_recovery_settlement_and_clearing_through_pcscd() {
    let lock = SlotLock::acquire(SLOT_1);
    let reader = lock.slot().reader;
    let dir = TestDir::new("purchase-pcsc");
    let card_file = dir.join("card.json");
    write_card_state(
        &card_file,
        &new_card_state(CardId([0x10, 0, 0, 0, 0, 0, 0, 7]), Amount(10_000)),
    );
    let emu = Emulator::in_process(&lock, &card_file, true);
    let mut sam = Sam::new(sam_keys());
    let mut journal = MemoryJournal::default();
    let mut link = connect(reader);
    let mut s = Surrogate {
        sam: &mut sam,
        journal: &mut journal,
    };

    // A single purchase: the card file holds the new balance before the answer came.
    let p = s
        .purchase(&mut link, Order::single(Amount(1250)), rnd(1), DateTime(T0))
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
    assert_eq!(read_card_state(&card_file).balance, Amount(8750));

    // A time-cycle of 2.00 per minute, up to 4 units; the shop's clock makes units due.
    let tc = s
        .purchase(
            &mut link,
            Order::time_cycle(Amount(200), Units(4), 60),
            rnd(2),
            DateTime(T0 + 100),
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
    assert!(matches!(
        s.tick(&mut link, tc.sam_tx_seq, DateTime(T0 + 159)),
        Err(SurrogateError::Sam(SamError::NotDue { .. }))
    ));
    for k in 2..=4u16 {
        let c = s
            .tick(
                &mut link,
                tc.sam_tx_seq,
                DateTime(T0 + 100 + 60 * u32::from(k - 1)),
            )
            .expect("tick");
        assert!(
            matches!(c, Completion::Confirmed { units, finished, .. } if units == Units(k) && finished == (k == 4))
        );
    }
    assert!(matches!(
        s.tick(&mut link, tc.sam_tx_seq, DateTime(T0 + 1000)),
        Err(SurrogateError::Sam(SamError::NotRunning(_)))
    ));
    assert_eq!(read_card_state(&card_file).balance, Amount(7950));

    // The card debits, then leaves the reader before answering: a lost answer.
    emu.pull_after(INS_DEBIT);
    let lost = s
        .purchase(
            &mut link,
            Order::single(Amount(300)),
            rnd(3),
            DateTime(T0 + 500),
        )
        .expect("lost");
    assert_eq!(lost.completion, Completion::Lost);
    wait_absent(reader);
    assert_eq!(
        read_card_state(&card_file).balance,
        Amount(7650),
        "the card did debit"
    );
    emu.insert();
    let mut link = connect(reader);
    let outcomes = s.recover(&mut link, rnd(4)).expect("recover");
    assert_eq!(outcomes, vec![(lost.sam_tx_seq, Outcome::Completed)]);

    // The card leaves before the DEBIT reaches it: recovery finds nothing debited.
    emu.pull_before(INS_DEBIT);
    let undelivered = s
        .purchase(
            &mut link,
            Order::single(Amount(100)),
            rnd(5),
            DateTime(T0 + 600),
        )
        .expect("lost");
    assert_eq!(undelivered.completion, Completion::Lost);
    wait_absent(reader);
    emu.insert();
    let mut link = connect(reader);
    assert_eq!(
        s.recover(&mut link, rnd(6)).expect("recover"),
        vec![(undelivered.sam_tx_seq, Outcome::Voided)]
    );
    assert_eq!(read_card_state(&card_file).balance, Amount(7650));
    drop(link);
    emu.stop();

    // Close the period and clear the batch with the issuer tool.
    let close = sam.close_period("2026-11-24T23:59:00Z".into());
    journal.store(&close.durable).expect("journal");
    let seqs: Vec<SamTxSeq> = close
        .batch
        .transactions
        .iter()
        .map(|t| t.sam_tx_seq)
        .collect();
    assert_eq!(seqs, vec![SamTxSeq(1), SamTxSeq(2), SamTxSeq(3)]);
    assert_eq!(close.batch.totals.sum.0, 1250 + 800 + 300);
    assert!(close.batch.unresolved.is_empty());

    let keys = dir.join("issuer.json");
    write_atomic(&keys, issuer().to_json().expect("json").as_bytes(), 0o600).expect("keys");
    let batch = dir.join("batch.json");
    let json = serde_json::to_string_pretty(&close.batch).expect("json");
    write_atomic(&batch, json.as_bytes(), 0o644).expect("batch");
    let state = dir.join("clearing.json");
    let clear = |b: &std::path::Path| {
        issuer_tool(&[
            "clear".as_ref(),
            "--keys".as_ref(),
            keys.as_os_str(),
            "--state".as_ref(),
            state.as_os_str(),
            b.as_os_str(),
        ])
    };
    let ok = clear(&batch);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let tampered = dir.join("tampered.json");
    let mut t = close.batch.clone();
    t.close_seq = purse::CloseSeq(2);
    t.transactions[0].total = Amount(125);
    write_atomic(
        &tampered,
        serde_json::to_string(&t).expect("json").as_bytes(),
        0o644,
    )
    .expect("write");
    let before = std::fs::read(&state).expect("state");
    let bad = clear(&tampered);
    assert_eq!(bad.status.code(), Some(1));
    let out = String::from_utf8_lossy(&bad.stdout);
    for code in [
        "E_TRMAC",
        "E_JOURNAL",
        "E_TAC",
        "E_TOTAL",
        "E_SUM",
        "E_DUPLICATE",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(code)),
            "{code} missing in:\n{out}"
        );
    }
    assert_eq!(
        std::fs::read(&state).expect("state"),
        before,
        "a rejected batch changes nothing"
    );
}

#[test]
fn the_demo_pays_recovers_and_settles() {
    let lock = SlotLock::acquire(SLOT_1);
    let dir = TestDir::new("pcsc-pay-demo");
    let card_file = dir.join("card.json");
    write_card_state(
        &card_file,
        &new_card_state(CardId([0x10, 0, 0, 0, 0, 0, 0, 8]), Amount(10_000)),
    );
    let emu = Emulator::in_process(&lock, &card_file, true);
    let sam = dir.join("sam.json");
    write_atomic(&sam, sam_keys().to_json().expect("json").as_bytes(), 0o600).expect("sam keys");
    let batch = dir.join("batch.json");
    let out = Command::new(env!("CARGO_BIN_EXE_pcsc-pay"))
        .arg("--sam-keys")
        .arg(&sam)
        .args(["--reader", lock.slot().reader, "--control"])
        .arg(card_file.with_extension("ctl"))
        .arg("--journal")
        .arg(dir.join("journal.jsonl"))
        .arg("--batch-out")
        .arg(&batch)
        .output()
        .expect("running pcsc-pay");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("recovery of SAM_TxSeq 3: Completed"),
        "{stdout}"
    );
    emu.stop();
    // 12.50 + 3 x 2.00 + 3.00 left the card; the batch says the same.
    assert_eq!(
        read_card_state(&card_file).balance,
        Amount(10_000 - 1250 - 600 - 300)
    );
    let b: purse::settlement::Batch =
        serde_json::from_str(&std::fs::read_to_string(&batch).expect("batch")).expect("batch json");
    assert_eq!((b.totals.count, b.totals.sum.0), (3, 2150));
    // The journal has a line per durable record, each a JSON object.
    let journal = std::fs::read_to_string(dir.join("journal.jsonl")).expect("journal");
    assert!(journal.lines().count() >= 8);
    assert!(journal
        .lines()
        .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
}

//! The SAM card emulator on the real PC/SC stack: `sam-emulator` in reader "Virtual PCD
//! 00 00", `card-emulator` in "Virtual PCD 00 01", both driven through pcscd by a test
//! host (`sam_host`). Payments (a single purchase, a time-cycle with a tick, a lost
//! DEBIT answer recovered) and the close, whose batch the clearing checks accept; the SAM
//! killed between AUTHORIZE and COMPLETE and restarted from its file; an old SAM card
//! (file and journal) restored (the rollback the SAM detects).
//!
//! Needs a running pcscd with the vpcd driver (scripts/test-all starts one).

mod sam_host;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use purse::clearing::{verify, ClearingState};
use purse::commands::INS_DEBIT;
use purse::sam::Order;
use purse::sam_applet::TX_BLOCK;
use purse::{Amount, CardId, DateTime, SamId, Units};
use sam_host::{authorize, purchase, recover, CardLink, Expect, Outcome, SamLink};
use testkit::*;

const CARD_EMULATOR: &str = env!("CARGO_BIN_EXE_card-emulator");
const SAM_EMULATOR: &str = env!("CARGO_BIN_EXE_sam-emulator");
const SAM_ID: SamId = SamId([0x5A, 0, 0, 0, 0, 0, 0, 0x51]);
const T0: u32 = 1_795_000_000;

/// Both slots (SAM in slot 0, card in slot 1, always locked in that order), a SAM card
/// file and a purse card file with `balance`.
struct Rig {
    // Drop order: emulators leave before their slots are unlocked.
    sam_lock: SlotLock,
    card_lock: SlotLock,
    dir: TestDir,
}

impl Rig {
    fn new(name: &str, card_last: u8, balance: u32) -> Rig {
        let sam_lock = SlotLock::acquire(SLOT_0);
        let card_lock = SlotLock::acquire(SLOT_1);
        let dir = TestDir::new(name);
        write_sam_card(&dir.join("sam.json"), &new_sam_card_state(SAM_ID));
        write_card_state(
            &dir.join("card.json"),
            &new_card_state(
                CardId([0x10, 0, 0, 0, 0, 0, 0x51, card_last]),
                Amount(balance),
            ),
        );
        Rig {
            sam_lock,
            card_lock,
            dir,
        }
    }

    fn sam_file(&self) -> std::path::PathBuf {
        self.dir.join("sam.json")
    }

    fn start_sam(&self) -> Emulator {
        Emulator::spawn(SAM_EMULATOR, &self.sam_lock, &self.sam_file())
    }

    fn start_card(&self) -> Emulator {
        Emulator::spawn(CARD_EMULATOR, &self.card_lock, &self.dir.join("card.json"))
    }
}

#[test]
fn purchase_time_cycle_lost_answer_and_close_through_the_sam_emulator() {
    let rig = Rig::new("sam-pcsc-pay", 1, 10_000);
    let sam_emu = rig.start_sam();
    let card_emu = rig.start_card();
    let mut sam = SamLink::connect(SLOT_0.reader);
    let mut card = CardLink::connect(SLOT_1.reader);
    let mut records = Vec::new();

    // A single purchase: BEGIN, AUTHORIZE, COMPLETE.
    let before = sam.round_trips;
    let one = purchase(
        &mut sam,
        &mut card,
        &Order::single(Amount(250)),
        DateTime(T0),
    )
    .expect("purchase")
    .counted();
    assert_eq!(
        sam.round_trips - before,
        3,
        "three SAM commands per purchase"
    );
    assert_eq!(one.seq().0, 1);
    records.push(one);

    // A time-cycle of two units: the first on DEBIT, the second on a TICK when due.
    let order = Order::time_cycle(Amount(30), Units(2), 60);
    let (debit, ctx, _) = authorize(&mut sam, &mut card, &order, DateTime(T0 + 10)).expect("auth");
    let answer = card.debit(&debit).expect("DEBIT");
    let Outcome::Running(ctx) = sam.complete(&answer, &ctx).expect("first unit") else {
        panic!("a time-cycle below its cap runs on");
    };
    assert_eq!(
        sam.tick(DateTime(T0 + 69), &ctx),
        Err(0x6986),
        "not due yet"
    );
    let (tick, ctx) = sam.tick(DateTime(T0 + 70), &ctx).expect("tick");
    let answer = card.tick(&tick).expect("TICK");
    let cycle = sam.complete(&answer, &ctx).expect("second unit").counted();
    assert_eq!(cycle.batch_tx().expect("record").total, Amount(60));
    records.push(cycle);

    // A DEBIT whose answer is lost (the card leaves after debiting), then recovered.
    let (debit, ctx, nt) = authorize(
        &mut sam,
        &mut card,
        &Order::single(Amount(120)),
        DateTime(T0 + 100),
    )
    .expect("auth");
    card_emu.pull_after(INS_DEBIT);
    let lost = card.debit(&debit).expect_err("the answer is lost");
    assert!(is_card_removed(&lost), "{lost}");
    card_emu.insert();
    card.reconnect();
    let recovered = recover(&mut sam, &mut card, &ctx, nt)
        .expect("recovery")
        .counted();
    assert_eq!(recovered.batch_tx().expect("record").total, Amount(120));
    records.push(recovered);
    assert_eq!(card.select().balance, Amount(10_000 - 250 - 60 - 120));

    // The state went to the SAM card file before the answers: 0600, counters moved.
    let file = rig.sam_file();
    assert_eq!(
        fs::metadata(&file).expect("sam file").permissions().mode() & 0o777,
        0o600
    );
    let stored = read_sam_card(&file);
    assert_eq!((stored.next_tx_seq.0, stored.period.count), (4, 3));
    assert_eq!(sam_emu.status_value("next_tx_seq"), "4");

    // The close: the SAM signs the totals it counted; the clearing checks accept it.
    let batch = sam.close(1, &records).expect("close");
    assert_eq!(batch.totals.count, 3);
    assert_eq!(batch.totals.sum.0, 430);
    let problems = verify(&batch, &test_issuer_keys(), &ClearingState::default());
    assert!(problems.is_empty(), "{problems:?}");
    // A forged record in the stream is refused by its tag.
    let mut forged = records[0].clone();
    forged.rec[40] ^= 1;
    assert!(sam.close(2, &[forged]).is_err());

    card_emu.stop();
    sam_emu.stop();
}

#[test]
fn sam_killed_between_authorize_and_complete_restarts_from_its_file() {
    let rig = Rig::new("sam-pcsc-kill", 2, 5_000);
    let mut sam_emu = rig.start_sam();
    let card_emu = rig.start_card();
    let mut sam = SamLink::connect(SLOT_0.reader);
    let mut card = CardLink::connect(SLOT_1.reader);
    let mut records = Vec::new();

    // A: the card answered; the SAM dies before COMPLETE; after the restart the kept
    // answer completes the payment.
    let (debit, ctx, _) = authorize(
        &mut sam,
        &mut card,
        &Order::single(Amount(100)),
        DateTime(T0),
    )
    .expect("auth");
    let answer = card.debit(&debit).expect("DEBIT");
    sam_emu.kill();
    sam_emu = rig.start_sam();
    sam.reconnect();
    let a = sam.complete(&answer, &ctx).expect("complete").counted();
    assert_eq!(a.seq().0, 1);
    // Sent again (as after a lost answer): the same record and tag, counted once.
    let again = sam.complete(&answer, &ctx).expect("sent again").counted();
    assert_eq!(again, a);
    assert_eq!(sam.status().period_count, 1, "counted once");
    records.push(a);

    // B: the SAM dies after AUTHORIZE and the DEBIT's answer is lost with it: recovery
    // on the restarted SAM completes it from the card's proof.
    let (debit, ctx, nt) = authorize(
        &mut sam,
        &mut card,
        &Order::single(Amount(200)),
        DateTime(T0 + 5),
    )
    .expect("auth");
    // After the restart numbering resumed after the block SAM_TxSeq 1 opened.
    assert_eq!(sam.status().next_tx_seq.0, TX_BLOCK + 2);
    sam_emu.kill();
    let _lost = card.debit(&debit).expect("DEBIT reaches the card");
    sam_emu = rig.start_sam();
    sam.reconnect();
    let b = recover(&mut sam, &mut card, &ctx, nt)
        .expect("recovery")
        .counted();
    assert_eq!(b.seq().0, TX_BLOCK + 1);
    records.push(b);

    // No SAM_TxSeq reused after the restarts: the numbers left in each block reserved
    // before a restart are an allowed gap.
    let c = purchase(
        &mut sam,
        &mut card,
        &Order::single(Amount(50)),
        DateTime(T0 + 9),
    )
    .expect("purchase")
    .counted();
    assert_eq!(c.seq().0, 2 * TX_BLOCK + 1);
    records.push(c);

    let batch = sam.close(1, &records).expect("close");
    assert_eq!((batch.totals.count, batch.totals.sum.0), (3, 350));
    let problems = verify(&batch, &test_issuer_keys(), &ClearingState::default());
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(card.select().balance, Amount(5_000 - 350));

    card_emu.stop();
    sam_emu.stop();
}

#[test]
fn a_restored_old_sam_card_file_is_detected() {
    let rig = Rig::new("sam-pcsc-rollback", 3, 5_000);
    let sam_emu = rig.start_sam();
    let card_emu = rig.start_card();
    let mut sam = SamLink::connect(SLOT_0.reader);
    let mut card = CardLink::connect(SLOT_1.reader);

    purchase(
        &mut sam,
        &mut card,
        &Order::single(Amount(100)),
        DateTime(T0),
    )
    .expect("purchase")
    .counted();
    // A backup of the SAM card: its file and its journal, taken together.
    let journal = card_emulators::sam_store::journal_path(&rig.sam_file());
    let old = fs::read(rig.sam_file()).expect("SAM card");
    let old_journal = fs::read(&journal).expect("SAM journal");
    // Purchases up to the first of the next SAM_TxSeq block (reserved in the file).
    let (answer, ctx) = loop {
        let (debit, ctx, _) = authorize(
            &mut sam,
            &mut card,
            &Order::single(Amount(1)),
            DateTime(T0 + 1),
        )
        .expect("auth");
        let answer = card.debit(&debit).expect("DEBIT");
        if sam.status().next_tx_seq.0 > TX_BLOCK + 1 {
            break (answer, ctx);
        }
        sam.complete(&answer, &ctx).expect("complete");
    };
    sam_emu.stop();

    // The old copy back in place (as a backup restore would do), the SAM restarted.
    fs::write(rig.sam_file(), &old).expect("restore");
    fs::write(&journal, &old_journal).expect("restore");
    let sam_emu = rig.start_sam();
    sam.reconnect();
    assert_eq!(
        sam.status().next_tx_seq.0,
        TX_BLOCK + 1,
        "the counter went back"
    );
    // The context of the next block comes from the SAM's "future": blocked for good.
    assert_eq!(sam.complete(&answer, &ctx), Err(0x6983));
    assert!(sam.status().blocked);
    assert_eq!(
        sam.begin(&Order::single(Amount(1))),
        Err(0x6983),
        "no money command works"
    );
    assert!(
        read_sam_card(&rig.sam_file()).blocked,
        "and it is persisted"
    );
    assert_eq!(sam_emu.status_value("blocked"), "true");

    card_emu.stop();
    sam_emu.stop();
}

#[test]
fn a_sam_card_file_others_can_read_is_refused() {
    let dir = TestDir::new("sam-pcsc-mode");
    let file = dir.join("sam.json");
    write_sam_card(&file, &new_sam_card_state(SAM_ID));
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = std::process::Command::new(SAM_EMULATOR)
        .arg("--card")
        .arg(&file)
        .output()
        .expect("sam-emulator runs");
    assert_eq!(out.status.code(), Some(1));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("chmod 600"), "{e}");
}

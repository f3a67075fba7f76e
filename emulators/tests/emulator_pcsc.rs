//! The card emulator through the real PC/SC stack (pcscd + vpcd): the card appears in
//! the reader with our ATR and answers SELECT with its FCI; remove/insert; a debit is
//! persisted 0600 and survives a restart; pulls before and after a DEBIT; an external
//! PC/SC client (`scriptor` from pcsc-tools); the APDU round-trip time (printed).
//!
//! Needs a running pcscd with the vpcd driver (scripts/test-all starts one): without it
//! these tests fail, they do not skip.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Instant;

use card_emulators::atr::ATR;
use purse::commands::{
    CardCommand, DebitCmd, DebitResponse, InitializeCmd, InitializeResponse, SelectInfo, TxRecord,
};
use purse::macs::{self, SessionParams};
use purse::{Amount, CardId, DateTime, Mode, Nt, Rnd, SamId, SamTxSeq, Units, APP_VERSION};
use testkit::*;

/// The binary under test (these tests exercise the process, signals included).
const CARD_EMULATOR: &str = env!("CARGO_BIN_EXE_card-emulator");

const SAM_ID: SamId = SamId([0x5A, 0x4D, 0, 0, 0, 0, 0, 1]);
const INS_DEBIT: u8 = 0x54;

/// A card file with `balance` in a fresh test directory.
fn card_file(dir: &TestDir, id_last: u8, balance: u32) -> (std::path::PathBuf, CardId) {
    let id = CardId([0xC0, 0xFF, 0xEE, 0, 0, 0, 0, id_last]);
    let path = dir.join("card.json");
    write_card_state(&path, &new_card_state(id, Amount(balance)));
    (path, id)
}

/// SELECT + INITIALIZE (single purchase of `u`), then the DEBIT command with a valid S2
/// computed from the card's K_PUR, as a SAM would.
fn initialize_and_build_debit(card: &pcsc::Card, id: CardId, u: u32, seq: u32) -> Vec<u8> {
    let info = select_purse(card);
    let init = InitializeCmd {
        mode: Mode::Single,
        kv: info.kv,
        sam_id: SAM_ID,
        rnd_s: Rnd([0x42; 16]),
        u: Amount(u),
        max_units: Units(1),
    };
    let r = transmit(card, &CardCommand::Initialize(init.clone()).encode()).expect("INITIALIZE");
    let (data, sw) = split_sw(&r);
    assert_eq!(sw, 0x9000, "INITIALIZE answered {sw:04X}");
    let resp = InitializeResponse::parse(data).expect("INITIALIZE response");
    let k_pur = test_master_keys().k_pur(id);
    let ks = macs::session_key(&k_pur, id, resp.nt, SAM_ID, &init.rnd_s, &resp.rnd_c);
    let params = SessionParams {
        card_id: id,
        nt: resp.nt,
        sam_id: SAM_ID,
        mode: init.mode,
        u: init.u,
        max_units: init.max_units,
    };
    let (seq, when) = (SamTxSeq(seq), DateTime(1_790_000_000));
    let s2 = macs::s2(&ks, &params, seq, when);
    CardCommand::Debit(DebitCmd {
        sam_tx_seq: seq,
        datetime: when,
        s2,
    })
    .encode()
}

#[test]
fn card_appears_with_our_atr_and_select_returns_the_fci() {
    let lock = SlotLock::acquire(SLOT_0);
    let dir = TestDir::new("emu-select");
    let (path, id) = card_file(&dir, 1, 5000);
    let _emu = Emulator::spawn(CARD_EMULATOR, &lock, &path);
    let ctx = pcsc_context();
    wait_present(&ctx, SLOT_0.reader);
    let card = connect(&ctx, SLOT_0.reader);
    let status = card.status2_owned().expect("SCardStatus");
    assert_eq!(status.atr(), &ATR[..]);
    let info = select_purse(&card);
    assert_eq!(
        info,
        SelectInfo {
            app_version: APP_VERSION,
            kv: TEST_KV,
            card_id: id,
            currency: purse::Currency::EUR,
            balance: Amount(5000),
            nt_last: Nt(0),
        }
    );
}

#[test]
fn apdu_round_trip_latency() {
    let lock = SlotLock::acquire(SLOT_1);
    let dir = TestDir::new("emu-latency");
    let (path, _) = card_file(&dir, 2, 100);
    let _emu = Emulator::spawn(CARD_EMULATOR, &lock, &path);
    let ctx = pcsc_context();
    wait_present(&ctx, SLOT_1.reader);
    let card = connect(&ctx, SLOT_1.reader);
    let select = CardCommand::select().encode();
    select_purse(&card); // Warm-up.
    let mut times: Vec<f64> = (0..300)
        .map(|_| {
            let t = Instant::now();
            let r = transmit(&card, &select).expect("SELECT");
            let dt = t.elapsed().as_secs_f64() * 1e3;
            assert_eq!(split_sw(&r).1, 0x9000);
            dt
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    let (median, p99) = (times[times.len() / 2], times[times.len() * 99 / 100]);
    // Printed, not asserted: machines differ. ~0.2 ms is healthy; ~40+ ms means the
    // TCP_NODELAY/TCP_QUICKACK settings are not in effect.
    eprintln!(
        "APDU round trip through pcscd: median {median:.3} ms, mean {mean:.3} ms, \
         p99 {p99:.3} ms over {} SELECTs",
        times.len()
    );
}

#[test]
fn remove_and_insert_follow_the_control_socket_and_signals() {
    let lock = SlotLock::acquire(SLOT_1);
    let dir = TestDir::new("emu-insert");
    let (path, id) = card_file(&dir, 3, 700);
    let emu = Emulator::spawn_with(CARD_EMULATOR, &lock, &path, &["--removed"]);
    let ctx = pcsc_context();
    let st = emu.status();
    assert!(!st.inserted && !st.connected, "{st:?}");
    wait_absent(&ctx, SLOT_1.reader);

    emu.insert();
    wait_present(&ctx, SLOT_1.reader);
    assert_eq!(select_purse(&connect(&ctx, SLOT_1.reader)).card_id, id);
    assert!(emu.status().connected);

    emu.remove();
    wait_absent(&ctx, SLOT_1.reader);
    let st = emu.status();
    assert!(!st.inserted && !st.connected, "{st:?}");

    emu.insert();
    wait_present(&ctx, SLOT_1.reader);
    assert_eq!(
        select_purse(&connect(&ctx, SLOT_1.reader)).balance,
        Amount(700)
    );

    // SIGUSR1 removes, SIGUSR2 inserts.
    let signal = |sig| {
        // SAFETY: kill(2) on the emulator child we own.
        assert_eq!(unsafe { libc::kill(emu.pid() as libc::pid_t, sig) }, 0);
    };
    signal(libc::SIGUSR1);
    wait_absent(&ctx, SLOT_1.reader);
    signal(libc::SIGUSR2);
    wait_present(&ctx, SLOT_1.reader);
    emu.stop();
}

#[test]
fn debit_is_persisted_0600_and_survives_a_restart() {
    let lock = SlotLock::acquire(SLOT_0);
    let dir = TestDir::new("emu-debit");
    let (path, id) = card_file(&dir, 4, 1000);
    let emu = Emulator::spawn(CARD_EMULATOR, &lock, &path);
    let ctx = pcsc_context();
    wait_present(&ctx, SLOT_0.reader);
    let card = connect(&ctx, SLOT_0.reader);
    let debit = initialize_and_build_debit(&card, id, 250, 7);
    let r = transmit(&card, &debit).expect("DEBIT");
    let (data, sw) = split_sw(&r);
    assert_eq!(sw, 0x9000, "DEBIT answered {sw:04X}");
    assert_eq!(
        DebitResponse::parse(data).unwrap().balance_after,
        Amount(750)
    );

    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "state file mode {mode:o}");
    let saved = read_card_state(&path);
    assert_eq!((saved.balance, saved.nt_last), (Amount(750), Nt(1)));
    assert_eq!(saved.log.len(), 1);
    assert_eq!(emu.status().balance, 750);

    drop(card);
    emu.stop();
    wait_absent(&ctx, SLOT_0.reader);
    let _emu = Emulator::spawn(CARD_EMULATOR, &lock, &path);
    wait_present(&ctx, SLOT_0.reader);
    let info = select_purse(&connect(&ctx, SLOT_0.reader));
    assert_eq!((info.balance, info.nt_last), (Amount(750), Nt(1)));
}

#[test]
fn pull_before_debit_fails_the_transmit_and_changes_nothing() {
    let lock = SlotLock::acquire(SLOT_1);
    let dir = TestDir::new("emu-pull-before");
    let (path, id) = card_file(&dir, 5, 1000);
    let before = std::fs::read_to_string(&path).unwrap();
    let emu = Emulator::spawn(CARD_EMULATOR, &lock, &path);
    let ctx = pcsc_context();
    wait_present(&ctx, SLOT_1.reader);
    let card = connect(&ctx, SLOT_1.reader);
    let debit = initialize_and_build_debit(&card, id, 300, 8);
    emu.pull_before(INS_DEBIT);
    let e = transmit(&card, &debit).expect_err("the card was pulled");
    assert!(is_card_removed(&e), "unexpected error {e:?}");
    wait_absent(&ctx, SLOT_1.reader);
    let st = emu.status();
    assert!(!st.inserted, "{st:?}");
    assert_eq!((st.balance, st.nt_last), (1000, 0));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);

    emu.insert();
    wait_present(&ctx, SLOT_1.reader);
    let info = select_purse(&connect(&ctx, SLOT_1.reader));
    assert_eq!((info.balance, info.nt_last), (Amount(1000), Nt(0)));
}

#[test]
fn pull_after_debit_persists_but_loses_the_response() {
    let lock = SlotLock::acquire(SLOT_0);
    let dir = TestDir::new("emu-pull-after");
    let (path, id) = card_file(&dir, 6, 1000);
    let emu = Emulator::spawn(CARD_EMULATOR, &lock, &path);
    let ctx = pcsc_context();
    wait_present(&ctx, SLOT_0.reader);
    let card = connect(&ctx, SLOT_0.reader);
    let debit = initialize_and_build_debit(&card, id, 400, 9);
    emu.pull_after(INS_DEBIT);
    let e = transmit(&card, &debit).expect_err("the response was lost");
    assert!(is_card_removed(&e), "unexpected error {e:?}");
    wait_absent(&ctx, SLOT_0.reader);
    let saved = read_card_state(&path);
    assert_eq!((saved.balance, saved.nt_last), (Amount(600), Nt(1)));

    // Recovery: the card, back in the reader, proves the debit it made.
    emu.insert();
    wait_present(&ctx, SLOT_0.reader);
    let card = connect(&ctx, SLOT_0.reader);
    let info = select_purse(&card);
    assert_eq!((info.balance, info.nt_last), (Amount(600), Nt(1)));
    let r = transmit(&card, &CardCommand::GetProof { nt: Nt(1) }.encode()).unwrap();
    let (data, sw) = split_sw(&r);
    assert_eq!(sw, 0x9000, "GET TRANSACTION PROOF answered {sw:04X}");
    let rec = TxRecord::parse(data).unwrap();
    assert_eq!(
        (rec.nt, rec.sam_id, rec.sam_tx_seq),
        (Nt(1), SAM_ID, SamTxSeq(9))
    );
    assert_eq!((rec.total, rec.balance_after), (Amount(400), Amount(600)));
}

#[test]
fn scriptor_from_pcsc_tools_selects_the_purse() {
    let lock = SlotLock::acquire(SLOT_0);
    let dir = TestDir::new("emu-scriptor");
    let (path, id) = card_file(&dir, 7, 4321);
    let _emu = Emulator::spawn(CARD_EMULATOR, &lock, &path);
    let ctx = pcsc_context();
    wait_present(&ctx, SLOT_0.reader);
    let script = dir.join("select.apdu");
    let select: Vec<String> = CardCommand::select()
        .encode()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    std::fs::write(&script, select.join(" ") + "\n").unwrap();
    let out = Command::new("scriptor")
        .arg("-r")
        .arg(SLOT_0.reader)
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("running scriptor (package pcsc-tools): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "scriptor failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let response = parse_scriptor_response(&stdout);
    let (data, sw) = split_sw(&response);
    assert_eq!(sw, 0x9000, "scriptor output:\n{stdout}");
    let info = SelectInfo::parse(data).unwrap();
    assert_eq!((info.card_id, info.balance), (id, Amount(4321)));
}

/// The bytes of scriptor's first response: the hex after `<`, possibly over several
/// lines, up to the ` : ` that starts the status text.
fn parse_scriptor_response(stdout: &str) -> Vec<u8> {
    let start = stdout
        .find("\n< ")
        .map(|i| i + 3)
        .or_else(|| stdout.strip_prefix("< ").map(|_| 2));
    let Some(start) = start else {
        panic!("no response line in scriptor output:\n{stdout}");
    };
    let rest = &stdout[start..];
    let hex = rest.split(" : ").next().unwrap_or(rest);
    hex.split_whitespace()
        .map(|b| {
            u8::from_str_radix(b, 16).unwrap_or_else(|_| panic!("bad byte {b:?} in:\n{stdout}"))
        })
        .collect()
}

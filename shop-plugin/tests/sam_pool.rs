//! Several SAM cards on the real PC/SC stack: two `sam-emulator`s in their own readers
//! ("Virtual PCD 00 00" and "00 01") form the plugin's pool; the purse cards are in
//! process (the test relays their commands as the shopper's browser does). New payments
//! go to both SAMs in turn and each stays on its SAM; a SAM pulled mid-payment leaves
//! that payment waiting (503) while new payments go to the other, and it completes once
//! the SAM is back; the close gives one batch per SAM, each accepted by the clearing
//! checks, and they settle every payment once.
//!
//! Needs pcscd with vpcd, and the emulator binaries (`cargo build -p card-emulators`).

mod support;

use purse::clearing::{verify, ClearingState};
use purse::sam_applet::SamState;
use purse::{Key, SamId};
use serde_json::json;
use shop_plugin::http;
use shop_plugin::sam::pcsc::PcscSam;
use shop_plugin::sam::SecurityModule;
use support::{create_single, emulator_bin, issuer, sam_keys_of, Plugin, TestCard};
use testkit::{
    pcsc_context, wait_absent, wait_present, write_sam_card, Emulator, SlotLock, TestDir, SLOT_0,
    SLOT_1,
};

const SAM_A: u8 = 0x51;
const SAM_B: u8 = 0x52;

fn sam_id(n: u8) -> SamId {
    SamId([0x5A, 0, 0, 0, 0, 0, 0, n])
}

/// A SAM card personalised with the tests' issuer keys, in its own reader.
fn sam_in(dir: &TestDir, lock: &SlotLock, n: u8) -> Emulator {
    let file = dir.join(&format!("sam-{n:02x}.json"));
    write_sam_card(
        &file,
        &SamState::personalise(sam_keys_of(n), Key::from_bytes([n; 16])),
    );
    let emu = Emulator::spawn(&emulator_bin("sam-emulator"), lock, &file);
    wait_present(&pcsc_context(), lock.slot().reader);
    emu
}

/// The SAM_ID an INITIALIZE names (`80 50 P1 KV 1E SAM_ID …`).
fn sam_of(created: &serde_json::Value) -> String {
    let apdu = created["initialize"][0]["apdu"]
        .as_str()
        .expect("INITIALIZE");
    apdu[10..26].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sams_share_the_payments_and_close_one_batch_each() {
    let (lock_a, lock_b) = (SlotLock::acquire(SLOT_0), SlotLock::acquire(SLOT_1));
    let dir = TestDir::new("sam-pool");
    let emu_a = sam_in(&dir, &lock_a, SAM_A);
    let _emu_b = sam_in(&dir, &lock_b, SAM_B);
    let sams: Vec<Box<dyn SecurityModule>> = vec![
        Box::new(PcscSam::connect(SLOT_0.reader).expect("SAM A answers")),
        Box::new(PcscSam::connect(SLOT_1.reader).expect("SAM B answers")),
    ];
    let p = Plugin::start_on(dir.path().to_path_buf(), sams, http::Limits::default()).await;

    // New payments go to both SAMs in turn.
    let mut on = Vec::new();
    for _ in 0..4 {
        let (_, _, created) = create_single(&p, 100).await;
        on.push(sam_of(&created));
    }
    let (a, b) = (sam_id(SAM_A).to_hex(), sam_id(SAM_B).to_hex());
    assert_eq!(on.iter().filter(|s| **s == a).count(), 2, "{on:?}");
    assert_eq!(on.iter().filter(|s| **s == b).count(), 2, "{on:?}");

    // Payments on both SAMs, each paid through the SAM it began on.
    let mut card = TestCard::new(0x31, 100_000);
    let mut paid: u32 = 0;
    for amount in [110, 120, 130] {
        p.pay(&mut card, amount).await;
        paid += amount;
    }

    // A payment on SAM A, SAM A pulled while its DEBIT answer travels: the payment
    // waits; new payments go to SAM B meanwhile.
    let (id, secret, created) = loop {
        let c = create_single(&p, 140).await;
        if sam_of(&c.2) == a {
            break c;
        }
    };
    let (kv, init) = card.initialize(&created);
    let (s, step) = p.initialize(&id, &secret, kv, &init).await;
    assert_eq!((s, &step["status"]), (200, &json!("authorized")), "{step}");
    let answer = card.run(step["command"].as_str().expect("DEBIT"));
    emu_a.control("remove");
    wait_absent(&pcsc_context(), SLOT_0.reader);
    let (s, e) = p.answer(&id, &secret, Some(&answer)).await;
    assert_eq!(
        (s, &e["error"]["code"]),
        (503, &json!("sam_unavailable")),
        "{e}"
    );
    assert_eq!(p.payment(&id).await["status"], json!("authorized"));
    for amount in [150, 160] {
        let (_, _, c) = create_single(&p, amount).await;
        assert_eq!(sam_of(&c), b, "SAM A is away: new payments go to SAM B");
        p.pay(&mut card, amount).await;
        paid += amount;
    }
    emu_a.control("insert");
    wait_present(&pcsc_context(), SLOT_0.reader);
    let (s, done) = p.answer(&id, &secret, Some(&answer)).await;
    assert_eq!((s, &done["status"]), (200, &json!("succeeded")), "{done}");
    paid += 140;

    // One batch per SAM; each verifies; together they settle every payment once.
    let batches = p.app.engine.close_period().await.expect("close");
    assert_eq!(batches.len(), 2);
    let mut settled = 0u64;
    let mut state = ClearingState::default();
    for batch in &batches {
        let problems = verify(batch, &issuer(), &state);
        assert!(problems.is_empty(), "{problems:?}");
        state.accept(batch);
        assert_eq!(batch.close_seq.0, 1);
        settled += batch.totals.sum.0;
    }
    assert_eq!(settled, u64::from(paid));
    assert_eq!(card.balance(), 100_000 - paid);
}

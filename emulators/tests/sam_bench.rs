//! A first figure for the SAM card on vpcd (printed, never asserted on time): SAM APDU
//! round trips per single purchase and purchases per second through one `sam-emulator`
//! over pcscd + vpcd. The purse card runs in this process, so the figure is the SAM's:
//! three exchanges through pcscd, two of them writing the SAM card file (fsync, rename).
//!
//! `cargo test --release -p card-emulators --test sam_bench -- --nocapture`

mod sam_host;

use std::time::{Duration, Instant};

use purse::card::{Card, MemoryStore};
use purse::commands::CardCommand;
use purse::sam::Order;
use purse::{Amount, CardId, DateTime, Rnd, SamId};
use sam_host::SamLink;
use testkit::*;

const SAM_EMULATOR: &str = env!("CARGO_BIN_EXE_sam-emulator");
const PURCHASES: u32 = 300;

/// `data || SW` of the in-process card.
fn card_send(card: &mut Card, apdu: &[u8]) -> Vec<u8> {
    card.process(apdu, &mut MemoryStore)
}

fn card_apdu(ins: u8, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
    let mut a = vec![0x80, ins, p1, p2, data.len() as u8];
    a.extend_from_slice(data);
    a.push(0);
    a
}

#[test]
fn sam_round_trips_and_purchases_per_second_over_vpcd() {
    let lock = SlotLock::acquire(SLOT_0);
    let dir = TestDir::new("sam-bench");
    let file = dir.join("sam.json");
    write_sam_card(
        &file,
        &new_sam_card_state(SamId([0x5A, 0, 0, 0, 0, 0, 0, 0xB1])),
    );
    let emu = Emulator::spawn(SAM_EMULATOR, &lock, &file);
    let mut sam = SamLink::connect(SLOT_0.reader);
    let mut card = Card::new(
        new_card_state(CardId([0x10, 0, 0, 0, 0, 0, 0xB1, 1]), Amount(1_000_000)),
        Box::new(|| Rnd([0x33; 16])),
    );
    let select = card_send(&mut card, &CardCommand::select().encode());
    assert_eq!(&select[select.len() - 2..], [0x90, 0x00]);
    let order = Order::single(Amount(1));

    let start_trips = sam.round_trips;
    // Time in BEGIN (writes once per 64), AUTHORIZE and COMPLETE (each writes the file).
    let mut spent = [Duration::ZERO; 3];
    let start = Instant::now();
    for i in 0..PURCHASES {
        let t = Instant::now();
        let (init, begin) = sam.begin(&order).expect("BEGIN");
        spent[0] += t.elapsed();
        let r = card_send(
            &mut card,
            &card_apdu(0x50, order.mode.p1(), TEST_KV.0, &init),
        );
        let init_resp = &r[..r.len() - 2];
        let t = Instant::now();
        let (debit, ctx) = sam
            .authorize(TEST_KV, DateTime(1_795_000_000 + i), init_resp, &begin)
            .expect("AUTHORIZE");
        spent[1] += t.elapsed();
        let answer = card_send(&mut card, &card_apdu(0x54, 0, 0, &debit));
        let t = Instant::now();
        sam.complete(&answer, &ctx).expect("COMPLETE").counted();
        spent[2] += t.elapsed();
    }
    let secs = start.elapsed().as_secs_f64();
    let trips = sam.round_trips - start_trips;
    assert_eq!(sam.status().period_count, PURCHASES);
    println!(
        "SAM over vpcd: {PURCHASES} purchases in {secs:.2} s = {:.0} purchases/s through one \
         sam-emulator; {} SAM round trips per purchase ({:.2} ms per round trip)",
        f64::from(PURCHASES) / secs,
        trips / u64::from(PURCHASES),
        secs * 1000.0 / trips as f64
    );
    let ms = |d: Duration| d.as_secs_f64() * 1000.0 / f64::from(PURCHASES);
    println!(
        "SAM over vpcd, mean per command: BEGIN {:.2} ms, AUTHORIZE {:.2} ms, COMPLETE {:.2} ms \
         (the last two write the SAM card file: write, fsync, rename)",
        ms(spent[0]),
        ms(spent[1]),
        ms(spent[2])
    );
    emu.stop();
}

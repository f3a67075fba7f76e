//! Figures for the SAM card (printed, never asserted on time): purchases per second and
//! the time per SAM command (median, p99) with the SAM applet in process (the
//! baseline: its state in memory, and through the emulator's journaled store without
//! vpcd), through one `sam-emulator` over pcscd + vpcd, and through two at once (the
//! two vpcd slots, one thread and one purse card each). SAM round trips per purchase: 3.
//! The purse cards run in process, so the figures are the SAM's.
//!
//! `cargo test --release -p card-emulators --test sam_bench -- --nocapture --test-threads 1`

mod sam_host;

use std::thread;
use std::time::{Duration, Instant};

use card_emulators::sam_store::SamFileStore;
use purse::card::{Card, MemoryStore};
use purse::commands::CardCommand;
use purse::sam::Order;
use purse::sam_applet::{MemorySamStore, SamApplet};
use purse::{Amount, CardId, DateTime, Rnd, SamId};
use sam_host::{Expect, SamLink};
use testkit::*;

const SAM_EMULATOR: &str = env!("CARGO_BIN_EXE_sam-emulator");
/// Purchases per SAM over vpcd, and in process.
const OVER_VPCD: u32 = 2000;
const IN_PROCESS: u32 = 20_000;

fn card_apdu(ins: u8, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
    let mut a = vec![0x80, ins, p1, p2, data.len() as u8];
    a.extend_from_slice(data);
    a.push(0);
    a
}

/// What a run of purchases measured.
struct Run {
    purchases: u32,
    elapsed: Duration,
    round_trips: u64,
    /// Per command: BEGIN, AUTHORIZE, COMPLETE.
    times: [Vec<Duration>; 3],
}

/// `purchases` single purchases of 1 cent through `sam`, each with a purse card in
/// this process.
fn purchases(sam: &mut SamLink, card_last: u8, purchases: u32) -> Run {
    let mut card = Card::new(
        new_card_state(
            CardId([0x10, 0, 0, 0, 0, 0, 0xB1, card_last]),
            Amount(100_000_000),
        ),
        Box::new(|| Rnd([0x33; 16])),
    );
    let select = card.process(&CardCommand::select().encode(), &mut MemoryStore);
    assert_eq!(&select[select.len() - 2..], [0x90, 0x00]);
    let order = Order::single(Amount(1));
    let start_trips = sam.round_trips;
    let mut times = [(); 3].map(|()| Vec::with_capacity(purchases as usize));
    let start = Instant::now();
    for i in 0..purchases {
        let t = Instant::now();
        let (init, begin) = sam.begin(&order).expect("BEGIN");
        times[0].push(t.elapsed());
        let r = card.process(
            &card_apdu(0x50, order.mode.p1(), TEST_KV.0, &init),
            &mut MemoryStore,
        );
        let t = Instant::now();
        let (debit, ctx) = sam
            .authorize(
                TEST_KV,
                DateTime(1_795_000_000 + i),
                &r[..r.len() - 2],
                &begin,
            )
            .expect("AUTHORIZE");
        times[1].push(t.elapsed());
        let answer = card.process(&card_apdu(0x54, 0, 0, &debit), &mut MemoryStore);
        let t = Instant::now();
        sam.complete(&answer, &ctx).expect("COMPLETE").counted();
        times[2].push(t.elapsed());
    }
    let elapsed = start.elapsed();
    Run {
        purchases,
        elapsed,
        round_trips: sam.round_trips - start_trips,
        times,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn quantile(v: &mut [Duration], q: f64) -> Duration {
    v.sort_unstable();
    v[((v.len() as f64 - 1.0) * q).round() as usize]
}

fn report(what: &str, runs: &mut [Run]) {
    let total: u32 = runs.iter().map(|r| r.purchases).sum();
    let wall = runs.iter().map(|r| r.elapsed).max().unwrap_or_default();
    let trips: u64 = runs.iter().map(|r| r.round_trips).sum();
    println!(
        "{what}: {total} purchases in {:.2} s = {:.0} purchases/s; {:.0} SAM round trips per \
         purchase",
        wall.as_secs_f64(),
        f64::from(total) / wall.as_secs_f64(),
        trips as f64 / f64::from(total)
    );
    let mut line = String::from("    per command, median / p99 (ms):");
    for (i, name) in ["BEGIN", "AUTHORIZE", "COMPLETE"].iter().enumerate() {
        let mut all: Vec<Duration> = runs.iter().flat_map(|r| r.times[i].clone()).collect();
        line.push_str(&format!(
            " {name} {:.3} / {:.3};",
            ms(quantile(&mut all, 0.5)),
            ms(quantile(&mut all, 0.99))
        ));
    }
    println!("{line}");
}

fn sam_state(last: u8) -> purse::sam_applet::SamState {
    new_sam_card_state(SamId([0x5A, 0, 0, 0, 0, 0, 0, last]))
}

#[test]
fn sam_purchases_per_second_in_process_and_over_vpcd() {
    // The baseline: the applet in this process, its state in memory.
    let mut sam = SamLink::in_process(SamApplet::new(sam_state(0xB0)), Box::new(MemorySamStore));
    report(
        "SAM applet in process, state in memory",
        &mut [purchases(&mut sam, 0, IN_PROCESS)],
    );

    // The emulator's store (journal, fdatasync per change) without pcscd.
    let dir = TestDir::new("sam-bench");
    let file = dir.join("sam-file.json");
    write_sam_card(&file, &sam_state(0xB1));
    let (state, store) = SamFileStore::open(&file).expect("SAM card");
    let mut sam = SamLink::in_process(SamApplet::new(state), Box::new(store));
    report(
        "SAM applet in process, journaled SAM card file",
        &mut [purchases(&mut sam, 1, OVER_VPCD)],
    );

    // One sam-emulator over pcscd + vpcd.
    let slots = [SLOT_0, SLOT_1];
    let locks: Vec<SlotLock> = slots.iter().map(|s| SlotLock::acquire(*s)).collect();
    let files: Vec<_> = (0..2u8)
        .map(|i| {
            let f = dir.join(&format!("sam{i}.json"));
            write_sam_card(&f, &sam_state(0xC0 + i));
            f
        })
        .collect();
    let emus: Vec<Emulator> = locks
        .iter()
        .zip(&files)
        .map(|(lock, f)| Emulator::spawn(SAM_EMULATOR, lock, f))
        .collect();
    let mut sam = SamLink::connect(SLOT_0.reader);
    report(
        "1 sam-emulator over vpcd",
        &mut [purchases(&mut sam, 2, OVER_VPCD)],
    );
    drop(sam);

    // Two at once, one thread each.
    let mut runs: Vec<Run> = thread::scope(|s| {
        let handles: Vec<_> = slots
            .iter()
            .enumerate()
            .map(|(i, slot)| {
                s.spawn(move || {
                    let mut sam = SamLink::connect(slot.reader);
                    purchases(&mut sam, 3 + i as u8, OVER_VPCD)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("SAM thread"))
            .collect()
    });
    report("2 sam-emulators over vpcd, concurrently", &mut runs);
    for e in emus {
        e.stop();
    }
}

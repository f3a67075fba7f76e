//! The SAM card's benchmark (issue 12), one run, side by side: single purchases of 1
//! cent per second through the SAM applet in process (the baseline: same purchase flow,
//! same purse card, no PC/SC; its state in memory, then in the emulator's journaled
//! card file) and through 1, 2 and 4 `sam-emulator`s over pcscd + vpcd (a lane each: a
//! thread, a PC/SC connection, a purse card). Per setup: purchases/s closed loop, SAM
//! APDUs and round trips per purchase, time per SAM command, CPU per purchase (this
//! process, the emulators, pcscd), how busy the machine's cores were, and the latency
//! of a purchase open loop at half the measured rate. Prints figures, asserts nothing.
//!
//! Run: `scripts/bench-sam` (a pcscd of its own with four vpcd readers; the shared one
//! has two). `cargo bench -p card-emulators --bench sam [-- --secs 5]` alone uses the
//! stock two vpcd slots (up to 2 SAMs). Under `cargo test` (no `--bench`) it only says
//! how to run it.

#[path = "../../tests/sam_host/mod.rs"]
mod sam_host;

mod load;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use card_emulators::sam_store::SamFileStore;
use load::{quantile, Closed, Lane};
use purse::sam_applet::{MemorySamStore, SamApplet, SamState, SamStore, SamStoreError};
use purse::SamId;
use sam_host::SamLink;
use testkit::{new_sam_card_state, write_sam_card, Emulator, Slot, SlotLock, SLOT_0, SLOT_1};

const SAM_EMULATOR: &str = env!("CARGO_BIN_EXE_sam-emulator");

struct Options {
    /// Seconds of each closed-loop and each open-loop run.
    secs: f64,
    /// The vpcd readers: `--ports P,Q` names scripts/bench-sam's entries (each gives
    /// the slots P and P+1, readers "SAM bench vpcd P 00 00" and "... 00 01"), used in
    /// the order P, Q, P+1, Q+1.
    slots: Vec<Slot>,
    /// Where the SAM card files go.
    dir: PathBuf,
    /// `--pcscd-pid`: the pcscd whose CPU time is counted (scripts/bench-sam's own).
    pcscd: Option<u32>,
}

fn options() -> Option<Options> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        return None;
    }
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let slots = match value("--ports") {
        Some(list) => {
            let ports: Vec<u16> = list
                .split(',')
                .map(|p| p.parse().expect("--ports: a list of port numbers"))
                .collect();
            // The first slot of every entry first: two SAMs then sit on two entries, as
            // two readers would.
            (0..2u16)
                .flat_map(|slot| {
                    ports.iter().map(move |port| Slot {
                        port: port + slot,
                        reader: Box::leak(format!("SAM bench vpcd {port} 00 {slot:02}").into()),
                    })
                })
                .collect()
        }
        None => vec![SLOT_0, SLOT_1],
    };
    let dir = value("--dir").map_or_else(|| std::env::temp_dir().join("sam-bench"), PathBuf::from);
    Some(Options {
        secs: value("--secs").and_then(|v| v.parse().ok()).unwrap_or(5.0),
        slots,
        dir,
        pcscd: value("--pcscd-pid").and_then(|v| v.parse().ok()),
    })
}

fn sam_state(last: u8) -> SamState {
    new_sam_card_state(SamId([0x5A, 0, 0, 0, 0, 0, 0, last]))
}

/// The emulator's store, counting the changes that reached its journal (one 64-byte
/// slot and one `fdatasync` each; a full journal's rewrite counts once too).
struct Counting {
    inner: SamFileStore,
    writes: Arc<AtomicU64>,
}

impl SamStore for Counting {
    fn persist(&mut self, state: &SamState) -> Result<(), SamStoreError> {
        let before = self.inner.journal_records();
        let r = self.inner.persist(state);
        if self.inner.journal_records() != before {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        r
    }
}

/// User + system CPU time of a process so far (`/proc/PID/stat`, clock ticks of 10 ms).
fn cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is field 3, utime 14.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    Duration::from_millis(f.iter().sum::<u64>() * 10)
}

/// CPU time of this process, the emulators and pcscd.
fn cpu_now(emulators: &[u32], pcscd: Option<u32>) -> [Duration; 3] {
    [
        cpu(std::process::id()),
        emulators.iter().map(|p| cpu(*p)).sum(),
        pcscd.map_or(Duration::ZERO, cpu),
    ]
}

/// The whole machine's CPU time so far, in clock ticks: (busy, all). Busy is everything
/// but idle and iowait (the first line of `/proc/stat`).
fn machine_cpu() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let all: u64 = ticks.iter().sum();
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    (all - idle, all)
}

/// 200 writes of a 64-byte slot, each `fdatasync`ed, in `dir`: (median, p99, max). What
/// a journaled change costs on this disk.
fn fdatasync_probe(dir: &Path) -> [Duration; 3] {
    let path = dir.join("fdatasync-probe");
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .expect("probe file");
    let mut times: Vec<Duration> = (0..200u64)
        .map(|i| {
            let t = Instant::now();
            file.write_all_at(&[i as u8; 64], (i % 64) * 64)
                .and_then(|()| file.sync_data())
                .expect("probe write");
            t.elapsed()
        })
        .collect();
    let _ = std::fs::remove_file(&path);
    [0.5, 0.99, 1.0].map(|q| quantile(&mut times, q))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One setup: the closed-loop run, then the open-loop one at half its rate.
fn measure(
    what: &str,
    lanes: &mut [Lane],
    o: &Options,
    emulators: &[u32],
    writes: Option<&AtomicU64>,
) -> f64 {
    let run = Duration::from_secs_f64(o.secs);
    let writes_before = writes.map(|w| w.load(Ordering::Relaxed));
    let cpu_before = cpu_now(emulators, o.pcscd);
    let machine_before = machine_cpu();
    let mut c: Closed = load::closed(lanes, run);
    let cpu_after = cpu_now(emulators, o.pcscd);
    let machine_after = machine_cpu();
    let writes_after = writes.map(|w| w.load(Ordering::Relaxed));
    let n = c.purchases as f64;
    let rate = c.rate();
    let mut open = load::open(lanes, rate / 2.0, run);
    println!(
        "{what}: {rate:.0} purchases/s ({} in {:.2} s); {:.2} SAM APDUs = round trips per \
         purchase",
        c.purchases,
        c.elapsed.as_secs_f64(),
        c.apdus as f64 / n
    );
    let mut line = String::from("    per SAM command, mean / median / p99 (ms):");
    for (name, t) in ["BEGIN", "AUTHORIZE", "COMPLETE"].iter().zip(&mut c.times) {
        let mean = t.iter().sum::<Duration>() / u32::try_from(t.len()).unwrap_or(u32::MAX);
        line += &format!(
            " {name} {:.3} / {:.3} / {:.3};",
            ms(mean),
            ms(quantile(t, 0.5)),
            ms(quantile(t, 0.99))
        );
    }
    println!("{line}");
    let per = |i: usize| ms(cpu_after[i].saturating_sub(cpu_before[i])) / n;
    let ours: Duration = (0..3)
        .map(|i| cpu_after[i].saturating_sub(cpu_before[i]))
        .sum();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let (busy, all) = (
        machine_after.0 - machine_before.0,
        (machine_after.1 - machine_before.1).max(1),
    );
    // /proc/stat's ticks are per core: `all` is cores × the elapsed ticks.
    let elapsed_ticks = all as f64 / cores;
    println!(
        "    cores busy: {:.2} of {cores:.0} for the whole machine, {:.2} for this benchmark, \
         its emulators and pcscd",
        busy as f64 / elapsed_ticks,
        ours.as_secs_f64() * 100.0 / elapsed_ticks
    );
    println!(
        "    CPU per purchase (ms): this process {:.3}, sam-emulators {:.3}, pcscd {}",
        per(0),
        per(1),
        o.pcscd
            .map_or_else(|| "not counted".into(), |_| format!("{:.3}", per(2)))
    );
    if let (Some(after), Some(before)) = (writes_after, writes_before) {
        let d = after - before;
        println!(
            "    durable writes (journal slot + fdatasync) per purchase: {:.2}",
            d as f64 / n
        );
    }
    println!(
        "    open loop at {:.0}/s: {} purchases, latency median {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        rate / 2.0,
        open.len(),
        ms(quantile(&mut open, 0.5)),
        ms(quantile(&mut open, 0.99)),
        ms(quantile(&mut open, 1.0))
    );
    rate
}

/// `count` sam-emulators in the first `count` slots, measured; `None` when there are
/// fewer slots.
fn over_vpcd(count: usize, o: &Options, first_id: u8) -> Option<f64> {
    if o.slots.len() < count {
        println!(
            "{count} sam-emulators over vpcd: skipped, {} vpcd slots (scripts/bench-sam \
             starts a pcscd with four)",
            o.slots.len()
        );
        return None;
    }
    let locks: Vec<SlotLock> = o.slots[..count]
        .iter()
        .map(|s| SlotLock::acquire(*s))
        .collect();
    let emulators: Vec<Emulator> = locks
        .iter()
        .enumerate()
        .map(|(i, lock)| {
            let file = o.dir.join(format!("sam-{count}-{i}.json"));
            write_sam_card(&file, &sam_state(first_id + i as u8));
            Emulator::spawn(SAM_EMULATOR, lock, &file)
        })
        .collect();
    let pids: Vec<u32> = emulators.iter().map(Emulator::pid).collect();
    let mut lanes: Vec<Lane> = locks
        .iter()
        .enumerate()
        .map(|(i, lock)| Lane::new(SamLink::connect(lock.slot().reader), first_id + i as u8))
        .collect();
    let what = format!(
        "{count} sam-emulator{} over vpcd",
        if count > 1 { "s" } else { "" }
    );
    let rate = measure(&what, &mut lanes, o, &pids, None);
    drop(lanes);
    for e in emulators {
        e.stop();
    }
    Some(rate)
}

fn main() {
    let Some(o) = options() else {
        println!("sam bench: run it with scripts/bench-sam (or `cargo bench -p card-emulators --bench sam`)");
        return;
    };
    std::fs::create_dir_all(&o.dir).expect("bench directory");
    let [sync_median, sync_p99, sync_max] = fdatasync_probe(&o.dir);
    println!(
        "SAM benchmark: {} s per run, {} cores, load average {}; fdatasync of a 64-byte \
         slot in {}: median {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        o.secs,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        o.dir.display(),
        ms(sync_median),
        ms(sync_p99),
        ms(sync_max)
    );

    let memory = SamLink::in_process(SamApplet::new(sam_state(0xB0)), Box::new(MemorySamStore));
    let base = measure(
        "in-process SAM applet, state in memory (baseline)",
        &mut [Lane::new(memory, 0xB0)],
        &o,
        &[],
        None,
    );

    let file = o.dir.join("sam-in-process.json");
    write_sam_card(&file, &sam_state(0xB1));
    let (state, inner) = SamFileStore::open(&file).expect("SAM card file");
    let writes = Arc::new(AtomicU64::new(0));
    let store = Counting {
        inner,
        writes: Arc::clone(&writes),
    };
    let journaled = SamLink::in_process(SamApplet::new(state), Box::new(store));
    measure(
        "in-process SAM applet, the emulator's journaled card file",
        &mut [Lane::new(journaled, 0xB1)],
        &o,
        &[],
        Some(&writes),
    );

    let one = over_vpcd(1, &o, 0xC0);
    let two = over_vpcd(2, &o, 0xC4);
    let four = over_vpcd(4, &o, 0xC8);
    let ratio = |r: Option<f64>| match (r, one) {
        (Some(r), Some(one)) => format!("{:.2}", r / one),
        _ => "-".into(),
    };
    println!(
        "ratios: 2/1 SAMs {}, 4/1 SAMs {}; 1 SAM over vpcd / in-process baseline {}",
        ratio(two),
        ratio(four),
        one.map_or_else(|| "-".into(), |r| format!("{:.4}", r / base))
    );
}

//! `cargo bench -p clearing-office`: prints figures, asserts nothing.
//!
//! 1. One batch of `CLEARING_BENCH_BIG` (default 1,000,000) records uploaded to the office
//!    (release build, its own process, SQLite) over loopback HTTP: time from the first
//!    byte sent to the decision (durably stored), and the office's peak RSS (VmHWM of its
//!    /proc status, read before it is stopped).
//! 2. 100 batches of 10,000 in a row, on SQLite and, when `CLEARING_TEST_PG_URL` is set
//!    (`scripts/bench-clearing` starts a server), on PostgreSQL: the 1st, the 100th and
//!    their ratio.
//! 3. The baseline: `purse-issuer clear` (target/release/purse-issuer, when built) on the
//!    same big batch and on the same 100 batches, timed and measured by its rusage.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::{issuer_keys, make_batch, Office};
use purse::SamId;

const SAM: &str = "5a00000000000001";

fn vm_hwm_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Writes the big batch to `bodies`/big.json (the baseline's input too) and, when
/// `upload`, times the office on it.
async fn big(n: usize, bodies: &Path, upload: bool) {
    let t = Instant::now();
    let batch = make_batch(
        &issuer_keys(),
        SamId::from_hex(SAM).expect("sam"),
        1,
        1 << 32,
        1,
        n,
    );
    let body = serde_json::to_vec(&batch).expect("json");
    drop(batch);
    std::fs::write(bodies.join("big.json"), &body).expect("write batch");
    eprintln!(
        "generated {n} records ({} MB) in {:.1?}",
        body.len() / 1_000_000,
        t.elapsed()
    );
    if !upload {
        return;
    }
    let office = Office::start("bench-big", 2 << 30).await;
    let cred = office.register("m1", SAM, 978, 1).await;
    let t = Instant::now();
    let r = office.upload(&cred, &body).await;
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(r.json["decision"], "accepted", "{:?}", r.json);
    println!(
        "office (sqlite): {n} records, {} MB: accepted and stored in {secs:.2} s, peak RSS {:.0} MiB",
        body.len() / 1_000_000,
        vm_hwm_mib(office.pid())
    );
}

async fn series(label: &str, count: usize, per: usize) -> Vec<f64> {
    let office = Office::start("bench-series", 1 << 30).await;
    let cred = office.register("m1", SAM, 978, 1).await;
    let keys = issuer_keys();
    let sam = SamId::from_hex(SAM).expect("sam");
    let mut times = Vec::new();
    for i in 0..count {
        let b = make_batch(
            &keys,
            sam,
            i as u32 + 1,
            (i * per) as u64 + (1 << 40),
            1,
            per,
        );
        let body = serde_json::to_vec(&b).expect("json");
        let t = Instant::now();
        let r = office.upload(&cred, &body).await;
        times.push(t.elapsed().as_secs_f64());
        assert_eq!(r.json["decision"], "accepted", "{:?}", r.json);
    }
    report(label, &times);
    times
}

/// The median of a few seconds.
fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The first and the last batches as the medians of the first and last `EDGE` (one
/// batch's time on a shared machine is noise-prone), and their ratio.
fn report(label: &str, times: &[f64]) {
    const EDGE: usize = 5;
    let n = times.len();
    let edge = EDGE.min(n);
    let (first, last) = (median(&times[..edge]), median(&times[n - edge..]));
    println!(
        "{label}: {n} batches of 10,000: 1st {first:.3} s, {n}th {last:.3} s, ratio {:.2} \
         (medians of batches 1-{edge} and {}-{n}; single: 1st {:.3} s, last {:.3} s)",
        last / first,
        n - edge + 1,
        times[0],
        times[n - 1]
    );
}

/// Whether part `name` runs: `CLEARING_BENCH_ONLY` is a comma-separated list of
/// `big`, `sqlite`, `postgresql`, `baseline` (all when unset).
fn part(name: &str) -> bool {
    std::env::var("CLEARING_BENCH_ONLY").map_or(true, |v| v.split(',').any(|p| p.trim() == name))
}

/// `purse-issuer clear` on `batch` with `state`: seconds and max RSS (MiB).
fn issuer_clear(bin: &Path, keys: &Path, state: &Path, batch: &Path) -> (f64, f64) {
    let t = Instant::now();
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg(bin)
        .args(["clear", "--keys"])
        .arg(keys)
        .arg("--state")
        .arg(state)
        .arg(batch)
        .output()
        .expect("purse-issuer");
    let secs = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kb: f64 = String::from_utf8_lossy(&out.stderr)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(f64::NAN);
    (secs, kb / 1024.0)
}

fn baseline(dir: &Path, n: usize) {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/purse-issuer");
    if !bin.exists() || !Path::new("/usr/bin/time").exists() {
        println!("baseline skipped: build it with `cargo build --release -p purse-issuer` (and install `time`)");
        return;
    }
    let keys = dir.join("issuer-keys.json");
    std::fs::write(&keys, issuer_keys().to_json().expect("keys")).expect("keys");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let (secs, mib) = issuer_clear(
        &bin,
        &keys,
        &dir.join("state-big.json"),
        &dir.join("big.json"),
    );
    println!("purse-issuer clear: {n} records: {secs:.2} s, peak RSS {mib:.0} MiB");
    let issuer = issuer_keys();
    let sam = SamId::from_hex(SAM).expect("sam");
    let mut times = Vec::new();
    for i in 0..100 {
        let b = make_batch(
            &issuer,
            sam,
            i + 1,
            u64::from(i) * 10_000 + (1 << 40),
            1,
            10_000,
        );
        let path = dir.join("series.json");
        std::fs::write(&path, serde_json::to_vec(&b).expect("json")).expect("write");
        times.push(issuer_clear(&bin, &keys, &dir.join("state-series.json"), &path).0);
    }
    report("purse-issuer clear", &times);
}

fn main() {
    // `cargo bench` passes `--bench`; under `cargo test --all-targets` (no `--bench`) the
    // benchmark only says how to run it: a million-record batch has no place in the suite.
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "the clearing benchmark runs under `cargo bench -p clearing-office --bench clearing`"
        );
        return;
    }
    let n: usize = std::env::var("CLEARING_BENCH_BIG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = common::temp_dir("bench");
    let pg = std::env::var("CLEARING_TEST_PG_URL").ok();
    rt.block_on(async {
        // SQLite first: Office::start picks PostgreSQL when the variable is set.
        std::env::remove_var("CLEARING_TEST_PG_URL");
        if part("big") || part("baseline") {
            big(n, &dir, part("big")).await;
        }
        if part("sqlite") {
            series("office (sqlite)", 100, 10_000).await;
        }
        if !part("postgresql") {
        } else if let Some(url) = &pg {
            std::env::set_var("CLEARING_TEST_PG_URL", url);
            series("office (postgresql)", 100, 10_000).await;
        } else {
            println!("office (postgresql): skipped, run scripts/bench-clearing to include it");
        }
    });
    if part("baseline") {
        baseline(&dir, n);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

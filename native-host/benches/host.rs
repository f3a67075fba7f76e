//! The native host's figures, each against a baseline measured in the same run:
//!
//! - start to first reply: spawn `native-host`, send `hello`, read the reply; baseline:
//!   spawn `cat`, send the same frame, read it back (process start and pipes, no work);
//! - relay overhead per APDU: SELECT through the host (JSON, guard, PC/SC) against the
//!   same SELECT sent with `pcsc` directly, on the same card;
//! - keeping a DEBIT/TICK answer (the held store's fsynced write), on its own.
//!
//! `cargo bench -p native-host --bench host` (needs pcscd with vpcd; the card emulator
//! runs in this process). Under `cargo test` it does nothing.

use std::ffi::CString;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use native_host::held::{HeldCommand, HeldResponse, HeldStore};
use pcsc::{Protocols, ShareMode};
use purse::commands::CardCommand;
use purse::{Amount, CardId};
use serde_json::{json, Value};
use testkit::{
    new_card_state, pcsc_context, wait_present, write_card_state, Emulator, SlotLock, TestDir,
    SLOT_0,
};

const HOST: &str = env!("CARGO_BIN_EXE_native-host");

fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_ne_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

fn read_frame(r: &mut impl Read) -> Vec<u8> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).expect("frame length");
    let mut body = vec![0u8; u32::from_ne_bytes(len) as usize];
    r.read_exact(&mut body).expect("frame body");
    body
}

/// Median, 90th percentile and mean in milliseconds.
fn stats(mut v: Vec<Duration>) -> (f64, f64, f64) {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mean = v.iter().map(|d| ms(*d)).sum::<f64>() / v.len() as f64;
    (ms(v[v.len() / 2]), ms(v[v.len() * 9 / 10]), mean)
}

fn line(what: &str, s: (f64, f64, f64)) {
    println!(
        "{what:<44} median {:>8.3} ms  p90 {:>8.3} ms  mean {:>8.3} ms",
        s.0, s.1, s.2
    );
}

/// Spawns `program`, sends one frame, reads one frame back, closes: the elapsed time.
fn one_exchange(program: &str, args: &[&str], env: &[(&str, &str)], body: &[u8]) -> Duration {
    let t = Instant::now();
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    stdin.write_all(&frame(body)).expect("write");
    stdin.flush().expect("flush");
    let _ = read_frame(&mut stdout);
    let dt = t.elapsed();
    drop(stdin);
    let _ = child.wait();
    dt
}

struct Host {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::process::ChildStdout,
}

impl Host {
    fn request(&mut self, v: Value) -> Value {
        self.stdin
            .write_all(&frame(&serde_json::to_vec(&v).unwrap()))
            .expect("write");
        self.stdin.flush().expect("flush");
        serde_json::from_slice(&read_frame(&mut self.stdout)).expect("json")
    }
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("the host benchmark runs under `cargo bench -p native-host --bench host`");
        return;
    }
    let dir = TestDir::new("host-bench");
    let state = dir.path().to_str().expect("utf-8 path").to_string();
    let env = [
        ("PURSE_HOST_STATE_DIR", state.as_str()),
        ("HOME", state.as_str()),
    ];
    let hello = br#"{"type":"hello","id":1,"protocol":1}"#;
    const STARTS: usize = 40;

    println!("== start to first reply ({STARTS} runs each)");
    let _ = one_exchange(HOST, &[], &env, hello); // Warm the page cache.
    let host: Vec<Duration> = (0..STARTS)
        .map(|_| one_exchange(HOST, &["chrome-extension://x/"], &env, hello))
        .collect();
    let cat: Vec<Duration> = (0..STARTS)
        .map(|_| one_exchange("cat", &[], &[], hello))
        .collect();
    let (h, c) = (stats(host), stats(cat));
    line("native-host: spawn, hello, reply", h);
    line("baseline: spawn cat, echo the frame", c);
    println!("ratio host/baseline (median): {:.2}", h.0 / c.0);

    let lock = SlotLock::acquire(SLOT_0);
    let card = dir.join("card.json");
    write_card_state(&card, &new_card_state(CardId([0xBE; 8]), Amount(10_000)));
    let _emu = Emulator::in_process(&lock, &card, true);
    let ctx = pcsc_context();
    let reader = SLOT_0.reader;
    wait_present(&ctx, reader);
    let select = CardCommand::select().encode();
    const APDUS: usize = 500;

    let direct = |n: usize| -> Vec<Duration> {
        let name = CString::new(reader).unwrap();
        // Held the way the host holds it: exclusive, in a transaction.
        let mut card = ctx
            .connect(&name, ShareMode::Exclusive, Protocols::ANY)
            .expect("connect");
        let mut buf = [0u8; 300];
        let tx = card.transaction().expect("transaction");
        let v = (0..n)
            .map(|_| {
                let t = Instant::now();
                let r = tx.transmit(&select, &mut buf).expect("transmit");
                assert_eq!(&r[r.len() - 2..], &[0x90, 0]);
                t.elapsed()
            })
            .collect();
        drop(tx);
        let _ = card.disconnect(pcsc::Disposition::LeaveCard);
        v
    };
    println!("== relay overhead per APDU (SELECT, {APDUS} each, direct / host / direct)");
    let _ = direct(50);
    let mut d = direct(APDUS);
    let mut child = Command::new(HOST)
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn host");
    let mut h = Host {
        stdin: child.stdin.take().expect("stdin"),
        stdout: child.stdout.take().expect("stdout"),
        child,
    };
    let opened =
        h.request(json!({"type":"open_session","id":1,"purpose":"recovery","recovery":{"nt":1},"reader":reader}));
    let session = opened["session"].as_str().expect("session").to_string();
    let apdu = json!({"type":"apdu","id":2,"session":session,"apdu":hex::encode(&select)});
    for _ in 0..50 {
        h.request(apdu.clone());
    }
    let relayed: Vec<Duration> = (0..APDUS)
        .map(|_| {
            let t = Instant::now();
            let r = h.request(apdu.clone());
            assert_eq!(r["type"], "apdu", "{r}");
            t.elapsed()
        })
        .collect();
    h.request(json!({"type":"close_session","id":3,"session":session}));
    drop(h.stdin);
    let _ = h.child.wait();
    d.extend(direct(APDUS));
    let (rs, ds) = (stats(relayed), stats(d));
    line("through native-host (JSON, guard, PC/SC)", rs);
    line("baseline: pcsc transmit directly (same hold)", ds);
    println!(
        "added per relayed APDU (median): {:.3} ms; ratio host/direct: {:.2}",
        rs.0 - ds.0,
        rs.0 / ds.0
    );

    println!("== keeping a DEBIT/TICK answer (held store, fsync), 100 writes");
    let store = HeldStore::new(dir.join("held"));
    let writes: Vec<Duration> = (0..100)
        .map(|i| {
            let r = HeldResponse {
                held_id: format!("{i:016x}"),
                session: "bench".into(),
                card_id: "bebebebebebebebe".into(),
                nt: Some(1),
                command: HeldCommand::Debit,
                k: 1,
                command_apdu: "8054000010".into(),
                response: "9000".into(),
                at: 0,
            };
            let t = Instant::now();
            store.add(r).expect("held write");
            t.elapsed()
        })
        .collect();
    line("held store add (lock, write, fsync, rename)", stats(writes));
}

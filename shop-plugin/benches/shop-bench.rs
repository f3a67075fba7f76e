//! `shop-bench`: how many single purchases per second the plugin completes on this
//! machine, against the ceiling of the same HTTP stack answering a trivial request.
//!
//! Run: `cargo bench -p shop-plugin --bench shop-bench [-- --clients 128 --secs 5 --plugin-only --keep-db]`.
//! Under `cargo test` (no `--bench` argument) it only says how to run it.
//!
//! One process, one tokio runtime (a worker per core), everything on loopback:
//! 1. the ceiling: `http::serve_with` with a handler that answers `{"ok":true}`, driven
//!    by `--clients` closed-loop clients (the tests' hyper client, one pool);
//! 2. the plugin: the real service (SQLite in WAL mode with
//!    synchronous=FULL on disk, the group-committing writer; the SAM applet in process,
//!    state in memory), the same clients each with
//!    an in-process purse card buying in a loop: create (merchant API), initialize,
//!    answer = 3 requests per purchase, every reply checked;
//! 3. latency: purchases started open-loop at half the rate measured in 2, each request
//!    timed (the create from its scheduled start, so queueing counts).

/// The service binary's allocator (src/main.rs), so that the figures are the service's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../tests/support/mod.rs"]
mod support;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use shop_plugin::http::{json_response, serve_with};
use support::{create_single, Http, Plugin, TestCard};
use tokio::sync::{mpsc, Mutex};

const PRICE: u32 = 100;
const START_BALANCE: u32 = 4_000_000_000;

struct Options {
    clients: usize,
    secs: f64,
    warmup: f64,
    /// `--plugin-only`: skip the ceiling and the latency phase (for profiling).
    plugin_only: bool,
    /// `--keep-db`: leave the database for inspection.
    keep_db: bool,
}

fn options() -> Option<Options> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        return None;
    }
    let value = |name: &str, default: f64| -> f64 {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    Some(Options {
        clients: value("--clients", 128.0) as usize,
        secs: value("--secs", 5.0),
        warmup: value("--warmup", 1.0),
        plugin_only: args.iter().any(|a| a == "--plugin-only"),
        keep_db: args.iter().any(|a| a == "--keep-db"),
    })
}

/// One client of a closed-loop phase: does one unit of work at a time.
trait Worker: Send + 'static {
    fn once(&mut self) -> impl Future<Output = ()> + Send;
}

/// A client of the trivial server.
struct Trivial(Http);

impl Worker for Trivial {
    async fn once(&mut self) {
        let (s, _) = self
            .0
            .request("POST", "/", Some(&json!({"ping": 1})), &[])
            .await;
        assert_eq!(s, 200);
    }
}

/// A shopper with a card buying single purchases through the plugin.
struct Buyer {
    http: Http,
    card: TestCard,
    bought: u64,
}

impl Worker for Buyer {
    async fn once(&mut self) {
        self.http.pay(&mut self.card, PRICE).await;
        self.bought += 1;
    }
}

/// CPU time (user + system) this process has used so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// CPU time used so far by this process's threads named `name` (Linux /proc).
fn thread_cpu(name: &str) -> Duration {
    let tick = 100.0; // USER_HZ
    let mut total = 0u64;
    for t in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        // Fields after the ")" of the command: state is field 3; utime 14, stime 15.
        let rest = stat.rsplit(')').next().unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        let n = |i: usize| {
            f.get(i - 3)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        total += n(14) + n(15);
    }
    Duration::from_secs_f64(total as f64 / tick)
}

/// The 1-minute load average: other work on the machine shows in every figure.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// What a closed-loop phase measured.
struct Rate {
    per_sec: f64,
    /// CPU time of the whole process (clients and server) per unit of work.
    cpu_per_unit: Duration,
    /// How busy the database writer thread was (0 to 1).
    writer_busy: f64,
    /// CPU time of the database writer thread per unit of work.
    writer_per_unit: Duration,
}

/// Runs every worker in a loop for warm-up + measurement; returns the units completed
/// per second inside the measurement window, and the workers.
async fn closed_loop<W: Worker>(workers: Vec<W>, o: &Options) -> (Rate, Vec<W>) {
    let start = Instant::now();
    let from = start + Duration::from_secs_f64(o.warmup);
    let until = from + Duration::from_secs_f64(o.secs);
    let mut tasks = Vec::new();
    for mut w in workers {
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            loop {
                w.once().await;
                let t = Instant::now();
                if t >= until {
                    return (n, w);
                }
                if t >= from {
                    n += 1;
                }
            }
        }));
    }
    tokio::time::sleep_until(from.into()).await;
    let cpu_from = cpu_time();
    let writer_from = thread_cpu("db-writer");
    let mut total = 0;
    let mut back = Vec::new();
    for t in tasks {
        let (n, w) = t.await.expect("worker");
        total += n;
        back.push(w);
    }
    let cpu = cpu_time().saturating_sub(cpu_from);
    let writer = thread_cpu("db-writer").saturating_sub(writer_from);
    let rate = Rate {
        per_sec: total as f64 / o.secs,
        cpu_per_unit: cpu / total.max(1) as u32,
        writer_busy: writer.as_secs_f64() / o.secs,
        writer_per_unit: writer / total.max(1) as u32,
    };
    (rate, back)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

#[derive(Default)]
struct Latencies {
    create: Vec<Duration>,
    shopper: Vec<Duration>,
    late_starts: u64,
}

/// Starts purchases at `rate` per second for `secs`, whatever the replies do (open
/// loop); cards come from `cards` and go back after each purchase.
async fn open_loop(http: &Http, cards: Vec<TestCard>, rate: f64, secs: f64) -> Latencies {
    let (give, take) = mpsc::unbounded_channel();
    for c in cards {
        give.send(c).expect("card pool");
    }
    let take = Arc::new(Mutex::new(take));
    let lat = Arc::new(std::sync::Mutex::new(Latencies::default()));
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let n = (rate * secs) as u32;
    let mut tasks = Vec::with_capacity(n as usize);
    for k in 0..n {
        let due = start + interval * k;
        tokio::time::sleep_until(due.into()).await;
        let (http, give, take, lat) = (http.clone(), give.clone(), take.clone(), lat.clone());
        tasks.push(tokio::spawn(async move {
            let mut card = take.lock().await.recv().await.expect("a card");
            let (id, secret, created) = create_single(&http, PRICE).await;
            let create = due.elapsed();
            let (kv, init) = card.initialize(&created);
            let t = Instant::now();
            let (s, step) = http.initialize(&id, &secret, kv, &init).await;
            let t_init = t.elapsed();
            assert_eq!(s, 200, "{step}");
            let answer = card.run(step["command"].as_str().expect("DEBIT"));
            let t = Instant::now();
            let (s, done) = http.answer(&id, &secret, Some(&answer)).await;
            let t_answer = t.elapsed();
            assert_eq!((s, &done["status"]), (200, &json!("succeeded")), "{done}");
            let mut l = lat.lock().expect("latencies");
            l.create.push(create);
            l.shopper.extend([t_init, t_answer]);
            drop(l);
            let _ = give.send(card);
        }));
    }
    for t in tasks {
        t.await.expect("purchase");
    }
    let mut l = std::mem::take(&mut *lat.lock().expect("latencies"));
    l.late_starts = l
        .create
        .iter()
        .filter(|d| **d > Duration::from_millis(25))
        .count() as u64;
    l.create.sort();
    l.shopper.sort();
    l
}

/// The ceiling: the same accept loop and hyper connection code, a trivial handler.
async fn ceiling(o: &Options) -> f64 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(serve_with(listener, |_req| async {
        json_response(200, &json!({"ok": true}))
    }));
    let http = Http::new(addr);
    let workers = (0..o.clients).map(|_| Trivial(http.clone())).collect();
    let (ceiling, _) = closed_loop(workers, o).await;
    println!(
        "trivial hyper ceiling: {:.0} requests/s ({:.0} purchases/s-equivalent at 3 requests per purchase); {:.0} µs CPU per request",
        ceiling.per_sec,
        ceiling.per_sec / 3.0,
        ceiling.cpu_per_unit.as_secs_f64() * 1e6
    );
    ceiling.per_sec
}

async fn run(o: Options) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "shop-bench: {cores} cores, {} clients, {:.0} s measured after {:.0} s warm-up per phase; load average {}",
        o.clients,
        o.secs,
        o.warmup,
        load_average()
    );
    // 1. The ceiling.
    let ceiling = if o.plugin_only {
        f64::NAN
    } else {
        ceiling(&o).await
    };

    // 2. Purchases through the plugin, on disk, durable; the SAM applet in process, in
    //    memory (the baseline of the SAM cards: what the engine and SQLite cost alone).
    let p = Plugin::start_on(
        support::temp_dir("bench"),
        vec![support::memory_sam(support::sam_keys())],
        shop_plugin::http::Limits::default(),
    )
    .await;
    let (journal, sync): (String, i64) = p
        .app
        .engine
        .store()
        .read(|c| {
            Ok((
                c.pragma_query_value(None, "journal_mode", |r| r.get(0))?,
                c.pragma_query_value(None, "synchronous", |r| r.get(0))?,
            ))
        })
        .await
        .expect("pragmas");
    println!(
        "plugin database: {} (journal_mode={journal}, synchronous={sync} (2 = FULL))",
        p.dir.display()
    );
    // One card per client (the harness's cards are numbered 0..=255).
    let clients = o.clients.min(256);
    let workers: Vec<Buyer> = (0..clients)
        .map(|i| Buyer {
            http: Http::clone(&p),
            card: TestCard::new(i as u8, START_BALANCE),
            bought: 0,
        })
        .collect();
    let (measured, workers) = closed_loop(workers, &o).await;
    let rate = measured.per_sec;
    for w in &workers {
        assert_eq!(
            u64::from(START_BALANCE - w.card.balance()),
            w.bought * u64::from(PRICE),
            "a card paid for exactly its purchases"
        );
    }
    println!(
        "plugin: {rate:.0} completed purchases/s = {:.0} requests/s; {:.0} µs CPU per purchase; database writer thread {:.0}% busy ({:.0} µs per purchase)",
        rate * 3.0,
        measured.cpu_per_unit.as_secs_f64() * 1e6,
        measured.writer_busy * 100.0,
        measured.writer_per_unit.as_secs_f64() * 1e6
    );
    println!(
        "ratio to the trivial ceiling: {:.1}% (requests/s), {:.1}% (purchases/s vs purchases/s-equivalent)",
        100.0 * rate * 3.0 / ceiling,
        100.0 * rate / (ceiling / 3.0)
    );

    if o.plugin_only {
        if !o.keep_db {
            let _ = std::fs::remove_dir_all(&p.dir);
        }
        return;
    }

    // 3. Latency at half that load, open loop.
    let half = rate / 2.0;
    let cards: Vec<TestCard> = workers.into_iter().map(|w| w.card).collect();
    let l = open_loop(&p, cards, half, o.secs).await;
    println!(
        "latency at {half:.0} purchases/s (open loop, {} purchases): shopper requests p50 {} p99 {} max {}; create p50 {} p99 {} (from its scheduled start; {} started over 25 ms late)",
        l.create.len(),
        ms(percentile(&l.shopper, 0.50)),
        ms(percentile(&l.shopper, 0.99)),
        ms(percentile(&l.shopper, 1.0)),
        ms(percentile(&l.create, 0.50)),
        ms(percentile(&l.create, 0.99)),
        l.late_starts
    );
    let p99 = percentile(&l.shopper, 0.99);
    println!(
        "goal: >= 5000 purchases/s: {}; shopper p99 < 25 ms at half load: {}",
        if rate >= 5000.0 { "met" } else { "MISSED" },
        if p99 < Duration::from_millis(25) {
            "met"
        } else {
            "MISSED"
        }
    );
    println!("load average at the end: {}", load_average());
    if !o.keep_db {
        let _ = std::fs::remove_dir_all(&p.dir);
    }
}

fn main() {
    let Some(o) = options() else {
        println!("shop-bench: run it with `cargo bench -p shop-plugin --bench shop-bench`");
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(o));
}

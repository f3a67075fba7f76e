//! The load on the SAMs: one purse card per SAM plays the shopper (the card applet in
//! the benchmark's process, state in memory, the same in every setup, so the figures
//! are the SAM's), buying single purchases of 1 cent: BEGIN, card INITIALIZE,
//! AUTHORIZE, card DEBIT, COMPLETE. Driven closed loop (each SAM as fast as it answers)
//! or open loop (purchases arriving on a fixed schedule, each taken by the first free
//! SAM, its latency counted from its scheduled arrival so that queueing counts).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use purse::card::{Card, MemoryStore};
use purse::commands::CardCommand;
use purse::sam::Order;
use purse::{Amount, CardId, DateTime, Rnd};
use testkit::{new_card_state, TEST_KV};

use crate::sam_host::{Expect, SamLink};

/// One SAM and the purse card paying through it.
pub struct Lane {
    pub sam: SamLink,
    card: Card,
    /// Purchases so far; each AUTHORIZE is a second later than the one before.
    done: u32,
}

fn card_apdu(ins: u8, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
    let mut a = vec![0x80, ins, p1, p2, data.len() as u8];
    a.extend_from_slice(data);
    a.push(0);
    a
}

impl Lane {
    /// `sam` (SELECTed) and a fresh purse card, SELECTed too.
    pub fn new(sam: SamLink, card_last: u8) -> Lane {
        let mut card = Card::new(
            new_card_state(
                CardId([0x10, 0, 0, 0, 0, 0, 0xB1, card_last]),
                Amount(1_000_000_000),
            ),
            Box::new(|| Rnd([0x33; 16])),
        );
        let select = card.process(&CardCommand::select().encode(), &mut MemoryStore);
        assert_eq!(&select[select.len() - 2..], [0x90, 0x00], "card SELECT");
        Lane { sam, card, done: 0 }
    }

    /// One purchase; the time each SAM command took (BEGIN, AUTHORIZE, COMPLETE).
    fn purchase(&mut self) -> [Duration; 3] {
        let order = Order::single(Amount(1));
        let now = DateTime(1_795_000_000 + self.done);
        self.done += 1;
        let t = Instant::now();
        let (init, begin) = self.sam.begin(&order).expect("BEGIN");
        let begin_time = t.elapsed();
        let r = self.card.process(
            &card_apdu(0x50, order.mode.p1(), TEST_KV.0, &init),
            &mut MemoryStore,
        );
        let t = Instant::now();
        let (debit, ctx) = self
            .sam
            .authorize(TEST_KV, now, &r[..r.len() - 2], &begin)
            .expect("AUTHORIZE");
        let authorize_time = t.elapsed();
        let answer = self
            .card
            .process(&card_apdu(0x54, 0, 0, &debit), &mut MemoryStore);
        let t = Instant::now();
        self.sam
            .complete(&answer, &ctx)
            .expect("COMPLETE")
            .counted();
        [begin_time, authorize_time, t.elapsed()]
    }
}

/// What a closed-loop run measured, all lanes together.
pub struct Closed {
    pub purchases: u64,
    pub elapsed: Duration,
    /// SAM APDUs exchanged (each one round trip: the SAM answers T=1, no GET RESPONSE).
    pub apdus: u64,
    /// Per SAM command: BEGIN, AUTHORIZE, COMPLETE.
    pub times: [Vec<Duration>; 3],
}

impl Closed {
    pub fn rate(&self) -> f64 {
        self.purchases as f64 / self.elapsed.as_secs_f64()
    }
}

/// Every lane buying in a loop, in a thread each, for `run`.
pub fn closed(lanes: &mut [Lane], run: Duration) -> Closed {
    let start = Instant::now();
    let per_lane: Vec<(u64, u64, [Vec<Duration>; 3])> = thread::scope(|s| {
        let handles: Vec<_> = lanes
            .iter_mut()
            .map(|lane| {
                s.spawn(move || {
                    let apdus = lane.sam.round_trips;
                    let mut times = [(); 3].map(|()| Vec::new());
                    let mut n = 0;
                    // At least one purchase, however short the run.
                    loop {
                        for (v, t) in times.iter_mut().zip(lane.purchase()) {
                            v.push(t);
                        }
                        n += 1;
                        if start.elapsed() >= run {
                            break;
                        }
                    }
                    (n, lane.sam.round_trips - apdus, times)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("lane thread"))
            .collect()
    });
    let elapsed = start.elapsed();
    let mut all = Closed {
        purchases: 0,
        elapsed,
        apdus: 0,
        times: [(); 3].map(|()| Vec::new()),
    };
    for (n, apdus, times) in per_lane {
        all.purchases += n;
        all.apdus += apdus;
        for (a, t) in all.times.iter_mut().zip(times) {
            a.extend(t);
        }
    }
    all
}

/// Purchases arriving every `1 / rate` s during `run`, each taken by the first free
/// lane (a shared queue); the latency of each from its scheduled arrival to the
/// COMPLETE answer. A lane that falls behind delays the purchases queued after it, as
/// a queue of shoppers would be.
pub fn open(lanes: &mut [Lane], rate: f64, run: Duration) -> Vec<Duration> {
    let total = (rate * run.as_secs_f64()) as u64;
    let next = AtomicU64::new(0);
    let all = Mutex::new(Vec::with_capacity(total as usize));
    let start = Instant::now();
    thread::scope(|s| {
        for lane in lanes.iter_mut() {
            let (next, all) = (&next, &all);
            s.spawn(move || {
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let due = start + Duration::from_secs_f64(i as f64 / rate);
                    // The schedule, not a condition: this purchase is not due before.
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        thread::sleep(wait);
                    }
                    lane.purchase();
                    mine.push(due.elapsed());
                }
                all.lock().expect("latencies").extend(mine);
            });
        }
    });
    all.into_inner().expect("latencies")
}

/// The `q` quantile of `v` (sorted here).
pub fn quantile(v: &mut [Duration], q: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort_unstable();
    v[((v.len() as f64 - 1.0) * q).round() as usize]
}

//! Property tests of the SAM applet: no byte string and no mutation of a genuine session's
//! commands panics it, every answer ends in a status word, and mutated commands never make
//! it count more than the genuine session did.

mod common;
mod sam_applet_host;

use proptest::collection::vec;
use proptest::prelude::*;

use purse::sam::Order;
use purse::sam_applet::{MemorySamStore, SamApplet, SAM_AID};
use purse::{Amount, CardId, DateTime, Rnd, SamId, Units};
use sam_applet_host::{authorize, purchase, sam_state, Host, Outcome, Shopper, Step};

const T0: u32 = 1_795_000_000;

fn fresh() -> SamApplet {
    SamApplet::new(sam_state(common::test_sam_keys(SamId([0x5A; 8]))))
}

/// A genuine session: a purchase, a time-cycle with a tick and a stop, a close.
fn genuine() -> (Vec<Step>, u64) {
    let mut host = Host::new(common::test_sam_keys(SamId([0x5A; 8])));
    let mut s = Shopper {
        card: common::test_card(CardId([0x10; 8]), 5000),
    };
    purchase(&mut host, &mut s, 250, DateTime(T0)).expect("purchase");
    let order = Order::time_cycle(Amount(20), Units(3), 60);
    let (debit, ctx) = authorize(&mut host, &mut s, &order, DateTime(T0)).expect("tc");
    let Ok(Outcome::Running(ctx)) = host.complete(&s.debit(&debit), &ctx) else {
        panic!("running");
    };
    let (tick, pending) = host.tick(DateTime(T0 + 60), &ctx).expect("tick");
    let Ok(Outcome::Running(ctx)) = host.complete(&s.tick(&tick), &pending) else {
        panic!("running");
    };
    host.stop(0, &ctx).expect("stop");
    let sum = host.sam.state().period.sum.0;
    (host.steps, sum)
}

fn select() -> Vec<u8> {
    let mut a = vec![0x00, 0xA4, 0x04, 0x00, 0x07];
    a.extend_from_slice(&SAM_AID);
    a
}

type Edit = (usize, u8, usize, u8);

/// Edits of step `s % n`: kind 0 set a byte, 1 truncate, 2 push, 3 remove a byte.
fn mutate(steps: &[Step], edits: &[Edit]) -> Vec<Vec<u8>> {
    let mut apdus: Vec<Vec<u8>> = steps.iter().map(|s| s.apdu.clone()).collect();
    for &(s, kind, i, v) in edits {
        let a = &mut apdus[s % steps.len()];
        let i = i % a.len().max(1);
        match kind % 4 {
            0 if !a.is_empty() => a[i] = v,
            1 => a.truncate(i),
            2 => a.push(v),
            _ if !a.is_empty() => {
                a.remove(i);
            }
            _ => {}
        }
    }
    apdus
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(cmds in vec(vec(any::<u8>(), 0..300), 1..12), sel in any::<bool>()) {
        let mut sam = fresh();
        if sel {
            sam.process(&select(), Rnd([1; 16]), &mut MemorySamStore);
        }
        for c in cmds {
            let r = sam.process(&c, Rnd([2; 16]), &mut MemorySamStore);
            prop_assert!(r.len() >= 2);
        }
    }

    #[test]
    fn mutated_sessions_never_panic_nor_count_more(edits in vec((0usize..64, any::<u8>(), any::<usize>(), any::<u8>()), 1..6)) {
        let (steps, genuine_sum) = genuine();
        let mut sam = fresh();
        for (a, step) in mutate(&steps, &edits).iter().zip(&steps) {
            let r = sam.process(a, step.rnd, &mut MemorySamStore);
            prop_assert!(r.len() >= 2);
        }
        let st = sam.state();
        prop_assert!(st.period.sum.0 + st.closed.sum.0 <= genuine_sum);
    }
}

#[test]
fn the_genuine_session_replays() {
    let (steps, sum) = genuine();
    assert_eq!(sum, 250 + 40);
    let mut sam = fresh();
    for s in &steps {
        assert_eq!(
            sam.process(&s.apdu, s.rnd, &mut MemorySamStore),
            s.response,
            "{}",
            s.name
        );
    }
}

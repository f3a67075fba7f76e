//! Property tests of the card applet: no APDU sequence panics it, money moves only through
//! a DEBIT or TICK whose MAC verifies, and a failing store leaves the card unchanged.

use proptest::collection::vec;
use proptest::prelude::*;

use purse::apdu::Response;
use purse::card::{Card, CardState, CardStore, MemoryStore, StoreError};
use purse::commands::{
    CardCommand, DebitCmd, DebitResponse, InitializeCmd, InitializeResponse, TickCmd, TxRecord,
};
use purse::macs::{proof_key, s2, s2k, s3, session_key, SessionParams, TacInput};
use purse::{
    Amount, CardId, Currency, DateTime, Key, KeyVersion, Mac8, Mode, Nt, Rnd, SamId, SamTxSeq,
    Units,
};

const SAM: SamId = SamId([0x5a, 0, 0, 0, 0, 0, 0, 1]);
const BALANCE: u32 = 1000;

/// Card E-like state with three records already, so GET TRANSACTION PROOF can succeed.
fn start_state() -> CardState {
    let mut s = CardState::new(
        CardId([0x10, 0, 0, 0, 0, 0, 0, 0xe1]),
        KeyVersion(1),
        Currency::EUR,
        Amount(BALANCE),
        Key::from_bytes([0x53; 16]),
        Key::from_bytes([0xad; 16]),
    );
    for nt in 1..=3u32 {
        let mut b = [1u8; TxRecord::LEN];
        b[..4].copy_from_slice(&nt.to_be_bytes());
        s.put_record(TxRecord::parse(&b).expect("51 bytes"));
    }
    s.nt_last = Nt(3);
    s
}

fn new_card() -> Card {
    let mut n = 0u8;
    Card::new(
        start_state(),
        Box::new(move || {
            n = n.wrapping_add(1);
            Rnd([n; 16])
        }),
    )
}

/// Counts persists; fails the `fail_at`-th one (0-based) and every one if `always`.
#[derive(Default)]
struct TestStore {
    calls: usize,
    fail_at: Option<usize>,
    always: bool,
    last: Option<CardState>,
}

impl CardStore for TestStore {
    fn persist(&mut self, state: &CardState) -> Result<(), StoreError> {
        let n = self.calls;
        self.calls += 1;
        if self.always || self.fail_at == Some(n) {
            return Err(StoreError("disk full".into()));
        }
        self.last = Some(state.clone());
        Ok(())
    }
}

fn sw(resp: &[u8]) -> u16 {
    Response::parse(resp).map_or(0, |r| r.sw.0)
}

fn init_cmd(mode: Mode, u: u32, max_units: u16, rnd_s: [u8; 16]) -> InitializeCmd {
    InitializeCmd {
        mode,
        kv: KeyVersion(1),
        sam_id: SAM,
        rnd_s: Rnd(rnd_s),
        u: Amount(u),
        max_units: Units(max_units),
    }
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![
        Just(Mode::StatusOnly),
        Just(Mode::Single),
        Just(Mode::TimeCycle)
    ]
}

/// Well-formed commands, with MACs nobody computed.
fn valid_command() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => Just(CardCommand::select().encode()),
        3 => (mode(), 0u32..2000, 0u16..4, any::<[u8; 16]>())
            .prop_map(|(m, u, x, r)| CardCommand::Initialize(init_cmd(m, u, x, r)).encode()),
        2 => (any::<u32>(), any::<u32>(), any::<[u8; 8]>()).prop_map(|(q, d, m)| {
            CardCommand::Debit(DebitCmd {
                sam_tx_seq: SamTxSeq(q),
                datetime: DateTime(d),
                s2: Mac8(m),
            })
            .encode()
        }),
        2 => (0u16..6, any::<[u8; 8]>())
            .prop_map(|(k, m)| CardCommand::Tick(TickCmd { k: Units(k), s2k: Mac8(m) }).encode()),
        1 => (0u32..6).prop_map(|nt| CardCommand::GetProof { nt: Nt(nt) }.encode()),
    ]
}

/// An edit of a command: (kind, position, byte); kinds set, truncate, push, remove.
type Edit = (u8, usize, u8);

fn apply(mut b: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for &(kind, i, v) in edits {
        let i = i % b.len().max(1);
        match kind {
            0 if i < b.len() => b[i] = v,
            1 => b.truncate(i),
            2 => b.push(v),
            3 if i < b.len() => drop(b.remove(i)),
            _ => {}
        }
    }
    b
}

/// Random bytes, bytes with a purse CLA and INS, valid and mutated commands.
fn junk_apdu() -> impl Strategy<Value = Vec<u8>> {
    let cla = prop_oneof![Just(0x00u8), Just(0x80u8), any::<u8>()];
    let ins = prop_oneof![
        proptest::sample::select(vec![0xA4u8, 0x50, 0x54, 0x56, 0x5A]),
        any::<u8>()
    ];
    prop_oneof![
        1 => vec(any::<u8>(), 0..48),
        1 => (cla, ins, vec(any::<u8>(), 0..40)).prop_map(|(c, i, rest)| {
            let mut v = vec![c, i];
            v.extend(rest);
            v
        }),
        2 => valid_command(),
        3 => (valid_command(), vec((0u8..4, any::<usize>(), any::<u8>()), 1..4)).prop_map(|(b, e)| apply(b, &e)),
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Reset,
    Apdu(Vec<u8>),
}

fn junk_op() -> impl Strategy<Value = Op> {
    prop_oneof![1 => Just(Op::Reset), 12 => junk_apdu().prop_map(Op::Apdu)]
}

const KNOWN_SW: [u16; 12] = [
    0x9000, 0x6E00, 0x6D00, 0x6A86, 0x6700, 0x6985, 0x6A82, 0x6A83, 0x6A80, 0x6982, 0x9401, 0x6581,
];

/// What the test's SAM knows of the session opened by the card's last good INITIALIZE.
struct View {
    params: SessionParams,
    ks: Key,
}

/// A step of a purchase run by a SAM that has the keys, mixed with junk.
#[derive(Clone, Debug)]
enum Step {
    Op(Op),
    Select,
    Init(Mode, u32, u16),
    /// Whether the SAM computes the MAC, and SAM_TxSeq.
    Debit(bool, u32),
    /// Whether the SAM computes the MAC, and k.
    Tick(bool, u16),
    Proof(u32),
    /// SELECT, INITIALIZE, a good DEBIT and `ticks` good TICKs.
    Run(Mode, u32, u16, u16),
}

/// Expands each [`Step::Run`] into its commands.
fn expand(steps: &[Step]) -> Vec<Step> {
    let mut out = Vec::new();
    for st in steps {
        let Step::Run(m, u, x, ticks) = st else {
            out.push(st.clone());
            continue;
        };
        out.extend([Step::Select, Step::Init(*m, *u, *x)]);
        out.push(Step::Debit(true, 1));
        out.extend((2..ticks + 2).map(|k| Step::Tick(true, k)));
    }
    out
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => junk_op().prop_map(Step::Op),
        2 => Just(Step::Select),
        3 => (mode(), 0u32..400, 0u16..5).prop_map(|(m, u, x)| Step::Init(m, u, x)),
        3 => (proptest::bool::weighted(0.8), 1u32..100)
            .prop_map(|(good, seq)| Step::Debit(good, seq)),
        3 => (proptest::bool::weighted(0.8), 1u16..6).prop_map(|(good, k)| Step::Tick(good, k)),
        1 => (0u32..8).prop_map(Step::Proof),
        2 => (mode(), 1u32..200, 1u16..5, 0u16..5).prop_map(|(m, u, x, t)| Step::Run(m, u, x, t)),
    ]
}

/// The command bytes of `step` (None for a reset) and whether it carries a MAC the
/// test's SAM computed for its view of the session.
fn command(step: &Step, view: Option<&View>, counter: u8) -> Option<(Vec<u8>, bool)> {
    let cmd = match step {
        Step::Op(Op::Reset) | Step::Run(..) => return None,
        Step::Op(Op::Apdu(b)) => return Some((b.clone(), false)),
        Step::Select => CardCommand::select(),
        Step::Init(m, u, x) => CardCommand::Initialize(init_cmd(*m, *u, *x, [counter; 16])),
        Step::Proof(nt) => CardCommand::GetProof { nt: Nt(*nt) },
        Step::Debit(good, seq) => {
            let (seq, dt) = (SamTxSeq(*seq), DateTime(1_795_000_000));
            let s2 = view
                .filter(|_| *good)
                .map_or(Mac8([counter; 8]), |v| s2(&v.ks, &v.params, seq, dt));
            let c = DebitCmd {
                sam_tx_seq: seq,
                datetime: dt,
                s2,
            };
            return Some((CardCommand::Debit(c).encode(), *good && view.is_some()));
        }
        Step::Tick(good, k) => {
            let k = Units(*k);
            let s2k = view
                .filter(|_| *good)
                .map_or(Mac8([counter; 8]), |v| s2k(&v.ks, v.params.nt, k));
            let c = TickCmd { k, s2k };
            return Some((CardCommand::Tick(c).encode(), *good && view.is_some()));
        }
    };
    Some((cmd.encode(), false))
}

/// After a successful INITIALIZE (whoever built it), the SAM's view of its session.
fn view_of(sent: &[u8], resp: &[u8], state: &CardState) -> Option<View> {
    let Ok(CardCommand::Initialize(c)) = CardCommand::decode(sent, Some(state.kv)) else {
        return None;
    };
    let r = Response::parse(resp).ok().filter(|r| r.sw.is_ok())?;
    let ir = InitializeResponse::parse(&r.data).ok()?;
    let ks = session_key(
        &state.k_pur,
        ir.card_id,
        ir.nt,
        c.sam_id,
        &c.rnd_s,
        &ir.rnd_c,
    );
    let params = SessionParams {
        card_id: ir.card_id,
        nt: ir.nt,
        sam_id: c.sam_id,
        mode: c.mode,
        u: c.u,
        max_units: c.max_units,
    };
    Some(View { params, ks })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Nothing a generator without the keys sends panics the card or moves money.
    #[test]
    fn junk_never_panics_nor_changes_persistent_state(ops in vec(junk_op(), 1..60)) {
        let mut card = new_card();
        let mut store = TestStore::default();
        let start = start_state();
        for op in &ops {
            match op {
                Op::Reset => card.reset(),
                Op::Apdu(b) => {
                    let resp = card.process(b, &mut store);
                    prop_assert!(resp.len() >= 2);
                    let sw = sw(&resp);
                    prop_assert!(KNOWN_SW.contains(&sw), "SW {sw:04X}");
                    let data = resp.len() - 2;
                    let expected_data: &[usize] = if sw == 0x9000 { &[20, 42, 51] } else { &[0] };
                    prop_assert!(expected_data.contains(&data), "SW {:04X} with {} data bytes", sw, data);
                }
            }
            prop_assert_eq!(card.state(), &start);
        }
        prop_assert_eq!(store.calls, 0);
    }

    /// The balance, NT_last and log change only on a 9000 to a DEBIT or TICK whose MAC
    /// the SAM computed, by exactly U, with an S3 and TAC that verify.
    #[test]
    fn money_moves_only_through_verified_macs(steps in vec(step(), 1..60)) {
        let mut card = new_card();
        let mut store = TestStore::default();
        let mut view: Option<View> = None;
        let mut charged = 0u32;
        for (i, st) in expand(&steps).iter().enumerate() {
            let Some((bytes, good_mac)) = command(st, view.as_ref(), i as u8) else {
                card.reset();
                continue;
            };
            let before = card.state().clone();
            let resp = card.process(&bytes, &mut store);
            let after = card.state().clone();
            prop_assert!(after.validate().is_ok());
            if let Some(v) = view_of(&bytes, &resp, &before) {
                view = Some(v);
            }
            if after == before {
                continue;
            }
            prop_assert!(good_mac, "state changed without a computed MAC: {st:?}");
            prop_assert_eq!(store.last.as_ref(), Some(&after));
            let v = view.as_ref().expect("a MAC needs a view");
            let r = Response::parse(&resp).expect("response");
            prop_assert!(r.sw.is_ok());
            let d = DebitResponse::parse(&r.data).expect("DEBIT response");
            prop_assert_eq!(before.balance.0.checked_sub(after.balance.0), Some(v.params.u.0));
            prop_assert_eq!(d.balance_after, after.balance);
            prop_assert_eq!(after.nt_last, v.params.nt);
            let rec = after.record(v.params.nt).expect("R(NT)");
            prop_assert_eq!(Some(rec.total), v.params.u.checked_mul(rec.units));
            prop_assert!(d.s3.verify(&s3(&v.ks, v.params.nt, rec.units, rec.total, d.balance_after, &d.tac)));
            let tac = TacInput {
                card_id: v.params.card_id, nt: v.params.nt, sam_id: v.params.sam_id,
                sam_tx_seq: rec.sam_tx_seq, datetime: rec.datetime, mode: v.params.mode.p1(),
                u: v.params.u, units: rec.units, total: rec.total,
                balance_after: d.balance_after, currency: after.currency,
            };
            prop_assert!(d.tac.verify(&tac.mac(&proof_key(&after.k_tac, v.params.card_id, v.params.nt))));
            charged += v.params.u.0;
        }
        prop_assert_eq!(BALANCE - card.state().balance.0, charged);
    }

    /// A store that fails the n-th charge of a time-cycle (4 units of at most 250, all
    /// funded): 6581, nothing changed, the session gone; the NT is not used up.
    #[test]
    fn failing_store_answers_6581_and_changes_nothing(
        u in 1u32..=250, fail_at in 0usize..4, junk in vec(junk_op(), 0..8),
    ) {
        let mut card = new_card();
        for op in &junk {
            match op {
                Op::Reset => card.reset(),
                Op::Apdu(b) => { card.process(b, &mut MemoryStore); }
            }
        }
        let mut store = TestStore { fail_at: Some(fail_at), ..TestStore::default() };
        prop_assert_eq!(sw(&card.process(&CardCommand::select().encode(), &mut store)), 0x9000);
        let init = CardCommand::Initialize(init_cmd(Mode::TimeCycle, u, 4, [7; 16])).encode();
        let resp = card.process(&init, &mut store);
        let v = view_of(&init, &resp, card.state()).expect("INITIALIZE succeeds");
        let (seq, dt) = (SamTxSeq(1), DateTime(1_795_000_000));
        let mut cmds = vec![CardCommand::Debit(DebitCmd {
            sam_tx_seq: seq, datetime: dt, s2: s2(&v.ks, &v.params, seq, dt),
        })];
        for k in 2..=4 {
            cmds.push(CardCommand::Tick(TickCmd { k: Units(k), s2k: s2k(&v.ks, v.params.nt, Units(k)) }));
        }
        for (n, c) in cmds.iter().enumerate() {
            let before = card.state().clone();
            let resp = card.process(&c.encode(), &mut store);
            match n.cmp(&fail_at) {
                std::cmp::Ordering::Less => prop_assert_eq!(sw(&resp), 0x9000),
                std::cmp::Ordering::Equal => {
                    prop_assert_eq!(resp, vec![0x65, 0x81]);
                    prop_assert_eq!(card.state(), &before);
                    prop_assert!(!card.has_session());
                }
                // The session ended with the 6581.
                std::cmp::Ordering::Greater => {
                    prop_assert_eq!(sw(&resp), 0x6985);
                    prop_assert_eq!(card.state(), &before);
                }
            }
        }
        prop_assert_eq!(store.calls, fail_at + 1);
        // The failed charge used nothing up: a new session still gets the next NT.
        let resp = card.process(&init, &mut store);
        let again = view_of(&init, &resp, card.state()).expect("INITIALIZE succeeds");
        prop_assert_eq!(again.params.nt, Nt(card.state().nt_last.0 + 1));
    }

    /// With a store that always fails, no sequence at all changes the card.
    #[test]
    fn always_failing_store_keeps_the_card(steps in vec(step(), 1..40)) {
        let mut card = new_card();
        let mut store = TestStore { always: true, ..TestStore::default() };
        let mut view: Option<View> = None;
        for (i, st) in expand(&steps).iter().enumerate() {
            let Some((bytes, _)) = command(st, view.as_ref(), i as u8) else {
                card.reset();
                continue;
            };
            let resp = card.process(&bytes, &mut store);
            if let Some(v) = view_of(&bytes, &resp, card.state()) {
                view = Some(v);
            }
            prop_assert_eq!(card.state(), &start_state());
        }
    }
}

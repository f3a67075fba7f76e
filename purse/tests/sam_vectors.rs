//! Replays the SAM side of the vectors: every scenario case in order on one SAM (with
//! its four closes and the clearing decision), and every recovery case on a fresh SAM.
//! The SAM must build the same commands byte for byte and reach the same outcomes.

mod common;

use std::collections::BTreeMap;

use common::{hex, issuer_keys, sam_keys, vectors};
use purse::apdu::Response;
use purse::commands::{CardCommand, SelectInfo};
use purse::keys::IssuerKeys;
use purse::macs::session_key;
use purse::sam::{
    Begun, Completion, Exchange, Order, Outcome, Recovery, RecoveryStep, Sam, SamError, SamTx,
    TxState,
};
use purse::{CardId, DateTime, KeyVersion, Mode, Rnd, SamTxSeq};
use serde_json::{json, Value};

/// The SAM's side of one case being replayed.
struct Replay<'a> {
    sam: Sam,
    issuer: &'a IssuerKeys,
    kv: Option<KeyVersion>,
    card: Option<CardId>,
    begun: Option<Begun>,
    /// The transaction of the last authorize, and the command the SAM built next.
    current: Option<SamTxSeq>,
    expected: Option<CardCommand>,
    recovery: Option<Recovery>,
    outcomes: BTreeMap<u32, &'static str>,
    refused: bool,
    /// Commands the SAM built and compared with the vectors, byte for byte.
    checked: usize,
}

fn answer(step: &Value) -> Exchange {
    if step["lost"].as_bool() == Some(true) || step.get("response").is_none() {
        return Exchange::Failed;
    }
    Exchange::Answered(Response::parse(&hex(&step["response"])).expect("response"))
}

fn result_label(c: &Completion) -> &'static str {
    match c {
        Completion::Confirmed { .. } => "completed",
        Completion::Voided { .. } => "voided",
        Completion::Lost => "lost",
    }
}

fn outcome_label(o: Outcome) -> &'static str {
    match o {
        Outcome::Completed => "completed",
        Outcome::Voided => "voided",
        Outcome::Pending => "pending",
    }
}

/// The DateTime of the DEBIT that follows step `i` (the SAM's clock at authorize).
fn next_debit_datetime(steps: &[Value], i: usize) -> u32 {
    steps[i + 1..]
        .iter()
        .find(|s| s.get("datetime").is_some() && s["by"].as_str() != Some("other_sam"))
        .and_then(|s| s["datetime"].as_u64())
        .map_or(0, |d| d as u32)
}

impl<'a> Replay<'a> {
    fn new(sam: Sam, issuer: &'a IssuerKeys) -> Self {
        Replay {
            sam,
            issuer,
            kv: None,
            card: None,
            begun: None,
            current: None,
            expected: None,
            recovery: None,
            outcomes: BTreeMap::new(),
            refused: false,
            checked: 0,
        }
    }

    fn recovery_step(&mut self, ans: &Exchange, ctx: &str) {
        let rec = self.recovery.as_mut().expect("a recovery is running");
        match self.sam.recovery_answer(rec, ans) {
            RecoveryStep::Send { command, .. } => self.expected = Some(command),
            RecoveryStep::Done { outcomes, .. } => {
                for (seq, o) in outcomes {
                    self.outcomes.insert(seq.0, outcome_label(o));
                }
                self.recovery = None;
                self.expected = None;
            }
        }
        let _ = ctx;
    }

    fn step(&mut self, steps: &[Value], i: usize, ctx: &str) {
        let step = &steps[i];
        if step.get("event").is_some() || step["by"].as_str() == Some("other_sam") {
            return;
        }
        let ctx = format!(
            "{ctx} step {i} ({})",
            step["description"].as_str().unwrap_or("")
        );
        let bytes = hex(&step["command"]);
        let cmd = CardCommand::decode(&bytes, None)
            .unwrap_or_else(|sw| panic!("{ctx}: undecodable {sw}"));
        let is_recovery = step["recovery"].as_bool() == Some(true)
            || step["description"]
                .as_str()
                .is_some_and(|d| d.starts_with("recovery:"));
        match &cmd {
            CardCommand::Select { .. } => {
                let r = Response::parse(&hex(&step["response"])).expect("select response");
                let info = SelectInfo::parse(&r.data).expect("FCI");
                self.kv = Some(info.kv);
                self.card = Some(info.card_id);
            }
            CardCommand::Initialize(c) if c.mode == Mode::StatusOnly => {
                let rnd_s = Rnd::from_slice(&hex(&step["rnd_s"])).expect("rnd_s");
                let (rec, built) = self
                    .sam
                    .start_recovery(self.card.expect("card"), self.kv.expect("kv"), rnd_s)
                    .unwrap_or_else(|| panic!("{ctx}: nothing pending to recover"));
                assert_eq!(built.encode(), bytes, "{ctx}: recovery INITIALIZE");
                self.checked += 1;
                self.recovery = Some(rec);
                self.recovery_step(&answer(step), &ctx);
            }
            CardCommand::Initialize(c) => {
                let period = step["order"]["period"].as_u64().unwrap_or(60) as u32;
                let order = Order {
                    mode: c.mode,
                    unit_amount: c.u,
                    max_units: c.max_units,
                    period_secs: if c.mode == Mode::TimeCycle { period } else { 0 },
                };
                let rnd_s = Rnd::from_slice(&hex(&step["rnd_s"])).expect("rnd_s");
                let begun = self.sam.begin(order, rnd_s).expect("begin");
                let kv = self.kv.expect("SELECT before INITIALIZE");
                assert_eq!(
                    CardCommand::Initialize(begun.initialize(kv)).encode(),
                    bytes,
                    "{ctx}: INITIALIZE"
                );
                self.checked += 1;
                let now = DateTime(next_debit_datetime(steps, i));
                let before = self.sam.next_tx_seq();
                match self.sam.authorize(&begun, kv, &answer(step), now) {
                    Ok(a) => {
                        self.current = Some(a.durable.tx.sam_tx_seq);
                        self.expected = Some(CardCommand::Debit(a.debit));
                    }
                    Err(_) => {
                        assert_eq!(
                            self.sam.next_tx_seq(),
                            before,
                            "{ctx}: a refusal allocates nothing"
                        );
                        self.refused = true;
                        self.expected = None;
                    }
                }
                self.begun = Some(begun);
            }
            CardCommand::Debit(_) => {
                assert_eq!(
                    self.expected.as_ref().map(CardCommand::encode),
                    Some(bytes),
                    "{ctx}: DEBIT"
                );
                self.checked += 1;
                let seq = self.current.expect("authorized");
                let (c, _) = self.sam.complete(seq, &answer(step)).expect("complete");
                if let Some(want) = step["sam_result"].as_str() {
                    assert_eq!(result_label(&c), want, "{ctx}");
                }
            }
            CardCommand::Tick(t) => {
                let seq = self.current.expect("authorized");
                let due = self.sam.tx(seq).expect("open tx").due_at(t.k) as u32;
                let now = DateTime(step["shop_clock"].as_u64().map_or(due, |c| c as u32));
                match self.sam.tick(seq, now) {
                    Ok(tick) => {
                        assert_eq!(
                            CardCommand::Tick(tick.command).encode(),
                            bytes,
                            "{ctx}: TICK"
                        );
                        self.checked += 1;
                        let (c, _) = self.sam.complete(seq, &answer(step)).expect("complete");
                        if let Some(want) = step["sam_result"].as_str() {
                            assert_eq!(result_label(&c), want, "{ctx}");
                        }
                    }
                    // The vectors send a TICK beyond the cap to the card; a SAM never does.
                    Err(SamError::CapReached { .. }) | Err(SamError::NotRunning(_)) => {
                        assert!(
                            !Response::parse(&hex(&step["response"]))
                                .expect("r")
                                .sw
                                .is_ok(),
                            "{ctx}"
                        );
                    }
                    Err(e) => panic!("{ctx}: {e}"),
                }
            }
            CardCommand::GetProof { .. } if is_recovery => {
                assert_eq!(
                    self.expected.as_ref().map(CardCommand::encode),
                    Some(bytes),
                    "{ctx}: GET PROOF"
                );
                self.checked += 1;
                self.recovery_step(&answer(step), &ctx);
            }
            CardCommand::GetProof { .. } => {}
        }
    }

    /// The vectors' `sam_tx` view of one of our transactions.
    fn view(&self, tx: &SamTx) -> Value {
        let k_pur = self.issuer.get(tx.kv).expect("kv").k_pur(tx.card_id);
        let ks = session_key(
            &k_pur,
            tx.card_id,
            tx.nt,
            self.sam.sam_id(),
            &tx.rnd_s,
            &tx.rnd_c,
        );
        let state = match tx.state {
            TxState::Pending => "pending",
            // A running time-cycle's confirmed units are complete as far as they go.
            TxState::Running | TxState::Completed => "completed",
            TxState::Voided => "voided",
            TxState::Cleared => "cleared",
        };
        let c = tx.confirmed.as_ref();
        let mut v = json!({
            "sam_tx_seq": tx.sam_tx_seq.0, "state": state, "kv": tx.kv.0,
            "card_id": tx.card_id.to_hex(), "nt": tx.nt.0, "balance": tx.balance.0,
            "mode": tx.order.mode.p1(), "unit_amount": tx.order.unit_amount.0,
            "max_units": tx.order.max_units.0, "datetime": tx.datetime.0,
            "rnd_s": tx.rnd_s.to_hex(), "rnd_c": tx.rnd_c.to_hex(), "ks": ks.expose_hex(),
            "units": c.map_or(0, |c| c.units.0), "total": c.map_or(0, |c| c.total.0),
            "balance_after": c.map_or(0, |c| c.balance_after.0),
            "s3": c.map_or(String::new(), |c| c.s3.to_hex()),
            "tac": c.map_or(String::new(), |c| c.tac.to_hex()),
        });
        if let Some(d) = tx.clearing_decision {
            v["clearing_decision"] = json!(if d { "debited" } else { "not debited" });
        }
        v
    }

    fn check_sam_tx(&self, want: &Value, ctx: &str) {
        let seq = want["sam_tx_seq"].as_u64().expect("seq") as u32;
        if want["state"] == "refused" {
            assert!(self.refused, "{ctx}: the SAM should have refused");
            return;
        }
        let tx = self
            .sam
            .tx(SamTxSeq(seq))
            .unwrap_or_else(|| panic!("{ctx}: SAM_TxSeq {seq} not held"));
        assert_eq!(self.view(tx), *want, "{ctx}: sam_tx {seq}");
    }
}

#[test]
fn scenario_replays_on_one_sam() {
    let v = vectors();
    let issuer = issuer_keys(&v);
    let mut sam = Sam::new(sam_keys(&v, "sam"));
    let mut cases = 0;
    let mut checked = 0;
    for case in v["scenario"]["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        if name.starts_with("settlement_close") {
            let want = &case["batch"];
            let close =
                sam.close_period(want["created_at"].as_str().expect("created_at").to_string());
            assert_eq!(
                serde_json::to_value(&close.batch).expect("json"),
                *want,
                "{name}"
            );
            cases += 1;
            continue;
        }
        if let Some(d) = case.get("sam_decision") {
            let seq = SamTxSeq(d["sam_tx_seq"].as_u64().expect("seq") as u32);
            sam.record_clearing_decision(seq, d["debited"].as_bool().expect("debited"))
                .expect("decision");
            let r = Replay::new(sam, &issuer);
            r.check_sam_tx(&case["sam_tx"], name);
            sam = r.sam;
            cases += 1;
            continue;
        }
        let steps = case["steps"].as_array().expect("steps");
        let mut r = Replay::new(sam, &issuer);
        for i in 0..steps.len() {
            r.step(steps, i, name);
        }
        r.check_sam_tx(&case["sam_tx"], name);
        if let Some(o) = case["sam_outcome"].as_str() {
            let seq = case["sam_tx"]["sam_tx_seq"].as_u64().expect("seq") as u32;
            match o {
                "refused" => assert!(r.refused, "{name}"),
                "completed" | "voided" | "pending" => {
                    assert_eq!(r.outcomes.get(&seq).copied(), Some(o), "{name}: outcome")
                }
                _ => {}
            }
        }
        checked += r.checked;
        sam = r.sam;
        cases += 1;
    }
    assert_eq!(cases, 19);
    assert!(checked >= 40, "only {checked} commands compared");
    eprintln!("scenario: {checked} SAM-built commands matched the vectors");
}

#[test]
fn recovery_cases_replay_on_fresh_sams() {
    let v = vectors();
    let issuer = issuer_keys(&v);
    let keys = sam_keys(&v, "recovery_sam");
    let mut n = 0;
    let mut checked = 0;
    for case in v["recovery"]["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let steps = case["steps"].as_array().expect("steps");
        let mut r = Replay::new(Sam::new(keys.clone()), &issuer);
        for i in 0..steps.len() {
            r.step(steps, i, name);
        }
        for o in case["sam_outcomes"].as_array().into_iter().flatten() {
            let seq = o["sam_tx_seq"].as_u64().expect("seq") as u32;
            assert_eq!(
                r.outcomes.get(&seq).copied(),
                o["outcome"].as_str(),
                "{name}: outcome of {seq}"
            );
        }
        for want in case["sam_tx"].as_array().expect("sam_tx") {
            r.check_sam_tx(want, name);
        }
        checked += r.checked;
        n += 1;
    }
    assert_eq!(n, 15);
    assert!(checked >= 50, "only {checked} commands compared");
    eprintln!("recovery: {checked} SAM-built commands matched the vectors");
}

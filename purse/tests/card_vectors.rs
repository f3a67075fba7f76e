//! Replays the card side of the conformance vectors (`tests/data/purse-v1.json`) on the
//! card applet, as the README's "Replaying the card side" says: every step's full
//! response, the injected `RND_C`, resets, and the persistent state after each case.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use purse::card::{Card, CardState, MemoryStore};
use purse::Rnd;
use serde_json::Value;

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/purse-v1.json");
    let text = std::fs::read_to_string(path).expect("read the vectors");
    serde_json::from_str(&text).expect("the vectors are JSON")
}

fn cases<'a>(v: &'a Value, group: &str) -> Vec<&'a Value> {
    v[group]["cases"]
        .as_array()
        .expect("cases array")
        .iter()
        .filter(|c| c.get("steps").is_some())
        .collect()
}

fn name(case: &Value) -> &str {
    case["name"].as_str().unwrap_or("?")
}

fn state_of(case: &Value, key: &str) -> CardState {
    CardState::from_json(&case[key].to_string())
        .unwrap_or_else(|e| panic!("{}: {key}: {e}", name(case)))
}

/// A card whose random draws the test injects, and counts.
struct Harness {
    card: Card,
    next_rnd: Arc<Mutex<Option<Rnd>>>,
    draws: Arc<AtomicUsize>,
}

impl Harness {
    fn new(state: CardState) -> Harness {
        let next_rnd = Arc::new(Mutex::new(None::<Rnd>));
        let draws = Arc::new(AtomicUsize::new(0));
        let (slot, count) = (next_rnd.clone(), draws.clone());
        let rng = move || {
            count.fetch_add(1, Ordering::SeqCst);
            slot.lock()
                .expect("rng slot")
                .take()
                .unwrap_or(Rnd([0xEE; 16]))
        };
        Harness {
            card: Card::new(state, Box::new(rng)),
            next_rnd,
            draws,
        }
    }

    /// Replays the steps of `case` and checks each response; returns the steps sent.
    fn replay(&mut self, case: &Value) -> Result<usize, String> {
        let mut sent = 0;
        let steps = case["steps"].as_array().ok_or("steps is not an array")?;
        for (i, step) in steps.iter().enumerate() {
            let at = format!("{} step {i} ({})", name(case), step["description"]);
            if step["event"].as_str() == Some("reset") {
                self.card.reset();
                continue;
            }
            if step.get("event").is_some() {
                return Err(format!("{at}: unknown event"));
            }
            if step["sam_only"].as_bool() == Some(true) {
                continue;
            }
            let command = hex_field(step, "command", &at)?;
            let expected = hex_field(step, "response", &at)?;
            let rnd = match step.get("rnd_c") {
                Some(_) => {
                    let b = hex_field(step, "rnd_c", &at)?;
                    Some(Rnd::from_slice(&b).map_err(|e| format!("{at}: {e}"))?)
                }
                None => None,
            };
            let want_draws = usize::from(rnd.is_some());
            *self.next_rnd.lock().expect("rng slot") = rnd;
            let before = self.draws.load(Ordering::SeqCst);
            let got = self.card.process(&command, &mut MemoryStore);
            sent += 1;
            if got != expected {
                return Err(format!(
                    "{at}: response {} expected {}",
                    hex::encode(&got),
                    hex::encode(&expected)
                ));
            }
            let drawn = self.draws.load(Ordering::SeqCst) - before;
            if drawn != want_draws {
                return Err(format!("{at}: {drawn} random draws, expected {want_draws}"));
            }
        }
        Ok(sent)
    }

    fn check_after(&self, case: &Value) -> Result<(), String> {
        let want = state_of(case, "card_after");
        if *self.card.state() != want {
            return Err(format!(
                "{}: card_after differs:\n got {}\nwant {}",
                name(case),
                self.card.state().to_json(),
                want.to_json()
            ));
        }
        Ok(())
    }
}

fn hex_field(step: &Value, key: &str, at: &str) -> Result<Vec<u8>, String> {
    let s = step[key]
        .as_str()
        .ok_or_else(|| format!("{at}: no {key}"))?;
    hex::decode(s).map_err(|e| format!("{at}: {key}: {e}"))
}

/// Each case alone, from its own `card_before`.
fn replay_alone(group: &str) -> (usize, usize) {
    let v = vectors();
    let cases = cases(&v, group);
    let mut failures = Vec::new();
    let mut steps = 0;
    for case in &cases {
        let mut h = Harness::new(state_of(case, "card_before"));
        match h.replay(case).and_then(|n| h.check_after(case).map(|()| n)) {
            Ok(n) => steps += n,
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!("{group}: {} cases, {steps} commands, all pass", cases.len());
    (cases.len(), steps)
}

#[test]
fn error_cases_each_alone() {
    let (n, _) = replay_alone("errors");
    assert_eq!(n, 72);
}

#[test]
fn scenario_cases_each_alone() {
    let (n, _) = replay_alone("scenario");
    assert_eq!(n, 14);
}

/// The scenario in order on persistent cards: each case's `card_before` must be what the
/// same card held after the previous case (a new case starts with the card powered on).
#[test]
fn scenario_chained_on_persistent_cards() {
    let v = vectors();
    let mut cards: HashMap<String, Harness> = HashMap::new();
    let mut steps = 0;
    for case in cases(&v, "scenario") {
        let id = case["card_id"].as_str().expect("card_id").to_string();
        let before = state_of(case, "card_before");
        let h = cards
            .entry(id)
            .or_insert_with(|| Harness::new(before.clone()));
        assert_eq!(h.card.state(), &before, "{}: card_before", name(case));
        h.card.reset();
        steps += h.replay(case).unwrap_or_else(|e| panic!("{e}"));
        h.check_after(case).unwrap_or_else(|e| panic!("{e}"));
    }
    println!(
        "scenario chained: {} cards, {steps} commands, all pass",
        cards.len()
    );
    assert_eq!(cards.len(), 4);
}

/// The replay itself would notice a wrong response, a missing draw and a wrong state.
#[test]
fn replay_detects_deviations() {
    let v = vectors();
    let case = cases(&v, "errors")
        .into_iter()
        .find(|c| name(c) == "replay_old_debit")
        .expect("replay_old_debit");
    let mutate = |f: &dyn Fn(&mut Value)| {
        let mut c = case.clone();
        f(&mut c);
        let mut h = Harness::new(state_of(&c, "card_before"));
        h.replay(&c).and_then(|_| h.check_after(&c))
    };
    assert!(mutate(&|_| ()).is_ok());
    assert!(mutate(&|c| c["steps"][3]["response"] = "9000".into()).is_err());
    assert!(mutate(&|c| {
        let step = c["steps"][1].as_object_mut().expect("step");
        step.remove("rnd_c");
    })
    .is_err());
    assert!(mutate(&|c| c["card_after"]["balance"] = 1000.into()).is_err());
}

/// `card_before` and `card_after` parse, and serialise to the same JSON values.
#[test]
fn card_states_roundtrip_through_json() {
    let v = vectors();
    let mut n = 0;
    for group in ["scenario", "errors"] {
        for case in cases(&v, group) {
            for key in ["card_before", "card_after"] {
                let s = state_of(case, key);
                let text = s.to_json();
                assert_eq!(CardState::from_json(&text).as_ref(), Ok(&s));
                let back: Value = serde_json::from_str(&text).expect("to_json is JSON");
                assert_eq!(back, case[key], "{} {key}", name(case));
                n += 1;
            }
        }
    }
    println!("{n} card states roundtrip");
}

//! Conformance of the clearing office (spec 7) and of the settlement values (spec 6)
//! against the project's copy of the purse-v1 vectors.

use std::collections::BTreeSet;

use purse::clearing::{parse_batch, verify, ClearingState, Problem};
use purse::keys::IssuerKeys;
use purse::settlement::{journal, journal_key, seal, Batch, CloseInput, TotalsRecord};
use serde_json::{json, Value};

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/purse-v1.json");
    let text = std::fs::read_to_string(path).expect("vectors file");
    serde_json::from_str(&text).expect("vectors JSON")
}

/// The vectors' `clearing.issuer_keys`, through the `purse-issuer-keys/1` file form.
fn issuer_keys(v: &Value) -> IssuerKeys {
    let file = json!({
        "format": "purse-issuer-keys/1",
        "key_versions": v["clearing"]["issuer_keys"],
    });
    IssuerKeys::from_json(&file.to_string()).expect("issuer keys")
}

fn batch(v: &Value) -> Batch {
    parse_batch(&v.to_string()).expect("batch parses")
}

fn codes(problems: &[Problem]) -> BTreeSet<String> {
    problems.iter().map(|p| p.code().to_string()).collect()
}

fn hex_of(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("hex")
}

#[test]
fn every_clearing_case_gets_the_expected_decision_and_codes() {
    let v = vectors();
    let keys = issuer_keys(&v);
    let cases = v["clearing"]["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 30);
    let mut decision_mismatches = Vec::new();
    let mut code_differences = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let desc = case["description"].as_str().unwrap_or("");
        let state: ClearingState =
            serde_json::from_value(case["accepted_state"].clone()).expect("accepted_state");
        let b = batch(&case["batch"]);
        let problems = verify(&b, &keys, &state);
        let got = if problems.is_empty() {
            "accept"
        } else {
            "reject"
        };
        if got != case["expect"] {
            decision_mismatches.push(format!("case {i} ({desc}): {got}, {problems:#?}"));
        }
        let reference: BTreeSet<String> = case["reference_problem_codes"]
            .as_array()
            .expect("codes")
            .iter()
            .map(|c| c.as_str().expect("code").to_string())
            .collect();
        if codes(&problems) != reference {
            code_differences.push(format!(
                "case {i} ({desc}): ours {:?}, reference {reference:?}",
                codes(&problems)
            ));
        }
        // The state must be able to take exactly the accepted batches.
        let mut after = state.clone();
        match after.clear(&b, &keys) {
            Ok(()) => {
                assert_eq!(after.last_close_seq(b.sam_id), b.close_seq);
                let again = verify(&b, &keys, &after);
                assert!(codes(&again).contains("E_CLOSE_SEQ"), "case {i}");
                if !b.transactions.is_empty() {
                    assert!(codes(&again).contains("E_DUPLICATE"), "case {i}");
                }
            }
            Err(_) => assert_eq!(after, state, "case {i}: a rejection changed the state"),
        }
    }
    assert!(decision_mismatches.is_empty(), "{decision_mismatches:#?}");
    assert!(code_differences.is_empty(), "{code_differences:#?}");
}

#[test]
fn problem_messages_name_the_record() {
    let v = vectors();
    let keys = issuer_keys(&v);
    let case = v["clearing"]["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| {
            c["description"]
                .as_str()
                .is_some_and(|d| d.contains("forged TAC"))
        })
        .expect("forged-TAC case");
    let problems = verify(&batch(&case["batch"]), &keys, &ClearingState::default());
    assert_eq!(problems.len(), 1, "{problems:?}");
    let msg = problems[0].to_string();
    assert!(
        msg.contains("transactions[1] (sam_tx_seq 2, card 1000000000000001, nt 2)"),
        "{msg}"
    );
}

#[test]
fn settlement_details_recompute_from_the_batch_json() {
    let v = vectors();
    let keys = issuer_keys(&v);
    let closes: Vec<&Value> = v["scenario"]["cases"]
        .as_array()
        .expect("scenario cases")
        .iter()
        .filter(|c| {
            c["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("settlement_close_"))
        })
        .collect();
    assert_eq!(closes.len(), 4);
    let k_sam_vector = hex_of(&v["sam"]["k_sam"]);
    let kj_vector = hex_of(&v["sam"]["kj"]);
    for case in closes {
        let name = case["name"].as_str().unwrap_or("");
        let b = batch(&case["batch"]);
        let d = &case["detail"];
        let k_sam = keys.get(b.key_version).expect("kv").k_sam(b.sam_id);
        assert_eq!(k_sam.expose().as_slice(), k_sam_vector.as_slice(), "{name}");
        let kj = journal_key(&k_sam, b.sam_id);
        assert_eq!(kj.expose().as_slice(), kj_vector.as_slice(), "{name}");

        let recs = d["rec"].as_array().expect("rec");
        assert_eq!(recs.len(), b.transactions.len(), "{name}");
        for (tx, rec) in b.transactions.iter().zip(recs) {
            assert_eq!(tx.rec(b.sam_id), hex_of(rec), "{name} rec");
        }
        let chain = d["journal_chain"].as_array().expect("journal_chain");
        assert_eq!(chain.len(), b.transactions.len() + 1, "{name}");
        for (n, j) in chain.iter().enumerate() {
            let got = journal(&kj, b.sam_id, &b.transactions[..n]);
            assert_eq!(got.0.as_slice(), hex_of(j).as_slice(), "{name} J_{n}");
        }

        let tr = TotalsRecord::claimed(&b);
        assert_eq!(tr.encode(), hex_of(&d["tr"]), "{name} tr");
        let mut input = vec![0x05];
        input.extend_from_slice(&tr.encode());
        assert_eq!(input, hex_of(&d["trmac_input"]), "{name} trmac_input");
        assert_eq!(
            tr.mac(&k_sam).0.as_slice(),
            hex_of(&d["trmac"]).as_slice(),
            "{name} trmac"
        );

        // The SAM's sealing reproduces the whole batch from its records.
        let sealed = seal(CloseInput {
            sam_id: b.sam_id,
            key_version: b.key_version,
            k_sam: &k_sam,
            close_seq: b.close_seq,
            currency: b.currency,
            created_at: b.created_at.clone(),
            transactions: b.transactions.clone(),
            unresolved: b.unresolved.clone(),
        });
        assert_eq!(sealed, b, "{name} seal");
    }
}

#[test]
fn the_four_closes_clear_in_sequence_and_only_once() {
    let v = vectors();
    let keys = issuer_keys(&v);
    let mut state = ClearingState::default();
    let closes = v["scenario"]["cases"].as_array().expect("cases").iter();
    for case in closes.filter(|c| c.get("batch").is_some()) {
        let b = batch(&case["batch"]);
        assert_eq!(state.clear(&b, &keys), Ok(()), "{}", case["name"]);
        assert!(state.clear(&b, &keys).is_err());
    }
    assert_eq!(state.batches.len(), 4);
    assert_eq!(state.accepted.len(), 8);
    let back = ClearingState::from_json(&state.to_json()).expect("state file");
    assert_eq!(back, state);
}

#[test]
fn unknown_key_versions_and_out_of_range_sums_are_problems() {
    let v = vectors();
    let keys = issuer_keys(&v);
    let base = batch(&v["clearing"]["cases"][0]["batch"]);

    let mut b = base.clone();
    b.key_version = purse::KeyVersion(9);
    assert_eq!(
        codes(&verify(&b, &keys, &ClearingState::default())),
        BTreeSet::from(["E_KEY_VERSION".to_string()])
    );

    let mut b = base.clone();
    b.transactions[0].kv = purse::KeyVersion(9);
    let got = codes(&verify(&b, &keys, &ClearingState::default()));
    // Rec starts with KV, so the journal changes too.
    assert!(
        got.contains("E_KEY_VERSION") && got.contains("E_JOURNAL"),
        "{got:?}"
    );

    let mut b = base.clone();
    b.totals.sum = purse::Sum(1 << 53);
    b.format = "purse-settlement/0".into();
    let got = codes(&verify(&b, &keys, &ClearingState::default()));
    for c in ["E_INT_RANGE", "E_FORMAT", "E_SUM", "E_TRMAC"] {
        assert!(got.contains(c), "{c} missing from {got:?}");
    }
}

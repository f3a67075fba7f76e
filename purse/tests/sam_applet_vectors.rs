//! Replayable vectors of the SAM applet (`tests/data/sam-applet-v1.json`): a scenario
//! with fixed keys, randoms and times, driven against the purse card applet, recorded as
//! SAM command / random / response triples. One test checks the file is what the
//! scenario makes now (`PURSE_WRITE_SAM_VECTORS=1` rewrites it); the other replays the
//! file byte for byte on a SAM personalised from the file alone.

mod common;
mod sam_applet_host;

use std::collections::BTreeMap;

use purse::keys::SamKeys;
use purse::sam::Order;
use purse::sam_applet::{MemorySamStore, SamApplet, SamState};
use purse::{Amount, CardId, Currency, DateTime, Key, KeyVersion, Rnd, SamId, Units};
use sam_applet_host::{
    authorize, lost_and_recovered, purchase, Counted, Host, Outcome, Shopper, K_CTX,
};
use serde_json::{json, Value};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sam-applet-v1.json");
const T0: u32 = 1_795_000_000;

fn keys() -> SamKeys {
    common::test_sam_keys(SamId([0x5A, 0, 0, 0, 0, 0, 0, 0x0A]))
}

fn counted(o: Outcome) -> Counted {
    match o {
        Outcome::Completed(c) => c,
        other => panic!("expected a completion, got {other:?}"),
    }
}

fn scenario() -> Value {
    let mut host = Host::new(keys());
    let mut s = Shopper {
        card: common::test_card(CardId([0x10, 0, 0, 0, 0, 0, 0, 0x0A]), 10_000),
    };
    let mut recs = Vec::new();
    recs.push(counted(
        purchase(&mut host, &mut s, 1250, DateTime(T0)).expect("single"),
    ));
    // The same AUTHORIZE again (6985), and one whose S1 the host altered (6982).
    let again = host.steps[2].apdu.clone();
    host.send("authorize replayed", &again);
    assert!(s.select().sw.is_ok());
    let (init, begin) = host
        .begin(&Order::single(Amount(5)), Currency::EUR)
        .expect("begin");
    let mut r = s.initialize(1, KeyVersion(1), &init).data;
    r[41] ^= 0x01;
    assert!(host
        .authorize(KeyVersion(1), DateTime(T0), &r, &begin)
        .is_err());
    // A time-cycle of 3 units: DEBIT, an early tick (6986), two ticks, the cap ends it.
    let order = Order::time_cycle(Amount(100), Units(3), 60);
    let (debit, ctx) = authorize(&mut host, &mut s, &order, DateTime(T0 + 10)).expect("tc");
    let Ok(Outcome::Running(mut ctx)) = host.complete(&s.debit(&debit), &ctx) else {
        panic!("running");
    };
    assert!(host.tick(DateTime(T0 + 69), &ctx).is_err());
    for due in [T0 + 70, T0 + 130] {
        let (tick, pending) = host.tick(DateTime(due), &ctx).expect("tick");
        match host
            .complete(&s.tick(&tick), &pending)
            .expect("tick answer")
        {
            Outcome::Running(next) => ctx = next,
            done => recs.push(counted(done)),
        }
    }
    // A COMPLETE whose answer was lost, sent again: the same answer, counted once.
    let (debit, ctx) = authorize(
        &mut host,
        &mut s,
        &Order::single(Amount(75)),
        DateTime(T0 + 150),
    )
    .expect("single");
    let answer = s.debit(&debit);
    let first = host.complete(&answer, &ctx).expect("complete");
    assert_eq!(host.complete(&answer, &ctx), Ok(first.clone()));
    recs.push(counted(first));
    // A lost DEBIT answer, recovered; its late answer gets the same record and tag. A
    // DEBIT that never reached the card: voided.
    let (out, late) = lost_and_recovered(&mut host, &mut s, 300, DateTime(T0 + 200), true);
    assert_eq!(late, Some(Ok(out.clone())));
    recs.push(counted(out));
    let (out, _) = lost_and_recovered(&mut host, &mut s, 400, DateTime(T0 + 300), false);
    assert_eq!(out, Outcome::Nothing);
    // A close in two CLOSE RECORD commands, and GET STATUS.
    host.close(false, 1, &recs, 2, "").expect("close");
    host.send("get status", &[0x80, 0x7E, 0x00, 0x00, 0x00]);

    let k = &host.sam.state().keys;
    let mk_pur: BTreeMap<String, String> = k
        .mk_pur
        .iter()
        .map(|(kv, m)| (kv.0.to_string(), m.expose_hex()))
        .collect();
    json!({
        "format": "purse-sam-applet-vectors/1",
        "description": "SAM applet v1 (docs/sam-protocol.md) driven against a purse card (spec revision 2): single purchase, the same AUTHORIZE replayed, an AUTHORIZE with an altered S1, time-cycle with an early tick and two ticks up to its cap, a COMPLETE sent again after its answer was lost (the same answer), a lost DEBIT answer recovered and then replayed (the same record and tag), a DEBIT that never reached the card voided by recovery, a close in two CLOSE RECORD commands, GET STATUS. Each step: the SAM command, the random the SAM draws for it (used by BEGIN and RECOVERY BEGIN only), the SAM's response.",
        "sam": {
            "sam_id": k.sam_id.to_hex(),
            "currency": k.currency.numeric(),
            "key_version": k.key_version.0,
            "k_sam": k.k_sam.expose_hex(),
            "mk_pur": mk_pur,
            "k_ctx": hex::encode(K_CTX),
        },
        "steps": host.steps.iter().map(|st| json!({
            "name": st.name,
            "command": hex::encode(&st.apdu),
            "rnd": st.rnd.to_hex(),
            "response": hex::encode(&st.response),
        })).collect::<Vec<_>>(),
    })
}

fn text(v: &Value) -> String {
    serde_json::to_string_pretty(v).expect("json") + "\n"
}

#[test]
fn the_vectors_file_is_what_the_scenario_makes() {
    let now = text(&scenario());
    if std::env::var_os("PURSE_WRITE_SAM_VECTORS").is_some() {
        std::fs::write(PATH, &now).expect("write vectors");
    }
    let file = std::fs::read_to_string(PATH).expect("tests/data/sam-applet-v1.json");
    assert_eq!(
        file, now,
        "rerun with PURSE_WRITE_SAM_VECTORS=1 if the change is meant"
    );
}

fn field<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("{k}"))
}

#[test]
fn the_vectors_replay_byte_for_byte() {
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(PATH).expect("vectors")).expect("json");
    let s = &v["sam"];
    let mk_pur = s["mk_pur"]
        .as_object()
        .expect("mk_pur")
        .iter()
        .map(|(kv, k)| {
            (
                KeyVersion(kv.parse().expect("kv")),
                Key::from_hex(k.as_str().expect("hex")).expect("key"),
            )
        })
        .collect();
    let keys = SamKeys {
        sam_id: SamId::from_hex(field(s, "sam_id")).expect("sam_id"),
        currency: Currency::from_numeric(s["currency"].as_u64().expect("currency") as u16)
            .expect("currency"),
        key_version: KeyVersion(s["key_version"].as_u64().expect("kv") as u8),
        k_sam: Key::from_hex(field(s, "k_sam")).expect("k_sam"),
        mk_pur,
    };
    let k_ctx = Key::from_hex(field(s, "k_ctx")).expect("k_ctx");
    let mut sam = SamApplet::new(SamState::personalise(keys, k_ctx));
    let steps = v["steps"].as_array().expect("steps");
    assert!(steps.len() >= 29);
    for st in steps {
        let cmd = hex::decode(field(st, "command")).expect("hex");
        let rnd = Rnd::from_hex(field(st, "rnd")).expect("rnd");
        let got = sam.process(&cmd, rnd, &mut MemorySamStore);
        assert_eq!(
            hex::encode(got),
            field(st, "response"),
            "{}",
            field(st, "name")
        );
    }
}

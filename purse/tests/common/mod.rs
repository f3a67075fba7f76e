//! Shared helpers of the integration tests: loading the project's copy of the vectors
//! and building key sets from them, and fixed test keys, SAMs and cards.
#![allow(dead_code)]

use std::collections::BTreeMap;

use purse::card::{Card, CardState};
use purse::commands::CardCommand;
use purse::keys::{IssuerKeys, MasterKeys, SamKeys};
use purse::sam::{Begun, Exchange, Order, Sam};
use purse::surrogate::{exchange, select, CardLink};
use purse::{Amount, CardId, Currency, Key, KeyVersion, Rnd, SamId};
use serde_json::Value;

pub fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/purse-v1.json");
    let text = std::fs::read_to_string(path).expect("test data purse-v1.json");
    serde_json::from_str(&text).expect("vectors are JSON")
}

pub fn hex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

pub fn key(v: &Value) -> Key {
    Key::from_hex(v.as_str().expect("key hex")).expect("key")
}

pub fn issuer_keys(v: &Value) -> IssuerKeys {
    let mut versions = BTreeMap::new();
    for (kv, m) in v["issuer"]["key_versions"]
        .as_object()
        .expect("key_versions")
    {
        versions.insert(
            KeyVersion(kv.parse().expect("kv")),
            MasterKeys {
                mk_pur: key(&m["mk_pur"]),
                mk_tac: key(&m["mk_tac"]),
                mk_sam: key(&m["mk_sam"]),
            },
        );
    }
    IssuerKeys { versions }
}

/// The keys of one of the vectors' SAMs (`sam`, `other_sam`, `recovery_sam`).
pub fn sam_keys(v: &Value, which: &str) -> SamKeys {
    let s = &v[which];
    let issuer = issuer_keys(v);
    let accepts: Vec<KeyVersion> = s["accepts_card_kv"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|k| KeyVersion(k.as_u64().expect("kv") as u8))
                .collect()
        })
        .unwrap_or_else(|| vec![KeyVersion(1), KeyVersion(2)]);
    let keys = SamKeys::issue(
        &issuer,
        SamId::from_hex(s["sam_id"].as_str().expect("sam_id")).expect("sam id"),
        Currency::from_numeric(s["currency"].as_u64().unwrap_or(978) as u16).expect("currency"),
        KeyVersion(s["key_version"].as_u64().expect("key_version") as u8),
        &accepts,
    )
    .expect("sam keys");
    assert_eq!(
        keys.k_sam,
        key(&s["k_sam"]),
        "K_SAM of {which} derives from MK_SAM"
    );
    keys
}

/// Issuer keys of key versions 1 and 2 for tests (never a real issuer's).
pub fn test_issuer() -> IssuerKeys {
    let mut versions = BTreeMap::new();
    for kv in [1u8, 2] {
        versions.insert(
            KeyVersion(kv),
            MasterKeys {
                mk_pur: Key::from_bytes([kv; 16]),
                mk_tac: Key::from_bytes([kv + 10; 16]),
                mk_sam: Key::from_bytes([kv + 20; 16]),
            },
        );
    }
    IssuerKeys { versions }
}

/// The keys of an EUR SAM of [`test_issuer`] (SAM key version 1), accepting cards of
/// key versions 1 and 2.
pub fn test_sam_keys(sam_id: SamId) -> SamKeys {
    SamKeys::issue(
        &test_issuer(),
        sam_id,
        Currency::EUR,
        KeyVersion(1),
        &[KeyVersion(1), KeyVersion(2)],
    )
    .expect("sam keys")
}

/// A fresh EUR card of key version 1 personalised by [`test_issuer`]; its RND_C draws
/// count up, so runs are repeatable.
pub fn test_card(id: CardId, balance: u32) -> Card {
    let issuer = test_issuer();
    let m = issuer.get(KeyVersion(1)).expect("kv1");
    let state = CardState::new(
        id,
        KeyVersion(1),
        Currency::EUR,
        Amount(balance),
        m.k_pur(id),
        m.k_tac(id),
    );
    let mut n = 0u8;
    Card::new(
        state,
        Box::new(move || {
            n = n.wrapping_add(1);
            Rnd([n; 16])
        }),
    )
}

/// Begins a purchase for `order` and opens it on the card in `link`: SELECT, then the
/// INITIALIZE for key version `kv`. Returns the purchase and the card's answer, for the
/// test to authorize (or not).
pub fn initialize(
    sam: &Sam,
    link: &mut dyn CardLink,
    order: Order,
    kv: KeyVersion,
    rnd_s: Rnd,
) -> (Begun, Exchange) {
    select(link).expect("select");
    let begun = sam.begin(order, rnd_s).expect("begin");
    let answer = exchange(link, &CardCommand::Initialize(begun.initialize(kv)));
    (begun, answer)
}

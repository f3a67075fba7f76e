//! Shared helpers of the vector tests: loading the project's copy of the vectors and
//! building key sets from them.
#![allow(dead_code)]

use std::collections::BTreeMap;

use purse::keys::{IssuerKeys, MasterKeys, SamKeys};
use purse::{Currency, Key, KeyVersion, SamId};
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

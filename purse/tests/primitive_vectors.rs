//! The vectors' `primitives` (CMAC per RFC 4493 and NXP AN10922, KDF, DIV, MAC8) and the
//! key derivation of every card and SAM in them.

mod common;

use common::{hex, issuer_keys, key, vectors};
use purse::crypto::{cmac, div, kdf, mac8, DivType};
use purse::{CardId, KeyVersion};

#[test]
fn cmac_kdf_div_mac8() {
    let v = vectors();
    let p = &v["primitives"];
    let cases = p["cmac"].as_array().expect("cmac");
    assert_eq!(cases.len(), 5);
    for c in cases {
        assert_eq!(
            cmac(&key(&c["key"]), &hex(&c["message"])).to_vec(),
            hex(&c["cmac"]),
            "{}",
            c["description"]
        );
    }
    for c in p["kdf"].as_array().expect("kdf") {
        let label = hex(&c["label"])[0];
        assert_eq!(
            kdf(&key(&c["key"]), label, &hex(&c["ctx"]))
                .expose()
                .to_vec(),
            hex(&c["output"])
        );
    }
    for c in p["div"].as_array().expect("div") {
        let id: [u8; 8] = hex(&c["id"]).try_into().expect("8-byte id");
        let t = match hex(&c["t"])[0] {
            1 => DivType::Purchase,
            2 => DivType::Tac,
            _ => DivType::Sam,
        };
        assert_eq!(
            div(&key(&c["mk"]), &id, t).expose().to_vec(),
            hex(&c["output"])
        );
    }
    for c in p["mac8"].as_array().expect("mac8") {
        assert_eq!(
            mac8(&key(&c["key"]), &hex(&c["message"])).0.to_vec(),
            hex(&c["mac8"])
        );
    }
}

#[test]
fn every_card_key_derives_from_the_issuer_master_keys() {
    let v = vectors();
    let issuer = issuer_keys(&v);
    let cards = v["cards"].as_array().expect("cards");
    assert_eq!(cards.len(), 6);
    for c in cards {
        let id = CardId::from_hex(c["card_id"].as_str().expect("id")).expect("card id");
        let m = issuer
            .get(KeyVersion(c["key_version"].as_u64().expect("kv") as u8))
            .expect("key version");
        assert_eq!(m.k_pur(id), key(&c["k_pur"]), "K_PUR of card {}", c["name"]);
        assert_eq!(m.k_tac(id), key(&c["k_tac"]), "K_TAC of card {}", c["name"]);
    }
    // The SAMs' K_SAM are checked by common::sam_keys.
    for which in ["sam", "recovery_sam"] {
        common::sam_keys(&v, which);
    }
}

//! The hotlist: the flagged cards, signed with the office's Ed25519 key so that a shop
//! can check it with the office's public key from its configuration, whoever served it.
//!
//! The signed message is the text `purse-hotlist/1\n<issued_at>\n` followed by each
//! card ID (16 lowercase hex digits, ascending) and `\n`.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use purse::CardId;
use serde::{Deserialize, Serialize};

pub const FORMAT: &str = "purse-hotlist/1";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hotlist {
    pub format: String,
    /// Unix seconds.
    pub issued_at: i64,
    pub cards: Vec<String>,
    /// Ed25519 over [`message`], 128 hex digits.
    pub signature: String,
}

/// The bytes the signature covers.
pub fn message(issued_at: i64, cards: &[String]) -> Vec<u8> {
    let mut m = format!("{FORMAT}\n{issued_at}\n").into_bytes();
    for c in cards {
        m.extend_from_slice(c.as_bytes());
        m.push(b'\n');
    }
    m
}

pub fn sign(key: &SigningKey, issued_at: i64, cards: &[CardId]) -> Hotlist {
    let cards: Vec<String> = cards.iter().map(CardId::to_hex).collect();
    let sig = key.sign(&message(issued_at, &cards));
    Hotlist {
        format: FORMAT.into(),
        issued_at,
        cards,
        signature: hex::encode(sig.to_bytes()),
    }
}

/// Whether `list` is signed by `public` (32 bytes).
pub fn verify(public: &[u8; 32], list: &Hotlist) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(public) else {
        return false;
    };
    let mut sig = [0u8; 64];
    if list.format != FORMAT || hex::decode_to_slice(&list.signature, &mut sig).is_err() {
        return false;
    }
    key.verify(
        &message(list.issued_at, &list.cards),
        &Signature::from_bytes(&sig),
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_lists_verify_and_altered_ones_do_not() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let public = key.verifying_key().to_bytes();
        let list = sign(&key, 1_800_000_000, &[CardId([1; 8]), CardId([2; 8])]);
        assert!(verify(&public, &list));
        let mut fewer = list.clone();
        fewer.cards.pop();
        assert!(!verify(&public, &fewer));
        let mut older = list.clone();
        older.issued_at -= 1;
        assert!(!verify(&public, &older));
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes();
        assert!(!verify(&other, &list));
    }
}

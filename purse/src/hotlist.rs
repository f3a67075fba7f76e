//! The clearing office's hotlist as both sides see it (sans-IO): the signed document
//! `purse-hotlist/1`, its signing by the office and its checking by a shop, which
//! trusts only the office's Ed25519 public key, whoever served the list.
//!
//! The signed message is the text `purse-hotlist/1\n<issued_at>\n` followed by each
//! card ID (16 lowercase hex digits, ascending) and `\n`.

use std::collections::BTreeSet;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::CardId;

pub const FORMAT: &str = "purse-hotlist/1";

/// The document as served (`GET /v1/hotlist`).
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

/// Why a served hotlist is not taken.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HotlistError {
    #[error("not a {FORMAT} document: {0}")]
    Malformed(String),
    #[error("the hotlist public key is not an Ed25519 key")]
    BadKey,
    #[error("the hotlist's signature does not verify with the office's public key")]
    BadSignature,
    #[error("the hotlist lists a card ID that is not 16 hex digits in ascending order")]
    BadCards,
    #[error("the hotlist was issued at {got}, before the one held (issued at {held})")]
    Older { got: i64, held: i64 },
    #[error(
        "the hotlist was issued in the same second as the one held ({at}) but lacks a card \
         the held one lists"
    )]
    SameSecondDropsCards { at: i64 },
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

/// The office signs its flagged cards (`cards` in any order).
pub fn sign(key: &SigningKey, issued_at: i64, cards: &[CardId]) -> Hotlist {
    let set: BTreeSet<CardId> = cards.iter().copied().collect();
    let cards: Vec<String> = set.iter().map(CardId::to_hex).collect();
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
    check_signature(public, list).is_ok()
}

fn check_signature(public: &[u8; 32], list: &Hotlist) -> Result<(), HotlistError> {
    let key = VerifyingKey::from_bytes(public).map_err(|_| HotlistError::BadKey)?;
    if list.format != FORMAT {
        return Err(HotlistError::Malformed(format!("format {:?}", list.format)));
    }
    let mut sig = [0u8; 64];
    hex::decode_to_slice(&list.signature, &mut sig).map_err(|_| HotlistError::BadSignature)?;
    key.verify(
        &message(list.issued_at, &list.cards),
        &Signature::from_bytes(&sig),
    )
    .map_err(|_| HotlistError::BadSignature)
}

/// A hotlist whose signature verified: the cards a shop refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub issued_at: i64,
    pub cards: BTreeSet<CardId>,
}

impl Verified {
    /// Parses and checks a served document (`body`) against the office's key.
    pub fn from_json(public: &[u8; 32], body: &[u8]) -> Result<Verified, HotlistError> {
        let list: Hotlist =
            serde_json::from_slice(body).map_err(|e| HotlistError::Malformed(e.to_string()))?;
        check_signature(public, &list)?;
        let mut cards = BTreeSet::new();
        for c in &list.cards {
            let id = CardId::from_hex(c).map_err(|_| HotlistError::BadCards)?;
            // Lowercase and ascending: the one form the office signs.
            let ascending = cards.last().is_none_or(|last| *last < id);
            if id.to_hex() != *c || !ascending {
                return Err(HotlistError::BadCards);
            }
            cards.insert(id);
        }
        Ok(Verified {
            issued_at: list.issued_at,
            cards,
        })
    }

    /// Whether this list may replace `held` (none, or one issued no later): an older
    /// list, replayed by whoever sits in between, must not take cards off. Lists are
    /// dated in whole seconds, so one of the same second may only add cards: a list
    /// replayed from the second in which a card was flagged must not unblock it.
    pub fn replaces(&self, held: Option<&Verified>) -> Result<(), HotlistError> {
        match held {
            Some(h) if h.issued_at > self.issued_at => Err(HotlistError::Older {
                got: self.issued_at,
                held: h.issued_at,
            }),
            Some(h) if h.issued_at == self.issued_at && !h.cards.is_subset(&self.cards) => {
                Err(HotlistError::SameSecondDropsCards { at: h.issued_at })
            }
            _ => Ok(()),
        }
    }

    pub fn contains(&self, card: &CardId) -> bool {
        self.cards.contains(card)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> (SigningKey, [u8; 32]) {
        let key = SigningKey::from_bytes(&[7; 32]);
        let public = key.verifying_key().to_bytes();
        (key, public)
    }

    #[test]
    fn signed_lists_verify_and_altered_ones_do_not() {
        let (key, public) = key();
        let list = sign(&key, 1_800_000_000, &[CardId([2; 8]), CardId([1; 8])]);
        assert_eq!(list.cards[0], CardId([1; 8]).to_hex());
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

    #[test]
    fn served_documents_are_checked_whole() {
        let (key, public) = key();
        let list = sign(&key, 100, &[CardId([1; 8])]);
        let body = serde_json::to_vec(&list).unwrap();
        let v = Verified::from_json(&public, &body).unwrap();
        assert!(v.contains(&CardId([1; 8])) && !v.contains(&CardId([2; 8])));

        let mut unsigned = serde_json::to_value(&list).unwrap();
        unsigned.as_object_mut().unwrap().remove("signature");
        let r = Verified::from_json(&public, unsigned.to_string().as_bytes());
        assert!(matches!(r, Err(HotlistError::Malformed(_))));

        let mut tampered = list.clone();
        tampered.cards.clear();
        let body = serde_json::to_vec(&tampered).unwrap();
        assert_eq!(
            Verified::from_json(&public, &body),
            Err(HotlistError::BadSignature)
        );

        // Signed but not in the one form: uppercase, unsorted.
        let mut upper = Hotlist {
            cards: vec!["0A0A0A0A0A0A0A0A".into()],
            ..list.clone()
        };
        upper.signature = hex::encode(key.sign(&message(100, &upper.cards)).to_bytes());
        let body = serde_json::to_vec(&upper).unwrap();
        assert_eq!(
            Verified::from_json(&public, &body),
            Err(HotlistError::BadCards)
        );
    }

    #[test]
    fn an_older_list_does_not_replace_a_newer_one() {
        let (key, public) = key();
        let read = |t, cards: &[CardId]| {
            let body = serde_json::to_vec(&sign(&key, t, cards)).unwrap();
            Verified::from_json(&public, &body).unwrap()
        };
        let new = read(200, &[CardId([1; 8])]);
        let old = read(100, &[]);
        assert!(new.replaces(Some(&old)).is_ok());
        assert!(new.replaces(None).is_ok());
        assert_eq!(
            old.replaces(Some(&new)),
            Err(HotlistError::Older {
                got: 100,
                held: 200
            })
        );
        // The same second: more cards may come, none may go.
        let same_more = read(200, &[CardId([1; 8]), CardId([2; 8])]);
        let same_fewer = read(200, &[]);
        assert!(same_more.replaces(Some(&new)).is_ok());
        assert!(new.replaces(Some(&new)).is_ok());
        assert_eq!(
            same_fewer.replaces(Some(&new)),
            Err(HotlistError::SameSecondDropsCards { at: 200 })
        );
    }
}

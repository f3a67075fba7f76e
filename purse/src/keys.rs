//! Key sets and their JSON forms: the issuer's master keys per key version
//! (`purse-issuer-keys/1`) and a SAM's keys (`purse-sam-keys/1`).
//!
//! Parsing is pure; the binaries read the files and refuse group/world-readable ones.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::{div, DivType, Key};
use crate::types::{CardId, Currency, KeyVersion, SamId};

pub const ISSUER_KEYS_FORMAT: &str = "purse-issuer-keys/1";
pub const SAM_KEYS_FORMAT: &str = "purse-sam-keys/1";

#[derive(Debug, Error)]
pub enum KeysError {
    #[error("not a key file of format {expected}: {reason}")]
    Format {
        expected: &'static str,
        reason: String,
    },
    #[error("key version {0} is not in the key file")]
    UnknownKeyVersion(KeyVersion),
    #[error("key '{0}' is not 32 hex digits")]
    BadKey(&'static str),
    #[error("the key file could not be serialized")]
    Serialize,
}

/// The issuer's master keys of one key version.
#[derive(Clone, Debug)]
pub struct MasterKeys {
    pub mk_pur: Key,
    pub mk_tac: Key,
    pub mk_sam: Key,
}

impl MasterKeys {
    pub fn k_pur(&self, card: CardId) -> Key {
        div(&self.mk_pur, &card.0, DivType::Purchase)
    }
    pub fn k_tac(&self, card: CardId) -> Key {
        div(&self.mk_tac, &card.0, DivType::Tac)
    }
    pub fn k_sam(&self, sam: SamId) -> Key {
        div(&self.mk_sam, &sam.0, DivType::Sam)
    }
}

/// All master keys the issuer / clearing office holds, by key version.
#[derive(Clone, Debug, Default)]
pub struct IssuerKeys {
    pub versions: BTreeMap<KeyVersion, MasterKeys>,
}

impl IssuerKeys {
    pub fn get(&self, kv: KeyVersion) -> Result<&MasterKeys, KeysError> {
        self.versions
            .get(&kv)
            .ok_or(KeysError::UnknownKeyVersion(kv))
    }

    /// The file form. It holds keys: write it 0600, never log it.
    pub fn to_json(&self) -> Result<String, KeysError> {
        let versions = self
            .versions
            .iter()
            .map(|(kv, m)| {
                (
                    kv.0.to_string(),
                    MasterKeysJson {
                        mk_pur: m.mk_pur.expose_hex(),
                        mk_tac: m.mk_tac.expose_hex(),
                        mk_sam: m.mk_sam.expose_hex(),
                    },
                )
            })
            .collect();
        let j = IssuerKeysJson {
            format: ISSUER_KEYS_FORMAT.into(),
            key_versions: versions,
        };
        serde_json::to_string_pretty(&j).map_err(|_| KeysError::Serialize)
    }

    pub fn from_json(s: &str) -> Result<IssuerKeys, KeysError> {
        let j: IssuerKeysJson = parse(s, ISSUER_KEYS_FORMAT)?;
        check_format(&j.format, ISSUER_KEYS_FORMAT)?;
        let mut versions = BTreeMap::new();
        for (kv, m) in j.key_versions {
            let kv = kv.parse::<u8>().map_err(|_| KeysError::Format {
                expected: ISSUER_KEYS_FORMAT,
                reason: format!("key version '{kv}' is not 0..=255"),
            })?;
            versions.insert(
                KeyVersion(kv),
                MasterKeys {
                    mk_pur: key(&m.mk_pur, "mk_pur")?,
                    mk_tac: key(&m.mk_tac, "mk_tac")?,
                    mk_sam: key(&m.mk_sam, "mk_sam")?,
                },
            );
        }
        Ok(IssuerKeys { versions })
    }
}

/// What a SAM holds: its identity, currency, `K_SAM`, and `MK_PUR` of each card key
/// version it accepts. Never `MK_TAC`.
#[derive(Clone, Debug)]
pub struct SamKeys {
    pub sam_id: SamId,
    pub currency: Currency,
    /// The key version of the `MK_SAM` that derived `k_sam`.
    pub key_version: KeyVersion,
    pub k_sam: Key,
    pub mk_pur: BTreeMap<KeyVersion, Key>,
}

impl SamKeys {
    /// Derives a SAM's key set from the issuer's keys.
    pub fn issue(
        issuer: &IssuerKeys,
        sam_id: SamId,
        currency: Currency,
        key_version: KeyVersion,
        accepts: &[KeyVersion],
    ) -> Result<SamKeys, KeysError> {
        let k_sam = issuer.get(key_version)?.k_sam(sam_id);
        let mut mk_pur = BTreeMap::new();
        for kv in accepts {
            mk_pur.insert(*kv, issuer.get(*kv)?.mk_pur.clone());
        }
        Ok(SamKeys {
            sam_id,
            currency,
            key_version,
            k_sam,
            mk_pur,
        })
    }

    /// The file form. It holds keys: write it 0600, never log it.
    pub fn to_json(&self) -> Result<String, KeysError> {
        let j = SamKeysJson {
            format: SAM_KEYS_FORMAT.into(),
            sam_id: self.sam_id,
            currency: self.currency,
            key_version: self.key_version,
            k_sam: self.k_sam.expose_hex(),
            mk_pur: self
                .mk_pur
                .iter()
                .map(|(kv, k)| (kv.0.to_string(), k.expose_hex()))
                .collect(),
        };
        serde_json::to_string_pretty(&j).map_err(|_| KeysError::Serialize)
    }

    pub fn from_json(s: &str) -> Result<SamKeys, KeysError> {
        let j: SamKeysJson = parse(s, SAM_KEYS_FORMAT)?;
        check_format(&j.format, SAM_KEYS_FORMAT)?;
        let mut mk_pur = BTreeMap::new();
        for (kv, k) in &j.mk_pur {
            let kv = kv.parse::<u8>().map_err(|_| KeysError::Format {
                expected: SAM_KEYS_FORMAT,
                reason: format!("key version '{kv}' is not 0..=255"),
            })?;
            mk_pur.insert(KeyVersion(kv), key(k, "mk_pur")?);
        }
        Ok(SamKeys {
            sam_id: j.sam_id,
            currency: j.currency,
            key_version: j.key_version,
            k_sam: key(&j.k_sam, "k_sam")?,
            mk_pur,
        })
    }
}

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct MasterKeysJson {
    mk_pur: String,
    mk_tac: String,
    mk_sam: String,
}

#[derive(Serialize, Deserialize)]
struct IssuerKeysJson {
    format: String,
    key_versions: BTreeMap<String, MasterKeysJson>,
}

#[derive(Serialize, Deserialize)]
struct SamKeysJson {
    format: String,
    sam_id: SamId,
    currency: Currency,
    key_version: KeyVersion,
    k_sam: String,
    mk_pur: BTreeMap<String, String>,
}

impl Drop for SamKeysJson {
    /// The hex text of the keys is key material too.
    fn drop(&mut self) {
        self.k_sam.zeroize();
        self.mk_pur.values_mut().for_each(Zeroize::zeroize);
    }
}

fn parse<T: for<'de> Deserialize<'de>>(s: &str, expected: &'static str) -> Result<T, KeysError> {
    // serde_json's messages name positions and fields, never the key values themselves.
    serde_json::from_str(s).map_err(|e| KeysError::Format {
        expected,
        reason: e.to_string(),
    })
}

fn check_format(got: &str, expected: &'static str) -> Result<(), KeysError> {
    if got == expected {
        Ok(())
    } else {
        Err(KeysError::Format {
            expected,
            reason: format!("format is '{got}'"),
        })
    }
}

fn key(hex: &str, name: &'static str) -> Result<Key, KeysError> {
    Key::from_hex(hex).map_err(|_| KeysError::BadKey(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> IssuerKeys {
        let mut versions = BTreeMap::new();
        versions.insert(
            KeyVersion(1),
            MasterKeys {
                mk_pur: Key::from_bytes([1; 16]),
                mk_tac: Key::from_bytes([2; 16]),
                mk_sam: Key::from_bytes([3; 16]),
            },
        );
        IssuerKeys { versions }
    }

    #[test]
    fn issuer_and_sam_keys_roundtrip() {
        let i = issuer();
        let back = IssuerKeys::from_json(&i.to_json().unwrap()).unwrap();
        assert_eq!(
            back.get(KeyVersion(1)).unwrap().mk_tac,
            Key::from_bytes([2; 16])
        );
        let s = SamKeys::issue(
            &i,
            SamId([9; 8]),
            Currency::EUR,
            KeyVersion(1),
            &[KeyVersion(1)],
        )
        .unwrap();
        let back = SamKeys::from_json(&s.to_json().unwrap()).unwrap();
        assert_eq!(back.k_sam, s.k_sam);
        assert_eq!(back.mk_pur.len(), 1);
        assert!(SamKeys::issue(
            &i,
            SamId([9; 8]),
            Currency::EUR,
            KeyVersion(1),
            &[KeyVersion(2)]
        )
        .is_err());
    }

    #[test]
    fn errors_never_contain_key_material() {
        let bad = r#"{"format":"purse-sam-keys/1","sam_id":"0101010101010101","currency":978,"key_version":1,"k_sam":"abcdef0123456789abcdef012345678","mk_pur":{}}"#;
        let e = SamKeys::from_json(bad).unwrap_err().to_string();
        assert!(!e.contains("abcdef"), "{e}");
    }
}

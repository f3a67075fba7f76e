//! The `purse-sam-card/1` JSON form of [`SamState`]: the SAM card file the SAM emulator
//! keeps its non-volatile memory in (and `purse-issuer sam issue-card` writes), with
//! every field and invariant checked on parsing.
//!
//! As for the purse card's file ([`crate::card`]'s JSON form), parsing goes through
//! `serde_json::Value` and our own field checks so that no error message ever quotes a
//! value: the file holds `MK_PUR`, `K_SAM` and `K_CTX`. Key hex is wiped after use.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};
use thiserror::Error;
use zeroize::Zeroizing;

use super::replies::Replies;
use super::state::{SamState, Totals};
use super::window::{SeqWindow, MAX_LAGGARDS, WINDOW_BITS};
use crate::crypto::Key;
use crate::keys::SamKeys;
use crate::types::{CloseSeq, Currency, KeyVersion, SamId, SamTxSeq, Sum};

/// The `format` value of a SAM card file.
pub const SAM_CARD_FORMAT: &str = "purse-sam-card/1";

const FIELDS: [&str; 17] = [
    "format",
    "sam_id",
    "currency",
    "key_version",
    "k_sam",
    "mk_pur",
    "k_ctx",
    "next_tx_seq",
    "tx_ceiling",
    "begin_ceiling",
    "begins",
    "finals",
    "last_close_seq",
    "period",
    "closed",
    "replies",
    "blocked",
];

/// Why a SAM card file was refused. Never carries a value from the file.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SamCardError {
    #[error("SAM card is not valid JSON (line {line}, column {column})")]
    Syntax { line: usize, column: usize },
    #[error("SAM card must be a JSON object")]
    NotAnObject,
    #[error("SAM card format is not {SAM_CARD_FORMAT}")]
    Format,
    #[error("SAM card: missing field `{0}`")]
    MissingField(&'static str),
    #[error("SAM card: unknown field `{0}`")]
    UnknownField(String),
    #[error("SAM card: `{field}` must be {expected}")]
    Field {
        field: &'static str,
        expected: &'static str,
    },
    #[error("SAM card: {0}")]
    Inconsistent(&'static str),
}

impl SamState {
    /// The `purse-sam-card/1` JSON form. It holds the SAM's keys: store it 0600.
    pub fn to_json(&self) -> String {
        let k = &self.keys;
        let k_sam = Zeroizing::new(k.k_sam.expose_hex());
        let k_ctx = Zeroizing::new(self.k_ctx.expose_hex());
        // Sized up front so that growing never leaves copies of the keys behind.
        let mut out = Zeroizing::new(String::with_capacity(
            6144 + 48 * k.mk_pur.len() + 40 * self.replies.len(),
        ));
        out.push_str("{\n");
        out.push_str(&format!("  \"format\": \"{SAM_CARD_FORMAT}\",\n"));
        out.push_str(&format!("  \"sam_id\": \"{}\",\n", k.sam_id.to_hex()));
        out.push_str(&format!("  \"currency\": {},\n", k.currency.numeric()));
        out.push_str(&format!("  \"key_version\": {},\n", k.key_version.0));
        out.push_str("  \"k_sam\": \"");
        out.push_str(&k_sam);
        out.push_str("\",\n  \"mk_pur\": {");
        for (i, (kv, key)) in k.mk_pur.iter().enumerate() {
            let hex = Zeroizing::new(key.expose_hex());
            out.push_str(if i == 0 { "\"" } else { ", \"" });
            out.push_str(&kv.0.to_string());
            out.push_str("\": \"");
            out.push_str(&hex);
            out.push('"');
        }
        out.push_str("},\n  \"k_ctx\": \"");
        out.push_str(&k_ctx);
        out.push_str("\",\n");
        out.push_str(&format!("  \"next_tx_seq\": {},\n", self.next_tx_seq.0));
        out.push_str(&format!("  \"tx_ceiling\": {},\n", self.tx_ceiling));
        out.push_str(&format!("  \"begin_ceiling\": {},\n", self.begin_ceiling));
        out.push_str(&format!("  \"begins\": {},\n", window_json(&self.begins)));
        out.push_str(&format!("  \"finals\": {},\n", window_json(&self.finals)));
        out.push_str(&format!(
            "  \"last_close_seq\": {},\n",
            self.last_close_seq.0
        ));
        out.push_str(&format!("  \"period\": {},\n", totals_json(&self.period)));
        out.push_str(&format!("  \"closed\": {},\n", totals_json(&self.closed)));
        out.push_str(&format!("  \"replies\": {},\n", self.replies.to_json()));
        out.push_str(&format!("  \"blocked\": {}\n}}\n", self.blocked));
        // Moves the buffer out; the Zeroizing wrapper is left with an empty string.
        core::mem::take(&mut *out)
    }

    /// Parses and validates a `purse-sam-card/1` file: format, every field's type and
    /// range, the windows' shapes, and that the windows lie below the counters.
    pub fn from_json(s: &str) -> Result<SamState, SamCardError> {
        let v: Value = serde_json::from_str(s).map_err(|e| SamCardError::Syntax {
            line: e.line(),
            column: e.column(),
        })?;
        let Value::Object(mut m) = v else {
            return Err(SamCardError::NotAnObject);
        };
        // The keys first, so that their hex is wiped whatever fails later.
        let k_sam = take_key(&mut m, "k_sam")?;
        let k_ctx = take_key(&mut m, "k_ctx")?;
        let mk_pur = take_mk_pur(&mut m)?;
        if let Some(unknown) = m.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(SamCardError::UnknownField(unknown.clone()));
        }
        if field(&m, "format")?.as_str() != Some(SAM_CARD_FORMAT) {
            return Err(SamCardError::Format);
        }
        let sam_id = field(&m, "sam_id")?
            .as_str()
            .filter(|h| lower_hex(h, SamId::LEN))
            .and_then(|h| SamId::from_hex(h).ok())
            .ok_or(bad("sam_id", "16 lowercase hex digits"))?;
        let currency = u16::try_from(uint(&m, "currency")?)
            .ok()
            .and_then(|c| Currency::from_numeric(c).ok())
            .ok_or(bad("currency", "an ISO 4217 numeric code, 1..=999"))?;
        let key_version =
            u8::try_from(uint(&m, "key_version")?).map_err(|_| bad("key_version", "0..=255"))?;
        let state = SamState {
            keys: SamKeys {
                sam_id,
                currency,
                key_version: KeyVersion(key_version),
                k_sam,
                mk_pur,
            },
            k_ctx,
            next_tx_seq: SamTxSeq(u32_field(&m, "next_tx_seq")?),
            // Optional: a card file from before blocks were reserved has none.
            tx_ceiling: match m.get("tx_ceiling") {
                Some(_) => u32_field(&m, "tx_ceiling")?,
                None => u32_field(&m, "next_tx_seq")?,
            },
            begin_ceiling: u32_field(&m, "begin_ceiling")?,
            begins: window(field(&m, "begins")?, "begins")?,
            finals: window(field(&m, "finals")?, "finals")?,
            last_close_seq: CloseSeq(u32_field(&m, "last_close_seq")?),
            period: totals(field(&m, "period")?, "period")?,
            closed: totals(field(&m, "closed")?, "closed")?,
            // Optional: a card file from before the SAM remembered replies has none.
            replies: m
                .get("replies")
                .map_or(Some(Replies::default()), Replies::from_json)
                .ok_or(bad(
                    "replies",
                    "at most 256 [seq, period, tag hex] of distinct transactions",
                ))?,
            blocked: field(&m, "blocked")?
                .as_bool()
                .ok_or(bad("blocked", "true or false"))?,
        };
        match state.inconsistency() {
            Some(why) => Err(SamCardError::Inconsistent(why)),
            None => Ok(state),
        }
    }
}

fn window_json(w: &SeqWindow) -> String {
    let laggards: Vec<String> = w.laggards().iter().map(u32::to_string).collect();
    let doubts: Vec<String> = w
        .doubts()
        .iter()
        .map(|(first, bits)| format!("[{first}, \"{bits:016x}\"]"))
        .collect();
    let doubts = match doubts.is_empty() {
        true => String::new(),
        false => format!(", \"doubts\": [{}]", doubts.join(", ")),
    };
    format!(
        "{{\"base\": {}, \"bits\": \"{}\", \"laggards\": [{}]{doubts}}}",
        w.base(),
        hex::encode(w.bits()),
        laggards.join(", ")
    )
}

fn totals_json(t: &Totals) -> String {
    format!("{{\"count\": {}, \"sum\": {}}}", t.count, t.sum.0)
}

fn bad(field: &'static str, expected: &'static str) -> SamCardError {
    SamCardError::Field { field, expected }
}

fn field<'a>(m: &'a Map<String, Value>, name: &'static str) -> Result<&'a Value, SamCardError> {
    m.get(name).ok_or(SamCardError::MissingField(name))
}

fn uint(m: &Map<String, Value>, name: &'static str) -> Result<u64, SamCardError> {
    field(m, name)?
        .as_u64()
        .ok_or(bad(name, "an unsigned integer"))
}

fn u32_field(m: &Map<String, Value>, name: &'static str) -> Result<u32, SamCardError> {
    u32::try_from(uint(m, name)?).map_err(|_| bad(name, "a u32"))
}

/// Exactly `bytes` bytes as lowercase hex, the only form this file format writes.
fn lower_hex(s: &str, bytes: usize) -> bool {
    s.len() == 2 * bytes && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

fn key_of(s: &str, name: &'static str) -> Result<Key, SamCardError> {
    if !lower_hex(s, 16) {
        return Err(bad(name, "32 lowercase hex digits"));
    }
    Key::from_hex(s).map_err(|_| bad(name, "32 lowercase hex digits"))
}

fn take_key(m: &mut Map<String, Value>, name: &'static str) -> Result<Key, SamCardError> {
    match m.remove(name) {
        None => Err(SamCardError::MissingField(name)),
        Some(Value::String(s)) => key_of(&Zeroizing::new(s), name),
        Some(_) => Err(bad(name, "a string of 32 hex digits")),
    }
}

/// `mk_pur`: `{"<kv>": "<key hex>", ...}`, at least one accepted key version.
fn take_mk_pur(m: &mut Map<String, Value>) -> Result<BTreeMap<KeyVersion, Key>, SamCardError> {
    let Some(v) = m.remove("mk_pur") else {
        return Err(SamCardError::MissingField("mk_pur"));
    };
    let Value::Object(entries) = v else {
        return Err(bad("mk_pur", "an object of key version to key"));
    };
    let mut keys = BTreeMap::new();
    // Every entry's hex is wiped as it goes, whether or not a later one fails.
    for (kv, key) in entries {
        let Value::String(hex) = key else {
            return Err(bad("mk_pur", "an object of key version to key"));
        };
        let hex = Zeroizing::new(hex);
        let kv = kv
            .parse::<u8>()
            .ok()
            .filter(|n| n.to_string() == kv)
            .ok_or(bad("mk_pur", "keyed by key versions 0..=255"))?;
        keys.insert(KeyVersion(kv), key_of(&hex, "mk_pur")?);
    }
    if keys.is_empty() {
        return Err(bad("mk_pur", "at least one accepted key version"));
    }
    Ok(keys)
}

fn window(v: &Value, name: &'static str) -> Result<SeqWindow, SamCardError> {
    let expected = "{base, bits (1024 bytes hex), laggards (at most 64, below base), \
                    doubts (optional, at most 8 [first, bits (8 bytes hex)])}";
    let Value::Object(m) = v else {
        return Err(bad(name, expected));
    };
    let doubts = match m.get("doubts") {
        None => Some(BTreeMap::new()),
        Some(d) => doubts(d),
    }
    .ok_or(bad(name, expected))?;
    if m.len() != 3 + usize::from(m.contains_key("doubts")) {
        return Err(bad(name, expected));
    }
    let base = m
        .get("base")
        .and_then(Value::as_u64)
        .and_then(|b| u32::try_from(b).ok())
        .ok_or(bad(name, expected))?;
    let bits = m
        .get("bits")
        .and_then(Value::as_str)
        .filter(|h| lower_hex(h, (WINDOW_BITS / 8) as usize))
        .and_then(|h| hex::decode(h).ok())
        .ok_or(bad(name, expected))?;
    let Some(Value::Array(list)) = m.get("laggards") else {
        return Err(bad(name, expected));
    };
    if list.len() > MAX_LAGGARDS {
        return Err(bad(name, expected));
    }
    let laggards = list
        .iter()
        .map(|l| l.as_u64().and_then(|l| u32::try_from(l).ok()))
        .collect::<Option<BTreeSet<u32>>>()
        .filter(|set| set.len() == list.len())
        .ok_or(bad(name, expected))?;
    SeqWindow::restore(base, bits, laggards)
        .and_then(|w| w.with_doubts(doubts))
        .ok_or(bad(name, expected))
}

/// `[[first, "bits hex"], ...]` by distinct first numbers.
fn doubts(v: &Value) -> Option<BTreeMap<u32, u64>> {
    let list = v.as_array()?;
    let map = list
        .iter()
        .map(|d| {
            let [first, bits] = d.as_array()?.as_slice() else {
                return None;
            };
            let bits = bits.as_str().filter(|h| lower_hex(h, 8))?;
            Some((
                u32::try_from(first.as_u64()?).ok()?,
                u64::from_str_radix(bits, 16).ok()?,
            ))
        })
        .collect::<Option<BTreeMap<u32, u64>>>()?;
    (map.len() == list.len()).then_some(map)
}

fn totals(v: &Value, name: &'static str) -> Result<Totals, SamCardError> {
    let expected = "{count (u32), sum (u64)}";
    let Value::Object(m) = v else {
        return Err(bad(name, expected));
    };
    let count = m
        .get("count")
        .and_then(Value::as_u64)
        .and_then(|c| u32::try_from(c).ok());
    let sum = m.get("sum").and_then(Value::as_u64);
    match (count, sum, m.len()) {
        (Some(count), Some(sum), 2) => Ok(Totals {
            count,
            sum: Sum(sum),
        }),
        _ => Err(bad(name, expected)),
    }
}

#[cfg(test)]
#[path = "json_tests.rs"]
mod tests;

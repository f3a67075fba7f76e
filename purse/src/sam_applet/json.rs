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

const FIELDS: [&str; 16] = [
    "format",
    "sam_id",
    "currency",
    "key_version",
    "k_sam",
    "mk_pur",
    "k_ctx",
    "next_tx_seq",
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
    format!(
        "{{\"base\": {}, \"bits\": \"{}\", \"laggards\": [{}]}}",
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
    let expected = "{base, bits (1024 bytes hex), laggards (at most 64, below base)}";
    let Value::Object(m) = v else {
        return Err(bad(name, expected));
    };
    if m.len() != 3 {
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
    SeqWindow::restore(base, bits, laggards).ok_or(bad(name, expected))
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
mod tests {
    use super::*;
    use crate::sam_applet::replies::Reply;
    use crate::sam_applet::window::Slide;

    fn state() -> SamState {
        let mut mk_pur = BTreeMap::new();
        mk_pur.insert(KeyVersion(1), Key::from_bytes([0x53; 16]));
        mk_pur.insert(KeyVersion(2), Key::from_bytes([0x54; 16]));
        let keys = SamKeys {
            sam_id: SamId([0x5A, 0, 0, 0, 0, 0, 0, 1]),
            currency: Currency::EUR,
            key_version: KeyVersion(1),
            k_sam: Key::from_bytes([0xAD; 16]),
            mk_pur,
        };
        let mut s = SamState::personalise(keys, Key::from_bytes([0xC7; 16]));
        s.next_tx_seq = SamTxSeq(9000);
        s.begin_ceiling = 128;
        for n in 0..=8 {
            s.begins.insert(n);
        }
        // 781 to 808 stay open: laggards once the window slides up to 8999.
        for n in 1..=780 {
            s.finals.insert(n);
        }
        s.finals.make_room(8999, Slide::Keep).unwrap();
        s.finals.insert(8999);
        s.last_close_seq = CloseSeq(2);
        s.period = Totals {
            count: 3,
            sum: Sum(4500),
        };
        s.closed = Totals {
            count: 1,
            sum: Sum(100),
        };
        s.replies.push(Reply::nothing(780));
        s.replies.push(Reply {
            seq: 8999,
            period: 3,
            tag: [0xE1; 8],
        });
        s
    }

    fn same(a: &SamState, b: &SamState) {
        assert_eq!(a.to_json(), b.to_json());
        assert_eq!(a.keys.k_sam.expose_hex(), b.keys.k_sam.expose_hex());
        assert_eq!(a.finals, b.finals);
        assert_eq!(a.begins, b.begins);
        assert_eq!(
            (a.next_tx_seq, a.begin_ceiling, a.last_close_seq, a.blocked),
            (b.next_tx_seq, b.begin_ceiling, b.last_close_seq, b.blocked)
        );
        assert_eq!((a.period, a.closed), (b.period, b.closed));
    }

    #[test]
    fn roundtrip_keeps_every_field() {
        let s = state();
        assert!(!s.finals.laggards().is_empty(), "the test covers laggards");
        let back = SamState::from_json(&s.to_json()).unwrap();
        same(&s, &back);
        let mut blocked = state();
        blocked.blocked = true;
        same(&blocked, &SamState::from_json(&blocked.to_json()).unwrap());
    }

    fn with(from: &str, to: &str) -> Result<SamState, SamCardError> {
        let j = state().to_json();
        assert!(j.contains(from), "{from}");
        SamState::from_json(&j.replacen(from, to, 1))
    }

    #[test]
    fn rejects_bad_files_and_never_echoes_keys() {
        let cases = [
            with(SAM_CARD_FORMAT, "purse-sam-card/2"),
            with("\"key_version\": 1", "\"key_version\": 256"),
            with("\"currency\": 978", "\"currency\": 1000"),
            with("\"next_tx_seq\": 9000", "\"next_tx_seq\": 0"),
            with("\"next_tx_seq\": 9000", "\"next_tx_seq\": 4294967296"),
            with("\"next_tx_seq\": 9000", "\"next_tx_seq\": 5"),
            with("\"begin_ceiling\": 128", "\"begin_ceiling\": 0"),
            with("\"blocked\": false", "\"blocked\": 0"),
            with("\"blocked\": false", "\"blocked\": false, \"extra\": 1"),
            with("\"k_sam\": \"adad", "\"k_sam\": \"ADAD"),
            with("\"k_ctx\": \"c7c7", "\"k_ctx\": \"zzc7"),
            with("\"1\": \"5353", "\"x\": \"5353"),
            with("\"1\": \"5353", "\"01\": \"5353"),
            with("\"2\": \"5454", "\"2\": \"54"),
            with("{\"count\": 3", "{\"count\": -3"),
            with("\"sum\": 100}", "\"sum\": 100, \"x\": 1}"),
            with("\"laggards\": []", "\"laggards\": [9999]"),
            with("\"bits\": \"", "\"bits\": \"00"),
            with("\"sam_id\": \"5a", "\"sam_id\": \"5A"),
            with("[8999, 3,", "[781, 3,"),
            with("[8999, 3,", "[8999, 4,"),
            with("[8999, 3,", "[780, 3,"),
            with("e1e1\"]", "e1\"]"),
            with(
                "\"currency\": 978",
                "\"currency\": \"adadadadadadadadadadadadadadadad\"",
            ),
            SamState::from_json("[1]"),
            SamState::from_json("{"),
        ];
        for (i, r) in cases.into_iter().enumerate() {
            let msg = r
                .err()
                .unwrap_or_else(|| panic!("case {i} parsed"))
                .to_string();
            for key in ["adad", "c7c7", "5353", "5454"] {
                assert!(!msg.contains(key), "case {i}: {msg}");
            }
        }
        let no_mk = state().to_json().replace(
            &format!(
                "\"mk_pur\": {{\"1\": \"{}\", \"2\": \"{}\"}}",
                "53".repeat(16),
                "54".repeat(16)
            ),
            "\"mk_pur\": {}",
        );
        assert_eq!(
            SamState::from_json(&no_mk).err(),
            Some(bad("mk_pur", "at least one accepted key version"))
        );
        assert_eq!(
            with("\"last_close_seq\": 2,", "").err(),
            Some(SamCardError::MissingField("last_close_seq"))
        );
        let old_file = with(
            "\"replies\": [[780, 0, \"0000000000000000\"], [8999, 3, \"e1e1e1e1e1e1e1e1\"]],\n",
            "",
        );
        assert!(
            old_file.is_ok_and(|s| s.replies.is_empty()),
            "a card file from before replies"
        );
    }
}

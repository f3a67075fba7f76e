//! The `purse-card-state/1` JSON form of [`CardState`], as in the vectors' `card_before`
//! and `card_after`: writing it, and parsing it with every field and invariant checked.
//!
//! Parsing goes through `serde_json::Value` and our own field checks rather than a serde
//! derive, so that no error message ever quotes a value (a key could be in it). Key hex
//! is wiped after use; the caller owns the file text itself.

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::state::{CardState, CardStateError};
use crate::commands::TxRecord;
use crate::crypto::Key;
use crate::types::{Amount, CardId, Currency, KeyVersion, Nt};

/// The `format` value of a card state file.
pub const CARD_STATE_FORMAT: &str = "purse-card-state/1";

const FIELDS: [&str; 9] = [
    "format", "card_id", "kv", "currency", "balance", "nt_last", "k_pur", "k_tac", "log",
];

impl CardState {
    /// The `purse-card-state/1` JSON form. It holds the card keys: store it 0600.
    pub fn to_json(&self) -> String {
        let k_pur = Zeroizing::new(self.k_pur.expose_hex());
        let k_tac = Zeroizing::new(self.k_tac.expose_hex());
        // Sized up front so that growing never leaves copies of the keys behind.
        let mut out = Zeroizing::new(String::with_capacity(512 + 160 * self.log.len()));
        out.push_str("{\n");
        out.push_str(&format!("  \"format\": \"{CARD_STATE_FORMAT}\",\n"));
        out.push_str(&format!("  \"card_id\": \"{}\",\n", self.card_id.to_hex()));
        out.push_str(&format!("  \"kv\": {},\n", self.kv.0));
        out.push_str(&format!("  \"currency\": {},\n", self.currency.numeric()));
        out.push_str(&format!("  \"balance\": {},\n", self.balance.0));
        out.push_str(&format!("  \"nt_last\": {},\n", self.nt_last.0));
        out.push_str("  \"k_pur\": \"");
        out.push_str(&k_pur);
        out.push_str("\",\n  \"k_tac\": \"");
        out.push_str(&k_tac);
        out.push_str("\",\n  \"log\": [");
        for (i, r) in self.log.iter().enumerate() {
            out.push_str(if i == 0 { "\n" } else { ",\n" });
            out.push_str(&format!(
                "    {{\"nt\": {}, \"record\": \"{}\"}}",
                r.nt.0,
                hex::encode(r.encode())
            ));
        }
        out.push_str(if self.log.is_empty() {
            "]\n}\n"
        } else {
            "\n  ]\n}\n"
        });
        // Moves the buffer out; the Zeroizing wrapper is left with an empty string.
        core::mem::take(&mut *out)
    }

    /// Parses and validates a `purse-card-state/1` file: format, every field's type and
    /// length, each record's NT against its `nt`, and [`CardState::validate`].
    pub fn from_json(s: &str) -> Result<CardState, CardStateError> {
        let v: Value = serde_json::from_str(s).map_err(|e| CardStateError::Syntax {
            line: e.line(),
            column: e.column(),
        })?;
        let Value::Object(mut m) = v else {
            return Err(CardStateError::NotAnObject);
        };
        // The keys first, so that their hex is wiped whatever fails later.
        let k_pur = take_key(&mut m, "k_pur")?;
        let k_tac = take_key(&mut m, "k_tac")?;
        if let Some(unknown) = m.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(CardStateError::UnknownField(unknown.clone()));
        }
        if field(&m, "format")?.as_str() != Some(CARD_STATE_FORMAT) {
            return Err(CardStateError::Format);
        }
        let card_id = match field(&m, "card_id")?.as_str().filter(|h| lower_hex(h, 8)) {
            Some(h) => CardId::from_hex(h).map_err(|_| bad("card_id", "16 hex digits"))?,
            None => return Err(bad("card_id", "16 lowercase hex digits")),
        };
        let kv = u8::try_from(uint(&m, "kv")?).map_err(|_| bad("kv", "0..=255"))?;
        let currency = u16::try_from(uint(&m, "currency")?)
            .ok()
            .and_then(|c| Currency::from_numeric(c).ok())
            .ok_or(bad("currency", "an ISO 4217 numeric code, 1..=999"))?;
        let balance = u32::try_from(uint(&m, "balance")?).map_err(|_| bad("balance", "u32"))?;
        let nt_last = u32::try_from(uint(&m, "nt_last")?).map_err(|_| bad("nt_last", "u32"))?;
        let Value::Array(entries) = field(&m, "log")? else {
            return Err(bad("log", "an array"));
        };
        let log = entries
            .iter()
            .enumerate()
            .map(|(i, e)| log_entry(i, e))
            .collect::<Result<Vec<_>, _>>()?;
        let state = CardState {
            card_id,
            kv: KeyVersion(kv),
            currency,
            balance: Amount(balance),
            nt_last: Nt(nt_last),
            k_pur,
            k_tac,
            log,
        };
        state.validate()?;
        Ok(state)
    }
}

fn bad(field: &'static str, expected: &'static str) -> CardStateError {
    CardStateError::Field { field, expected }
}

fn field<'a>(m: &'a Map<String, Value>, name: &'static str) -> Result<&'a Value, CardStateError> {
    m.get(name).ok_or(CardStateError::MissingField(name))
}

fn uint(m: &Map<String, Value>, name: &'static str) -> Result<u64, CardStateError> {
    field(m, name)?
        .as_u64()
        .ok_or(bad(name, "an unsigned integer"))
}

/// Exactly `bytes` bytes as lowercase hex, the only form this file format writes.
fn lower_hex(s: &str, bytes: usize) -> bool {
    s.len() == 2 * bytes && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

fn take_key(m: &mut Map<String, Value>, name: &'static str) -> Result<Key, CardStateError> {
    match m.remove(name) {
        None => Err(CardStateError::MissingField(name)),
        Some(Value::String(s)) => {
            let s = Zeroizing::new(s);
            if !lower_hex(&s, 16) {
                return Err(bad(name, "32 lowercase hex digits"));
            }
            Key::from_hex(&s).map_err(|_| bad(name, "32 lowercase hex digits"))
        }
        Some(_) => Err(bad(name, "a string of 32 hex digits")),
    }
}

fn log_entry(index: usize, e: &Value) -> Result<TxRecord, CardStateError> {
    let problem = |problem| CardStateError::LogEntry { index, problem };
    let Value::Object(m) = e else {
        return Err(problem("not an object"));
    };
    if m.len() != 2 {
        return Err(problem("must have exactly the fields nt and record"));
    }
    let nt = m
        .get("nt")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or(problem("nt must be a u32"))?;
    let bytes = m
        .get("record")
        .and_then(Value::as_str)
        .filter(|h| lower_hex(h, TxRecord::LEN))
        .and_then(|h| hex::decode(h).ok())
        .ok_or(problem("record must be 51 bytes in lowercase hex"))?;
    let record = TxRecord::parse(&bytes).map_err(|_| problem("record must be 51 bytes"))?;
    if record.nt.0 != nt {
        return Err(CardStateError::RecordNt {
            index,
            nt: Nt(nt),
            record_nt: record.nt,
        });
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    const E: &str = r#"{"format": "purse-card-state/1", "card_id": "10000000000000e1", "kv": 1,
      "currency": 978, "balance": 1000, "nt_last": 4,
      "k_pur": "53f5e88587622ede1692fd2b32eea11c", "k_tac": "ad8d5853dd00957b01f55998410693f9",
      "log": [{"nt": 1, "record": "000000015a00000000000002000000016afd86c0010000000a00010000000a000003dee4c773629e60fe62c141ad96dd1a7ba7"}]}"#;

    fn with(from: &str, to: &str) -> Result<CardState, CardStateError> {
        assert!(E.contains(from), "{from}");
        CardState::from_json(&E.replacen(from, to, 1))
    }

    #[test]
    fn roundtrip() {
        let s = CardState::from_json(E).unwrap();
        assert_eq!(s.log.len(), 1);
        let again = CardState::from_json(&s.to_json()).unwrap();
        assert_eq!(again, s);
        let empty = CardState { log: vec![], ..s };
        assert_eq!(CardState::from_json(&empty.to_json()).unwrap(), empty);
    }

    #[test]
    fn rejects_and_never_echoes_keys() {
        let cases = [
            with("purse-card-state/1", "purse-card-state/2"),
            with("\"kv\": 1", "\"kv\": 256"),
            with("\"kv\": 1", "\"kv\": -1"),
            with("978", "1000"),
            with("\"balance\": 1000", "\"balance\": 4294967296"),
            with("10000000000000e1\"", "10000000000000\""),
            with("\"nt\": 1", "\"nt\": 2"),
            with("\"nt_last\": 4", "\"nt_last\": 0"),
            with("\"log\": [", "\"extra\": 1, \"log\": ["),
            with("0000000a000003dee4c773629e60fe62c141ad96dd1a7ba7", "00"),
            with(
                "\"k_tac\": \"ad8d5853dd00957b01f55998410693f9\"",
                "\"k_tac\": \"53f5e88587622ede1692fd2b32eea1\"",
            ),
            with("\"kv\": 1", "\"kv\": \"53f5e88587622ede1692fd2b32eea11c\""),
            with(
                "\"balance\": 1000",
                "\"balance\": \"ad8d5853dd00957b01f55998\"",
            ),
            with("\"k_pur\": \"53f5", "\"k_pur\": \"zzzz"),
            with("\"k_pur\": \"53f5", "\"k_pur\": \"53F5"),
            with("\"card_id\": \"1", "\"card_id\": \" 1"),
            with("\"record\": \"0", "\"record\": \"A"),
            CardState::from_json("[1]"),
            CardState::from_json("{"),
        ];
        for r in cases {
            let msg = r.unwrap_err().to_string();
            assert!(!msg.contains("53f5") && !msg.contains("ad8d"), "{msg}");
        }
        assert_eq!(
            with("\"kv\": 1,", "").unwrap_err(),
            CardStateError::MissingField("kv")
        );
    }
}

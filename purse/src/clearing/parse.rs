//! Reading a `purse-settlement/1` file as the clearing office must: every integer is a
//! non-negative JSON integer below 2^53 (spec 6) and the format string is exact.
//!
//! serde alone would accept `totals.sum` up to 2^64 - 1, which other JSON readers
//! (JavaScript, many databases) silently round: the office refuses such a file instead
//! of settling an amount that another system reads differently.

use serde_json::Value;
use thiserror::Error;

use crate::settlement::{Batch, FORMAT};

/// The largest integer the batch format allows: every integer is below 2^53.
pub const MAX_JSON_INT: u64 = (1 << 53) - 1;

/// Why a batch file could not be read. Batches hold no secrets, so messages may quote
/// the offending values.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BatchParseError {
    #[error("not a settlement batch: {0}")]
    Json(String),
    #[error("format is {got:?}, expected {FORMAT:?}")]
    Format { got: String },
    #[error("{path}: {value} is not below 2^53 (every integer of a batch must be exact in JSON)")]
    IntegerRange { path: String, value: String },
    #[error("{path}: {value} is not a non-negative integer")]
    NotAnInteger { path: String, value: String },
}

impl BatchParseError {
    /// A stable code, in the same family as [`super::Problem::code`].
    pub fn code(&self) -> &'static str {
        match self {
            BatchParseError::Json(_) => "E_JSON",
            BatchParseError::Format { .. } => "E_FORMAT",
            BatchParseError::IntegerRange { .. } => "E_INT_RANGE",
            BatchParseError::NotAnInteger { .. } => "E_JSON",
        }
    }
}

/// Parses a settlement batch file, refusing integers >= 2^53, non-integers where
/// numbers stand, duplicate fields, and any format but `purse-settlement/1`.
pub fn parse_batch(json: &str) -> Result<Batch, BatchParseError> {
    let value: Value =
        serde_json::from_str(json).map_err(|e| BatchParseError::Json(e.to_string()))?;
    if let Some(got) = value.get("format").and_then(Value::as_str) {
        if got != FORMAT {
            return Err(BatchParseError::Format { got: got.into() });
        }
    }
    check_numbers(&value, &mut String::new())?;
    // Typed parsing from the text, not from `value`: a map keeps only the last of two
    // equal keys, while the derived deserializer rejects a duplicate field.
    serde_json::from_str(json).map_err(|e| BatchParseError::Json(e.to_string()))
}

/// Walks the document; `path` names the current value (`transactions[0].total`).
fn check_numbers(v: &Value, path: &mut String) -> Result<(), BatchParseError> {
    match v {
        Value::Number(n) => match n.as_u64() {
            Some(u) if u <= MAX_JSON_INT => Ok(()),
            Some(u) => Err(BatchParseError::IntegerRange {
                path: shown(path),
                value: u.to_string(),
            }),
            None => {
                // Not a u64: negative, written with a fraction or exponent, or an
                // integer beyond 2^64 that serde_json could only hold as an f64.
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.fract() == 0.0 && f >= 18_446_744_073_709_551_616.0 {
                    Err(BatchParseError::IntegerRange {
                        path: shown(path),
                        value: n.to_string(),
                    })
                } else {
                    Err(BatchParseError::NotAnInteger {
                        path: shown(path),
                        value: n.to_string(),
                    })
                }
            }
        },
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                check_numbers(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Object(fields) => {
            for (k, item) in fields {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                check_numbers(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Null | Value::Bool(_) | Value::String(_) => Ok(()),
    }
}

fn shown(path: &str) -> String {
    if path.is_empty() {
        "(top level)".into()
    } else {
        path.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = r#"{"format":"purse-settlement/1","sam_id":"5a00000000000001",
        "close_seq":3,"currency":978,"created_at":"x","key_version":1,"transactions":[],
        "totals":{"count":0,"sum":SUM,"first_tx_seq":0,"last_tx_seq":0,
        "journal":"00000000000000000000000000000000","mac":"a5fe614fc11fbb54"}}"#;

    fn with_sum(sum: &str) -> String {
        EMPTY.replace("SUM", sum)
    }

    #[test]
    fn accepts_integers_below_2_pow_53() {
        let b = parse_batch(&with_sum("9007199254740991")).unwrap();
        assert_eq!(b.totals.sum.0, MAX_JSON_INT);
    }

    #[test]
    fn rejects_2_pow_53_and_beyond() {
        for s in [
            "9007199254740992",
            "18446744073709551615",
            "18446744073709551616",
        ] {
            let e = parse_batch(&with_sum(s)).unwrap_err();
            assert_eq!(e.code(), "E_INT_RANGE", "{s}: {e}");
            assert!(e.to_string().starts_with("totals.sum: "), "{e}");
        }
    }

    #[test]
    fn rejects_fractions_and_negatives() {
        for s in ["1.5", "-1", "0.0"] {
            let e = parse_batch(&with_sum(s)).unwrap_err();
            assert!(
                matches!(e, BatchParseError::NotAnInteger { .. }),
                "{s}: {e}"
            );
        }
    }

    #[test]
    fn rejects_wrong_format_and_duplicate_fields() {
        let e = parse_batch(&with_sum("0").replace("/1", "/2")).unwrap_err();
        assert_eq!(e.code(), "E_FORMAT");
        let dup = with_sum("0").replace(r#""close_seq":3"#, r#""close_seq":3,"close_seq":4"#);
        let e = parse_batch(&dup).unwrap_err();
        assert!(e.to_string().contains("duplicate field"), "{e}");
        assert!(parse_batch("[]").is_err());
        assert!(parse_batch("{").is_err());
    }
}

//! Reading a `purse-settlement/1` batch from a reader without holding it: [`read_head`]
//! takes everything but the records (skipping them), [`stream_records`] hands the
//! records one by one to a callback. Fields may come in any order, so the office reads the
//! spooled upload twice; each pass keeps memory bounded.
//!
//! As in `purse::clearing::parse_batch`: a duplicate field is refused, every number must
//! be a non-negative integer that fits its field (u8 … u32), and `totals.sum` beyond
//! 2^53 is the verifier's `E_INT_RANGE`.

use std::fmt;
use std::io::Read;

use purse::clearing::BatchHead;
use purse::settlement::{BatchTx, Totals, UnresolvedTx};
use purse::{CloseSeq, Currency, KeyVersion, SamId};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserializer as _;

/// The batch without its records, plus what the office keeps of it.
#[derive(Clone, Debug)]
pub struct Head {
    pub head: BatchHead,
    pub created_at: String,
    pub unresolved: Vec<UnresolvedTx>,
}

/// At most this many unresolved transactions in one batch (each is a DEBIT or TICK in
/// flight at a close: a shop has a handful).
pub const MAX_UNRESOLVED: usize = 100_000;

/// Reads the batch's fields but its records.
pub fn read_head(r: impl Read) -> Result<Head, String> {
    let mut de = serde_json::Deserializer::from_reader(r);
    let head = (&mut de)
        .deserialize_map(HeadVisitor)
        .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(head)
}

/// Calls `each` with every record in order; an `Err` from it stops the reading.
pub fn stream_records<F>(r: impl Read, each: F) -> Result<(), String>
where
    F: FnMut(BatchTx) -> Result<(), String>,
{
    let mut de = serde_json::Deserializer::from_reader(r);
    (&mut de)
        .deserialize_map(RecordsVisitor(each))
        .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())
}

struct HeadVisitor;

fn set<T, E: de::Error>(slot: &mut Option<T>, name: &'static str, v: T) -> Result<(), E> {
    if slot.replace(v).is_some() {
        return Err(E::duplicate_field(name));
    }
    Ok(())
}

impl<'de> Visitor<'de> for HeadVisitor {
    type Value = Head;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a purse-settlement/1 batch object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Head, A::Error> {
        let mut format: Option<String> = None;
        let mut sam_id: Option<SamId> = None;
        let mut close_seq: Option<CloseSeq> = None;
        let mut currency: Option<Currency> = None;
        let mut created_at: Option<String> = None;
        let mut key_version: Option<KeyVersion> = None;
        let mut transactions: Option<()> = None;
        let mut unresolved: Option<Vec<UnresolvedTx>> = None;
        let mut totals: Option<Totals> = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "format" => set(&mut format, "format", map.next_value()?)?,
                "sam_id" => set(&mut sam_id, "sam_id", map.next_value()?)?,
                "close_seq" => set(&mut close_seq, "close_seq", map.next_value()?)?,
                "currency" => set(&mut currency, "currency", map.next_value()?)?,
                "created_at" => set(&mut created_at, "created_at", map.next_value()?)?,
                "key_version" => set(&mut key_version, "key_version", map.next_value()?)?,
                "transactions" => {
                    map.next_value::<IgnoredAny>()?;
                    set(&mut transactions, "transactions", ())?
                }
                "unresolved" => {
                    let list = map.next_value_seed(Bounded(MAX_UNRESOLVED))?;
                    set(&mut unresolved, "unresolved", list)?
                }
                "totals" => set(&mut totals, "totals", map.next_value()?)?,
                // Unknown fields are ignored, as purse::clearing::parse_batch does.
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let missing = de::Error::missing_field;
        transactions.ok_or_else(|| missing("transactions"))?;
        Ok(Head {
            head: BatchHead {
                format: format.ok_or_else(|| missing("format"))?,
                sam_id: sam_id.ok_or_else(|| missing("sam_id"))?,
                close_seq: close_seq.ok_or_else(|| missing("close_seq"))?,
                currency: currency.ok_or_else(|| missing("currency"))?,
                key_version: key_version.ok_or_else(|| missing("key_version"))?,
                totals: totals.ok_or_else(|| missing("totals"))?,
            },
            created_at: created_at.ok_or_else(|| missing("created_at"))?,
            unresolved: unresolved.unwrap_or_default(),
        })
    }
}

/// A list of unresolved transactions, at most `.0` long.
struct Bounded(usize);

impl<'de> DeserializeSeed<'de> for Bounded {
    type Value = Vec<UnresolvedTx>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Bounded {
    type Value = Vec<UnresolvedTx>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a list of at most {} unresolved transactions", self.0)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut v = Vec::new();
        while let Some(u) = seq.next_element()? {
            if v.len() == self.0 {
                return Err(de::Error::invalid_length(v.len() + 1, &self));
            }
            v.push(u);
        }
        Ok(v)
    }
}

struct RecordsVisitor<F>(F);

impl<'de, F: FnMut(BatchTx) -> Result<(), String>> Visitor<'de> for RecordsVisitor<F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a purse-settlement/1 batch object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "transactions" {
                map.next_value_seed(Records(&mut self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

struct Records<'a, F>(&'a mut F);

impl<'de, F: FnMut(BatchTx) -> Result<(), String>> DeserializeSeed<'de> for Records<'_, F> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(BatchTx) -> Result<(), String>> Visitor<'de> for Records<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of transactions")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(tx) = seq.next_element::<BatchTx>()? {
            (self.0)(tx).map_err(de::Error::custom)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BATCH: &str = r#"{"totals":{"count":0,"sum":0,"first_tx_seq":0,"last_tx_seq":0,
        "journal":"00000000000000000000000000000000","mac":"a5fe614fc11fbb54"},
        "transactions":[],"format":"purse-settlement/1","sam_id":"5a00000000000001",
        "close_seq":3,"currency":978,"created_at":"x","key_version":1}"#;

    #[test]
    fn fields_in_any_order() {
        let h = read_head(BATCH.as_bytes()).unwrap();
        assert_eq!(h.head.close_seq, CloseSeq(3));
        assert_eq!(h.head.format, "purse-settlement/1");
        let mut n = 0;
        stream_records(BATCH.as_bytes(), |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn duplicates_missing_fields_and_trailing_data_are_refused() {
        let dup = BATCH.replace(r#""close_seq":3"#, r#""close_seq":3,"close_seq":4"#);
        assert!(read_head(dup.as_bytes())
            .unwrap_err()
            .contains("duplicate field"));
        let missing = BATCH.replace(r#""close_seq":3,"#, "");
        assert!(read_head(missing.as_bytes())
            .unwrap_err()
            .contains("close_seq"));
        assert!(read_head(format!("{BATCH} x").as_bytes()).is_err());
        assert!(read_head(BATCH.replace("3,", "3.0,").as_bytes()).is_err());
        assert!(read_head(BATCH.replace("3,", "-3,").as_bytes()).is_err());
        assert!(read_head("[]".as_bytes()).is_err());
    }
}

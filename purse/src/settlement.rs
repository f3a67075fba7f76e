//! The settlement batch of spec section 6: its JSON form `purse-settlement/1`, the
//! journal chain `J`, the totals record `TR` and `TRMAC`.
//!
//! The SAM seals batches with [`seal`]; the clearing office recomputes the same values
//! with the functions here, so both sides share one definition of every byte.

use serde::{Deserialize, Serialize};

use crate::commands::TxRecord;
use crate::crypto::{cmac, kdf, label, mac8, Key};
use crate::types::{
    Amount, CardId, CloseSeq, Currency, DateTime, Journal, KeyVersion, Mac8, Nt, SamId, SamTxSeq,
    Sum, Units,
};

pub const FORMAT: &str = "purse-settlement/1";

/// One settlement batch file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    pub format: String,
    pub sam_id: SamId,
    pub close_seq: CloseSeq,
    pub currency: Currency,
    pub created_at: String,
    /// The SAM's key version (which `MK_SAM` derives `K_SAM`).
    pub key_version: KeyVersion,
    pub transactions: Vec<BatchTx>,
    #[serde(default)]
    pub unresolved: Vec<UnresolvedTx>,
    pub totals: Totals,
}

/// A completed transaction in a batch: `KV || CardID || R(NT)` in JSON form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchTx {
    pub kv: KeyVersion,
    pub card_id: CardId,
    pub nt: Nt,
    pub sam_tx_seq: SamTxSeq,
    pub datetime: DateTime,
    /// P1 as the card recorded it; the clearing office rejects anything but 1 or 2.
    pub mode: u8,
    pub unit_amount: Amount,
    pub units: Units,
    pub total: Amount,
    pub balance_after: Amount,
    pub s3: Mac8,
    pub tac: Mac8,
}

/// A transaction still in flight at the close (informative, not MACed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnresolvedTx {
    pub kv: KeyVersion,
    pub card_id: CardId,
    pub nt: Nt,
    pub sam_tx_seq: SamTxSeq,
    pub unit_amount: Amount,
}

/// The totals of a batch and the MACs over it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub count: u32,
    pub sum: Sum,
    pub first_tx_seq: SamTxSeq,
    pub last_tx_seq: SamTxSeq,
    pub journal: Journal,
    pub mac: Mac8,
}

impl BatchTx {
    /// Builds the batch entry of a card record.
    pub fn from_record(kv: KeyVersion, card_id: CardId, r: &TxRecord) -> BatchTx {
        BatchTx {
            kv,
            card_id,
            nt: r.nt,
            sam_tx_seq: r.sam_tx_seq,
            datetime: r.datetime,
            mode: r.mode,
            unit_amount: r.u,
            units: r.units,
            total: r.total,
            balance_after: r.balance_after,
            s3: r.s3,
            tac: r.tac,
        }
    }

    /// The card record `R(NT)` this entry stands for, under the batch's SAM_ID.
    pub fn record(&self, sam_id: SamId) -> TxRecord {
        TxRecord {
            nt: self.nt,
            sam_id,
            sam_tx_seq: self.sam_tx_seq,
            datetime: self.datetime,
            mode: self.mode,
            u: self.unit_amount,
            units: self.units,
            total: self.total,
            balance_after: self.balance_after,
            s3: self.s3,
            tac: self.tac,
        }
    }

    /// `Rec = KV || CardID || R(NT)`, 60 bytes.
    pub fn rec(&self, sam_id: SamId) -> Vec<u8> {
        let mut v = Vec::with_capacity(60);
        v.push(self.kv.0);
        v.extend_from_slice(&self.card_id.0);
        v.extend_from_slice(&self.record(sam_id).encode());
        v
    }
}

/// `KJ = KDF(K_SAM, 4A, SAM_ID)`.
pub fn journal_key(k_sam: &Key, sam_id: SamId) -> Key {
    kdf(k_sam, label::JOURNAL, &sam_id.0)
}

/// `J_0 = 0^16`, `J_i = CMAC(KJ, J_(i-1) || Rec_i)`; returns `J_n`.
pub fn journal(kj: &Key, sam_id: SamId, txs: &[BatchTx]) -> Journal {
    txs.iter()
        .fold(Journal([0u8; 16]), |j, tx| journal_next(kj, sam_id, &j, tx))
}

/// One link of the chain: `J_i = CMAC(KJ, J_(i-1) || Rec_i)`, for a reader that sees
/// the records one at a time.
pub fn journal_next(kj: &Key, sam_id: SamId, prev: &Journal, tx: &BatchTx) -> Journal {
    let mut input = Vec::with_capacity(76);
    input.extend_from_slice(&prev.0);
    input.extend_from_slice(&tx.rec(sam_id));
    Journal(cmac(kj, &input))
}

/// The values the totals record covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TotalsRecord {
    pub sam_id: SamId,
    pub close_seq: CloseSeq,
    pub first_tx_seq: SamTxSeq,
    pub last_tx_seq: SamTxSeq,
    pub count: u32,
    pub sum: Sum,
    pub currency: Currency,
    pub journal: Journal,
}

impl TotalsRecord {
    /// `TR`, 50 bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(50);
        v.extend_from_slice(&self.sam_id.0);
        v.extend_from_slice(&self.close_seq.0.to_be_bytes());
        v.extend_from_slice(&self.first_tx_seq.0.to_be_bytes());
        v.extend_from_slice(&self.last_tx_seq.0.to_be_bytes());
        v.extend_from_slice(&self.count.to_be_bytes());
        v.extend_from_slice(&self.sum.0.to_be_bytes());
        v.extend_from_slice(&self.currency.numeric().to_be_bytes());
        v.extend_from_slice(&self.journal.0);
        v
    }

    /// `TRMAC = MAC8(K_SAM, 05 || TR)`.
    pub fn mac(&self, k_sam: &Key) -> Mac8 {
        let mut m = vec![0x05];
        m.extend_from_slice(&self.encode());
        mac8(k_sam, &m)
    }

    /// The totals record a batch claims (its own fields, as submitted).
    pub fn claimed(b: &Batch) -> TotalsRecord {
        TotalsRecord {
            sam_id: b.sam_id,
            close_seq: b.close_seq,
            first_tx_seq: b.totals.first_tx_seq,
            last_tx_seq: b.totals.last_tx_seq,
            count: b.totals.count,
            sum: b.totals.sum,
            currency: b.currency,
            journal: b.totals.journal,
        }
    }
}

/// What the SAM knows when it closes a period.
#[derive(Debug)]
pub struct CloseInput<'a> {
    pub sam_id: SamId,
    pub key_version: KeyVersion,
    pub k_sam: &'a Key,
    pub close_seq: CloseSeq,
    pub currency: Currency,
    pub created_at: String,
    /// In ascending SAM_TxSeq.
    pub transactions: Vec<BatchTx>,
    pub unresolved: Vec<UnresolvedTx>,
}

/// Computes the totals, `J` and `TRMAC` and returns the sealed batch.
pub fn seal(input: CloseInput<'_>) -> Batch {
    let txs = input.transactions;
    let kj = journal_key(input.k_sam, input.sam_id);
    let tr = TotalsRecord {
        sam_id: input.sam_id,
        close_seq: input.close_seq,
        first_tx_seq: txs.iter().map(|t| t.sam_tx_seq).min().unwrap_or_default(),
        last_tx_seq: txs.iter().map(|t| t.sam_tx_seq).max().unwrap_or_default(),
        // A period never holds 2^32 transactions: SAM_TxSeq itself is 4 bytes.
        count: u32::try_from(txs.len()).unwrap_or(u32::MAX),
        sum: Sum(txs.iter().map(|t| u64::from(t.total.0)).sum()),
        currency: input.currency,
        journal: journal(&kj, input.sam_id, &txs),
    };
    let mac = tr.mac(input.k_sam);
    Batch {
        format: FORMAT.to_string(),
        sam_id: input.sam_id,
        close_seq: input.close_seq,
        currency: input.currency,
        created_at: input.created_at,
        key_version: input.key_version,
        transactions: txs,
        unresolved: input.unresolved,
        totals: Totals {
            count: tr.count,
            sum: tr.sum,
            first_tx_seq: tr.first_tx_seq,
            last_tx_seq: tr.last_tx_seq,
            journal: tr.journal,
            mac,
        },
    }
}

/// Formats Unix seconds as RFC 3339 UTC (`2026-11-24T23:59:00Z`) without a clock.
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm), valid for all dates after 1970.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_564_740), "2026-11-24T23:59:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}

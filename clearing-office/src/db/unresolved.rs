//! Transactions the shops' batches list as unresolved, and the operator's decision on
//! each (`debited` or `not_debited`, final once recorded); the ones decided `debited`
//! are owed to the merchant ([`Debited`], paid out by the reports).

use anyhow::Result;
use purse::{CardId, SamId};
use serde::Serialize;

use purse::settlement::rfc3339;

use super::{id64, id_bytes, int, now, text, Db};

/// An unresolved transaction decided `debited`: the card paid, so the merchant is paid
/// its amount (the record's `unit_amount`, all the batch says of it).
#[derive(Clone, Debug)]
pub struct Debited {
    pub sam_id: SamId,
    pub sam_tx_seq: i64,
    pub card_id: CardId,
    pub nt: i64,
    pub amount: i64,
    pub merchant_id: String,
    pub currency: i64,
    pub first_batch_id: i64,
    pub decided_at: i64,
    /// The UTC day of the decision, `YYYY-MM-DD`.
    pub day: String,
}

impl Debited {
    pub fn payout_id(&self) -> String {
        format!("po_unresolved_{}_{}", self.sam_id.to_hex(), self.sam_tx_seq)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Unresolved {
    pub sam_id: String,
    pub sam_tx_seq: i64,
    pub card_id: String,
    pub nt: i64,
    pub kv: i64,
    pub unit_amount: i64,
    pub first_batch_id: i64,
    pub decision: Option<String>,
    pub decided_at: Option<i64>,
}

impl Db {
    pub async fn unresolved(&self) -> Result<Vec<Unresolved>> {
        let rows = sqlx::query(
            "SELECT sam_id, sam_tx_seq, card_id, nt, kv, unit_amount, first_batch_id, decision, decided_at
               FROM unresolved ORDER BY sam_id, sam_tx_seq",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let decision = text(r, 7)?;
                Ok(Unresolved {
                    sam_id: SamId(id_bytes(int(r, 0)?)).to_hex(),
                    sam_tx_seq: int(r, 1)?,
                    card_id: CardId(id_bytes(int(r, 2)?)).to_hex(),
                    nt: int(r, 3)?,
                    kv: int(r, 4)?,
                    unit_amount: int(r, 5)?,
                    first_batch_id: int(r, 6)?,
                    decided_at: (!decision.is_empty()).then(|| int(r, 8)).transpose()?,
                    decision: (!decision.is_empty()).then_some(decision),
                })
            })
            .collect()
    }

    /// Records a decision: `None` when no such transaction is listed, `Some(false)` when
    /// another decision was recorded before (the same one again is `Some(true)`).
    pub async fn decide_unresolved(
        &self,
        sam: SamId,
        seq: u32,
        decision: &str,
    ) -> Result<Option<bool>> {
        let _w = self.write_lock().await;
        sqlx::query(
            "UPDATE unresolved SET decision = $1, decided_at = $2
              WHERE sam_id = $3 AND sam_tx_seq = $4 AND decision IS NULL",
        )
        .bind(decision)
        .bind(now())
        .bind(id64(sam.0))
        .bind(i64::from(seq))
        .execute(&self.pool)
        .await?;
        let now_: Option<Option<String>> = sqlx::query_scalar(
            "SELECT decision FROM unresolved WHERE sam_id = $1 AND sam_tx_seq = $2",
        )
        .bind(id64(sam.0))
        .bind(i64::from(seq))
        .fetch_optional(&self.pool)
        .await?;
        Ok(now_.map(|d| d.as_deref() == Some(decision)))
    }

    /// The unresolved transactions decided `debited`, of one merchant or all, decided on
    /// one UTC day or any, oldest decision first.
    pub async fn debited(&self, merchant: Option<&str>, day: Option<&str>) -> Result<Vec<Debited>> {
        let rows = sqlx::query(
            "SELECT u.sam_id, u.sam_tx_seq, u.card_id, u.nt, u.unit_amount, s.merchant_id,
                    s.currency, u.first_batch_id, u.decided_at
               FROM unresolved u JOIN sams s ON s.sam_id = u.sam_id
              WHERE u.decision = 'debited' AND ($1 = '' OR s.merchant_id = $1)
              ORDER BY u.decided_at, u.sam_id, u.sam_tx_seq",
        )
        .bind(merchant.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let decided_at = int(r, 8)?;
            let d = Debited {
                sam_id: SamId(id_bytes(int(r, 0)?)),
                sam_tx_seq: int(r, 1)?,
                card_id: CardId(id_bytes(int(r, 2)?)),
                nt: int(r, 3)?,
                amount: int(r, 4)?,
                merchant_id: text(r, 5)?,
                currency: int(r, 6)?,
                first_batch_id: int(r, 7)?,
                decided_at,
                day: rfc3339(decided_at.max(0) as u64)[..10].to_string(),
            };
            if day.is_none_or(|day| d.day == day) {
                out.push(d);
            }
        }
        Ok(out)
    }
}

//! What operators and merchants read: batches and their problems, payouts per merchant,
//! and reconciliation reports per batch and per day, shaped like an acquirer's (Stripe's
//! balance transactions and payouts): one line per transaction with gross, fee and net,
//! and the merchant's payout line. An unresolved transaction the operator decided
//! `debited` is owed to the merchant too: an `adjustment` line and a payout of its own,
//! on the day of the decision.

use anyhow::Result;
use purse::{CardId, Currency, SamId};
use serde::Serialize;

use super::unresolved::Debited;
use super::{id64, id_bytes, int, text, Db};
use crate::intake::decision::currency_code;

#[derive(Clone, Debug, Serialize)]
pub struct BatchSummary {
    pub batch_id: i64,
    pub sam_id: String,
    pub close_seq: i64,
    pub decision: String,
    pub merchant_id: String,
    pub currency: String,
    pub transaction_count: i64,
    pub gross: i64,
    pub problem_count: i64,
    pub received_at: i64,
    pub day: String,
    pub body_sha256: String,
}

/// A transaction as a balance-transaction line (`payment`, or `adjustment` for an
/// unresolved transaction decided `debited`).
#[derive(Clone, Debug, Serialize)]
pub struct Line {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub payout_id: String,
    pub batch_id: i64,
    pub sam_id: String,
    pub card_id: String,
    pub nt: i64,
    pub sam_tx_seq: i64,
    pub created: i64,
    pub currency: String,
    pub amount: i64,
    pub fee: i64,
    pub net: i64,
}

/// The merchant's payout for one batch (`batch`) or one unresolved transaction decided
/// `debited` (`unresolved_debited`).
#[derive(Clone, Debug, Serialize)]
pub struct Payout {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub merchant_id: String,
    pub batch_id: i64,
    pub currency: String,
    pub amount: i64,
    pub fee: i64,
    pub transaction_count: i64,
    pub created: i64,
    pub day: String,
}

const SUMMARY: &str =
    "SELECT id, sam_id, close_seq, decision, merchant_id, currency, tx_count, gross,
    problem_count, received_at, day, body_sha256 FROM batches";

fn summary(r: &sqlx::any::AnyRow) -> Result<BatchSummary> {
    Ok(BatchSummary {
        batch_id: int(r, 0)?,
        sam_id: SamId(id_bytes(int(r, 1)?)).to_hex(),
        close_seq: int(r, 2)?,
        decision: text(r, 3)?,
        merchant_id: text(r, 4)?,
        currency: code(int(r, 5)?),
        transaction_count: int(r, 6)?,
        gross: int(r, 7)?,
        problem_count: int(r, 8)?,
        received_at: int(r, 9)?,
        day: text(r, 10)?,
        body_sha256: text(r, 11)?,
    })
}

fn code(numeric: i64) -> String {
    u16::try_from(numeric)
        .ok()
        .and_then(|n| Currency::from_numeric(n).ok())
        .map_or_else(|| numeric.to_string(), currency_code)
}

fn payout(b: &BatchSummary) -> Payout {
    Payout {
        id: format!("po_{}", b.batch_id),
        kind: "batch",
        merchant_id: b.merchant_id.clone(),
        batch_id: b.batch_id,
        currency: b.currency.clone(),
        amount: b.gross,
        fee: 0,
        transaction_count: b.transaction_count,
        created: b.received_at,
        day: b.day.clone(),
    }
}

/// Whether `s` has the form of a report's day, `YYYY-MM-DD`.
pub fn is_day(s: &str) -> bool {
    s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        })
}

/// The reconciliation report of a UTC day.
#[derive(Clone, Debug, Serialize)]
pub struct DayReport {
    pub object: &'static str,
    pub day: String,
    pub merchant_id: Option<String>,
    pub payouts: Vec<Payout>,
    pub balance_transactions: Vec<Line>,
}

fn debited_payout(d: &Debited) -> Payout {
    Payout {
        id: d.payout_id(),
        kind: "unresolved_debited",
        merchant_id: d.merchant_id.clone(),
        batch_id: d.first_batch_id,
        currency: code(d.currency),
        amount: d.amount,
        fee: 0,
        transaction_count: 1,
        created: d.decided_at,
        day: d.day.clone(),
    }
}

fn debited_line(d: &Debited) -> Line {
    Line {
        id: format!("adj_{}_{}", d.sam_id.to_hex(), d.sam_tx_seq),
        kind: "adjustment",
        payout_id: d.payout_id(),
        batch_id: d.first_batch_id,
        sam_id: d.sam_id.to_hex(),
        card_id: d.card_id.to_hex(),
        nt: d.nt,
        sam_tx_seq: d.sam_tx_seq,
        created: d.decided_at,
        currency: code(d.currency),
        amount: d.amount,
        fee: 0,
        net: d.amount,
    }
}

impl Db {
    /// Batches, newest first, optionally of one SAM and/or one decision.
    pub async fn batches(
        &self,
        sam: Option<SamId>,
        decision: Option<&str>,
        limit: i64,
    ) -> Result<Vec<BatchSummary>> {
        let sql = format!(
            "{SUMMARY} WHERE decision <> 'pending' AND ($1 = 0 OR sam_id = $2) AND ($3 = '' OR decision = $3)
             ORDER BY id DESC LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(i64::from(sam.is_some()))
            .bind(sam.map_or(0, |s| id64(s.0)))
            .bind(decision.unwrap_or(""))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(summary).collect()
    }

    /// One batch's summary and its stored answer (JSON text).
    pub async fn batch(&self, id: i64) -> Result<Option<(BatchSummary, String)>> {
        let row = sqlx::query(&format!(
            "{SUMMARY} WHERE id = $1 AND decision <> 'pending'"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let response: Option<String> =
            sqlx::query_scalar("SELECT response FROM batches WHERE id = $1")
                .bind(id)
                .fetch_one(&self.pool)
                .await?;
        Ok(Some((summary(&r)?, response.unwrap_or_default())))
    }

    /// A merchant's payouts: one per accepted batch and one per unresolved transaction
    /// decided `debited`, newest first.
    pub async fn payouts(&self, merchant: &str) -> Result<Vec<Payout>> {
        let rows = sqlx::query(&format!(
            "{SUMMARY} WHERE merchant_id = $1 AND decision = 'accepted' ORDER BY id DESC"
        ))
        .bind(merchant)
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<Payout> = rows
            .iter()
            .map(|r| summary(r).map(|b| payout(&b)))
            .collect::<Result<_>>()?;
        out.extend(
            self.debited(Some(merchant), None)
                .await?
                .iter()
                .map(debited_payout),
        );
        out.sort_by_key(|p| std::cmp::Reverse(p.created));
        Ok(out)
    }

    /// The balance-transaction lines of an accepted batch, in record order.
    pub async fn lines(&self, batch: &BatchSummary) -> Result<Vec<Line>> {
        let rows = sqlx::query(
            "SELECT card_id, nt, sam_tx_seq, datetime, total FROM transactions WHERE batch_id = $1 ORDER BY idx",
        )
        .bind(batch.batch_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let card = CardId(id_bytes(int(r, 0)?)).to_hex();
                let nt = int(r, 1)?;
                let amount = int(r, 4)?;
                Ok(Line {
                    id: format!("txn_{card}_{nt}"),
                    kind: "payment",
                    payout_id: format!("po_{}", batch.batch_id),
                    batch_id: batch.batch_id,
                    sam_id: batch.sam_id.clone(),
                    card_id: card,
                    nt,
                    sam_tx_seq: int(r, 2)?,
                    created: int(r, 3)?,
                    currency: batch.currency.clone(),
                    amount,
                    fee: 0,
                    net: amount,
                })
            })
            .collect()
    }

    /// The reconciliation report of one accepted batch.
    pub async fn batch_report(&self, id: i64) -> Result<Option<serde_json::Value>> {
        let Some((b, _)) = self.batch(id).await? else {
            return Ok(None);
        };
        if b.decision != "accepted" {
            return Ok(None);
        }
        let lines = self.lines(&b).await?;
        Ok(Some(serde_json::json!({
            "object": "reconciliation_report",
            "batch": b,
            "payout": payout(&b),
            "balance_transactions": lines,
        })))
    }

    /// The reconciliation report of one UTC day (`YYYY-MM-DD`), for one merchant or all:
    /// the day's accepted batches and the unresolved transactions decided `debited` that
    /// day.
    pub async fn day_report(&self, day: &str, merchant: Option<&str>) -> Result<DayReport> {
        let rows = sqlx::query(&format!(
            "{SUMMARY} WHERE day = $1 AND decision = 'accepted' AND ($2 = '' OR merchant_id = $2) ORDER BY id"
        ))
        .bind(day)
        .bind(merchant.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        let mut payouts = Vec::new();
        let mut lines = Vec::new();
        for r in &rows {
            let b = summary(r)?;
            lines.extend(self.lines(&b).await?);
            payouts.push(payout(&b));
        }
        for d in self.debited(merchant, Some(day)).await? {
            lines.push(debited_line(&d));
            payouts.push(debited_payout(&d));
        }
        Ok(DayReport {
            object: "reconciliation_report",
            day: day.to_string(),
            merchant_id: merchant.map(str::to_string),
            payouts,
            balance_transactions: lines,
        })
    }
}

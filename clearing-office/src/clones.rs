//! Suspected clones, beyond spec 7: a card whose record's `balance_after` does not follow
//! from its previous record (NT - 1) minus `total` (a card restored from an old state
//! spends the same money twice), or whose (CardID, NT) two SAMs claim. The card is
//! flagged with the reason kept; flagged cards make the hotlist.

use anyhow::Result;
use purse::{CardId, Nt, SamId};
use serde::Serialize;
use sqlx::{Any, Row, Transaction};

use crate::db::{id64, id_bytes, int, now, text, Db};

/// A (CardID, NT) claimed by a second SAM after a first one's batch was accepted.
#[derive(Clone, Copy, Debug)]
pub struct Claim {
    pub card_id: CardId,
    pub nt: Nt,
    pub first_sam: SamId,
    pub first_batch: i64,
    pub second_sam: SamId,
}

pub const NT_CLAIMED_TWICE: &str = "nt_claimed_twice";
pub const BALANCE_BREAK: &str = "balance_break";

async fn flag(
    txn: &mut Transaction<'_, Any>,
    card: i64,
    reason: &str,
    detail: &str,
    batch_id: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO card_flags (card_id, reason, detail, batch_id, flagged_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(card)
    .bind(reason)
    .bind(detail)
    .bind(batch_id)
    .bind(now())
    .execute(&mut **txn)
    .await?;
    Ok(())
}

/// Flags the cards of `claims` (found while rejecting batch `batch_id`).
pub async fn flag_claims(
    txn: &mut Transaction<'_, Any>,
    batch_id: i64,
    claims: &[Claim],
) -> Result<()> {
    for c in claims {
        let detail = format!(
            "nt {} claimed by SAM {} (batch {}) and again by SAM {}",
            c.nt, c.first_sam, c.first_batch, c.second_sam
        );
        flag(txn, id64(c.card_id.0), NT_CLAIMED_TWICE, &detail, batch_id).await?;
    }
    Ok(())
}

/// The shadow balance of every card in batch `batch_id` (inside its accepting
/// transaction): each record against its card's record NT - 1 and NT + 1, wherever they
/// were settled.
///
/// The neighbours are correlated scalar subqueries, two primary-key lookups per record
/// of the batch whatever the history: written as a self-join, PostgreSQL planned a hash
/// join over the whole `transactions` table, and the 100th batch of 10,000 took 40
/// times the 1st's time here.
pub async fn check_balances(txn: &mut Transaction<'_, Any>, batch_id: i64) -> Result<()> {
    let rows = sqlx::query(
        "SELECT card_id, nt, balance_after, total, prev_balance, next_balance, next_total FROM (
           SELECT t.card_id, t.nt, t.balance_after, t.total,
             (SELECT p.balance_after FROM transactions p
               WHERE p.card_id = t.card_id AND p.nt = t.nt - 1) AS prev_balance,
             (SELECT n.balance_after FROM transactions n
               WHERE n.card_id = t.card_id AND n.nt = t.nt + 1 AND n.batch_id <> t.batch_id)
               AS next_balance,
             (SELECT n.total FROM transactions n
               WHERE n.card_id = t.card_id AND n.nt = t.nt + 1 AND n.batch_id <> t.batch_id)
               AS next_total
           FROM transactions t WHERE t.batch_id = $1
         ) x
         WHERE (prev_balance IS NOT NULL AND prev_balance - total <> balance_after)
            OR (next_balance IS NOT NULL AND balance_after - next_total <> next_balance)",
    )
    .bind(batch_id)
    .fetch_all(&mut **txn)
    .await?;
    for r in rows {
        let (card, nt, balance, total) = (int(&r, 0)?, int(&r, 1)?, int(&r, 2)?, int(&r, 3)?);
        let prev: Option<i64> = r.try_get(4)?;
        let next: Option<i64> = r.try_get(5)?;
        let next_total: Option<i64> = r.try_get(6)?;
        let mut breaks = Vec::new();
        if let Some(p) = prev.filter(|p| p - total != balance) {
            breaks.push((nt, balance, p, total));
        }
        if let (Some(n), Some(nt_total)) = (next, next_total) {
            if balance - nt_total != n {
                breaks.push((nt + 1, n, balance, nt_total));
            }
        }
        for (nt, balance, prev, total) in breaks {
            let detail = format!(
                "nt {nt}: balance_after {balance} does not follow from the previous record's {prev} minus total {total}"
            );
            flag(txn, card, BALANCE_BREAK, &detail, batch_id).await?;
        }
    }
    Ok(())
}

#[derive(Clone, Debug, Serialize)]
pub struct Flag {
    pub card_id: String,
    pub reason: String,
    pub detail: String,
    pub batch_id: i64,
    pub flagged_at: i64,
}

impl Db {
    /// Every flag, oldest first.
    pub async fn flags(&self) -> Result<Vec<Flag>> {
        let rows = sqlx::query(
            "SELECT card_id, reason, detail, batch_id, flagged_at FROM card_flags ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Flag {
                    card_id: CardId(id_bytes(int(r, 0)?)).to_hex(),
                    reason: text(r, 1)?,
                    detail: text(r, 2)?,
                    batch_id: int(r, 3)?,
                    flagged_at: int(r, 4)?,
                })
            })
            .collect()
    }

    /// The flagged cards, each once, in ascending order.
    pub async fn flagged_cards(&self) -> Result<Vec<CardId>> {
        let rows = sqlx::query("SELECT DISTINCT card_id FROM card_flags")
            .fetch_all(&self.pool)
            .await?;
        let mut cards: Vec<CardId> = rows
            .iter()
            .map(|r| int(r, 0).map(|v| CardId(id_bytes(v))))
            .collect::<Result<_>>()?;
        cards.sort();
        Ok(cards)
    }
}

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
/// The neighbours are correlated scalar subqueries, one primary-key lookup each per
/// record of the batch whatever the history (written as a self-join, PostgreSQL planned a
/// hash join over the whole `transactions` table). Each gives the gap (0 when the
/// balance follows); the few records with a gap are then read again for the flag's text.
pub async fn check_balances(txn: &mut Transaction<'_, Any>, batch_id: i64) -> Result<()> {
    let rows = sqlx::query(
        "SELECT card_id, nt, prev_gap, next_gap FROM (
           SELECT t.card_id, t.nt,
             (SELECT p.balance_after - t.total - t.balance_after FROM transactions p
               WHERE p.card_id = t.card_id AND p.nt = t.nt - 1) AS prev_gap,
             (SELECT t.balance_after - n.total - n.balance_after FROM transactions n
               WHERE n.card_id = t.card_id AND n.nt = t.nt + 1 AND n.batch_id <> t.batch_id)
               AS next_gap
           FROM transactions t WHERE t.batch_id = $1
         ) x
         WHERE prev_gap <> 0 OR next_gap <> 0",
    )
    .bind(batch_id)
    .fetch_all(&mut **txn)
    .await?;
    for r in rows {
        let (card, nt) = (int(&r, 0)?, int(&r, 1)?);
        let prev_gap: Option<i64> = r.try_get(2)?;
        let next_gap: Option<i64> = r.try_get(3)?;
        // The record whose balance does not follow: this one, or the next one.
        let broken = [(prev_gap, nt), (next_gap, nt + 1)];
        for (_, nt) in broken
            .into_iter()
            .filter(|(gap, _)| gap.is_some_and(|g| g != 0))
        {
            let (Some((balance, total)), Some((prev, _))) = (
                record(txn, card, nt).await?,
                record(txn, card, nt - 1).await?,
            ) else {
                continue;
            };
            let detail = format!(
                "nt {nt}: balance_after {balance} does not follow from the previous record's {prev} minus total {total}"
            );
            flag(txn, card, BALANCE_BREAK, &detail, batch_id).await?;
        }
    }
    Ok(())
}

/// A card's settled record `nt`: (balance_after, total).
async fn record(txn: &mut Transaction<'_, Any>, card: i64, nt: i64) -> Result<Option<(i64, i64)>> {
    let row =
        sqlx::query("SELECT balance_after, total FROM transactions WHERE card_id = $1 AND nt = $2")
            .bind(card)
            .bind(nt)
            .fetch_optional(&mut **txn)
            .await?;
    row.map(|r| Ok((int(&r, 0)?, int(&r, 1)?))).transpose()
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

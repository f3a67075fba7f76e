//! Merchants and their SAMs: which currency and key versions a SAM uses, and the hash of
//! the credential it uploads with.

use anyhow::Result;
use purse::{Currency, KeyVersion, SamId};
use serde::Serialize;

use super::{id64, id_bytes, int, now, text, Db};

#[derive(Clone, Debug, Serialize)]
pub struct Merchant {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

#[derive(Clone, Debug)]
pub struct SamRow {
    pub sam_id: SamId,
    pub merchant_id: String,
    pub currency: Currency,
    pub key_version: KeyVersion,
    pub card_key_versions: Vec<KeyVersion>,
    /// SHA-256 (hex) of the SAM's upload credential.
    pub credential_sha256: String,
    pub created_at: i64,
}

/// What inserting a row ran into.
#[derive(Debug, PartialEq, Eq)]
pub enum Insert {
    Done,
    Exists,
    /// A SAM's merchant is not registered.
    NoMerchant,
}

impl Db {
    pub async fn create_merchant(&self, id: &str, name: &str) -> Result<Insert> {
        let _w = self.write_lock().await;
        let r = sqlx::query(
            "INSERT INTO merchants (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(name)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(if r.rows_affected() == 1 {
            Insert::Done
        } else {
            Insert::Exists
        })
    }

    pub async fn merchants(&self) -> Result<Vec<Merchant>> {
        let rows = sqlx::query("SELECT id, name, created_at FROM merchants ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Merchant {
                    id: text(r, 0)?,
                    name: text(r, 1)?,
                    created_at: int(r, 2)?,
                })
            })
            .collect()
    }

    pub async fn merchant(&self, id: &str) -> Result<Option<Merchant>> {
        Ok(self.merchants().await?.into_iter().find(|m| m.id == id))
    }

    pub async fn create_sam(&self, s: &SamRow) -> Result<Insert> {
        let _w = self.write_lock().await;
        if self.merchant(&s.merchant_id).await?.is_none() {
            return Ok(Insert::NoMerchant);
        }
        let kvs: Vec<String> = s
            .card_key_versions
            .iter()
            .map(|k| k.0.to_string())
            .collect();
        let r = sqlx::query(
            "INSERT INTO sams (sam_id, merchant_id, currency, key_version, card_key_versions, credential_sha256, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (sam_id) DO NOTHING",
        )
        .bind(id64(s.sam_id.0))
        .bind(&s.merchant_id)
        .bind(i64::from(s.currency.numeric()))
        .bind(i64::from(s.key_version.0))
        .bind(kvs.join(","))
        .bind(&s.credential_sha256)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(if r.rows_affected() == 1 {
            Insert::Done
        } else {
            Insert::Exists
        })
    }

    const SAM_COLUMNS: &'static str =
        "sam_id, merchant_id, currency, key_version, card_key_versions, credential_sha256, created_at";

    pub async fn sam(&self, sam_id: SamId) -> Result<Option<SamRow>> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM sams WHERE sam_id = $1",
            Self::SAM_COLUMNS
        ))
        .bind(id64(sam_id.0))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| sam_row(&r)).transpose()
    }

    pub async fn sams(&self) -> Result<Vec<SamRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {} FROM sams ORDER BY sam_id",
            Self::SAM_COLUMNS
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(sam_row).collect()
    }
}

fn sam_row(r: &sqlx::any::AnyRow) -> Result<SamRow> {
    let currency = u16::try_from(int(r, 2)?).unwrap_or(0);
    Ok(SamRow {
        sam_id: SamId(id_bytes(int(r, 0)?)),
        merchant_id: text(r, 1)?,
        currency: Currency::from_numeric(currency)?,
        key_version: KeyVersion(u8::try_from(int(r, 3)?).unwrap_or(0)),
        card_key_versions: text(r, 4)?
            .split(',')
            .filter_map(|k| k.parse().ok().map(KeyVersion))
            .collect(),
        credential_sha256: text(r, 5)?,
        created_at: int(r, 6)?,
    })
}

//! The per-payment locks: every request that moves a payment holds its lock (or its
//! idempotency key's), so requests on one payment run one at a time. The few holders of
//! several (a close, a recovery) take them in one order, sorted by id, so no two of them
//! wait on each other.

use std::sync::Arc;

use purse::{SamId, SamTxSeq};

use super::{ApiError, Engine};
use crate::payment::Payment;

/// A held per-payment lock. On release its map entry goes too, unless another request
/// holds or awaits it (the map never grows with old payments or keys).
pub struct Held<'a> {
    engine: &'a Engine,
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut locks = self.engine.locks.lock().unwrap_or_else(|e| e.into_inner());
        // Clones are taken under this map lock: a count of 1 means nobody else has it.
        if locks
            .get(&self.key)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            locks.remove(&self.key);
        }
    }
}

impl Engine {
    /// How many per-payment locks exist now (diagnostics: 0 when the service is idle).
    pub fn lock_entries(&self) -> usize {
        self.locks.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The lock that orders all requests on one payment (or on one idempotency key).
    pub async fn lock(&self, id: &str) -> Held<'_> {
        let m = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(id.to_string()).or_default().clone()
        };
        Held {
            engine: self,
            key: id.to_string(),
            guard: Some(m.lock_owned().await),
        }
    }

    /// Takes the locks of several payments in the one order and loads them as they stand
    /// under the locks.
    pub(crate) async fn lock_all(
        &self,
        mut ids: Vec<String>,
    ) -> Result<(Vec<Held<'_>>, Vec<Payment>), ApiError> {
        ids.sort();
        ids.dedup();
        let mut guards = Vec::with_capacity(ids.len());
        for id in &ids {
            guards.push(self.lock(id).await);
        }
        let mut payments = Vec::with_capacity(ids.len());
        for id in &ids {
            payments.push(self.load(id).await?);
        }
        Ok((guards, payments))
    }

    /// The ids of the payments of these records of the SAM (those that have one).
    pub(crate) async fn payment_ids(
        &self,
        sam_id: SamId,
        seqs: impl IntoIterator<Item = SamTxSeq>,
    ) -> Result<Vec<String>, ApiError> {
        let seqs: Vec<SamTxSeq> = seqs.into_iter().collect();
        self.store
            .read(move |c| crate::store::sam_rows::payments_of(c, sam_id, &seqs))
            .await
            .map_err(|_| ApiError::unavailable())
    }
}

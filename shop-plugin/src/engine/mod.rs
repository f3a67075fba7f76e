//! The payment engine: the payments around the shop's SAM cards. The SAMs (behind
//! [`crate::sam::SecurityModule`], in a [`Pool`]) hold the keys, counters and period totals; the engine
//! keeps each payment's sealed SAM context and each counted record. Every request that
//! moves a payment runs under that payment's lock; every SAM command runs under the SAM's
//! lock and queues its writes (context, record, payment, webhook event: one transaction)
//! before the lock is released, so the database sees records in the order the SAM made
//! them. Nothing is acknowledged before its writes are durable. A failed write stops the
//! engine from taking further requests (fail-stop: a restart reads what is durable).

mod checkout;
mod create;
mod error;
mod locks;
mod pool;
mod recovery;
mod sam;
mod settle;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use purse::hotlist::{HotlistError, Verified};
use purse::Currency;
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};

pub use create::NewPayment;
pub use error::ApiError;
pub use locks::Held;
pub use pool::{Connector, Pool, PoolError};
pub use recovery::RecoveryRun;
pub use sam::CardSam;
#[doc(hidden)]
pub use settle::{ClosePause, CloseStage};

use crate::payment::{Payment, Status};
use crate::store::rows::{self, NewEvent};
use crate::store::{Committed, Op, Store};

/// The shop's clock (Unix seconds). Tests move it to make time-cycle units due.
pub trait Clock: Send + Sync {
    fn now(&self) -> i64;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }
}

/// Settings of the engine.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How long a client secret lets a shopper start paying.
    pub secret_ttl_secs: i64,
}

pub struct Engine {
    store: Store,
    /// The SAM cards (or, in tests and benchmarks, the SAM applet in process).
    sams: Pool,
    /// The begin contexts of payments made but not yet stored (see `create_ops`).
    begins: Mutex<HashMap<String, crate::store::sam_rows::SamSlot>>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    recoveries: Mutex<HashMap<String, RecoveryRun>>,
    clock: Arc<dyn Clock>,
    settings: Settings,
    poisoned: AtomicBool,
    /// Poked after every durable commit: the webhook worker wakes to send new events.
    outbox: Arc<tokio::sync::Notify>,
    /// The last good hotlist of the clearing office: its cards are refused at INITIALIZE.
    hotlist: std::sync::RwLock<Option<Arc<Verified>>>,
    /// Where the hotlist is fetched from (`settle` refreshes it at each run).
    hotlist_source: Mutex<Option<crate::hotlist::Source>>,
    /// Time-cycles that began running (first unit confirmed), counted under the SAM's
    /// lock: a close that saw this change while it stopped the running ones starts over.
    runs_started: std::sync::atomic::AtomicU64,
    /// The test seam of the next close (see [`ClosePause`]); `None` in service.
    close_pause: Mutex<Option<(CloseStage, Arc<ClosePause>)>>,
}

pub(crate) fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// Why a fetched hotlist was not taken.
#[derive(Debug, thiserror::Error)]
pub enum HotlistTake {
    #[error(transparent)]
    Refused(#[from] HotlistError),
    #[error("the hotlist could not be stored")]
    Storage,
}

pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

impl Engine {
    /// The engine over `store`, driving `sams` (SAM cards in their readers, or the
    /// applet in process for tests); no purse key is in this process.
    pub fn open(
        store: Store,
        sams: Pool,
        clock: Arc<dyn Clock>,
        settings: Settings,
    ) -> Result<Engine, crate::store::StoreError> {
        let hotlist = store.read_now(rows::load_hotlist)?.map(Arc::new);
        Ok(Engine {
            store,
            sams,
            begins: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
            recoveries: Mutex::new(HashMap::new()),
            clock,
            settings,
            poisoned: AtomicBool::new(false),
            outbox: Arc::default(),
            hotlist: std::sync::RwLock::new(hotlist),
            hotlist_source: Mutex::new(None),
            runs_started: Default::default(),
            close_pause: Mutex::new(None),
        })
    }

    /// What the webhook worker waits on: notified after each durable commit (the events
    /// of status changes are in those commits).
    pub fn outbox_wake(&self) -> Arc<tokio::sync::Notify> {
        self.outbox.clone()
    }

    /// The held hotlist (`None` before the first good one).
    pub fn hotlist(&self) -> Option<Arc<Verified>> {
        self.hotlist.read().map_or(None, |h| h.clone())
    }

    pub fn set_hotlist_source(&self, source: crate::hotlist::Source) {
        if let Ok(mut s) = self.hotlist_source.lock() {
            *s = Some(source);
        }
    }

    pub fn hotlist_source(&self) -> Option<crate::hotlist::Source> {
        self.hotlist_source.lock().ok().and_then(|s| s.clone())
    }

    /// Takes a verified hotlist (served as `body`) in place of the held one, durably
    /// first; an older one than held is refused and the held one kept.
    pub async fn take_hotlist(&self, list: Verified, body: String) -> Result<(), HotlistTake> {
        let held = self.hotlist();
        list.replaces(held.as_deref())?;
        let op = rows::put_hotlist(&list, body, self.now());
        self.durable(self.store.submit(vec![op]))
            .await
            .map_err(|_| HotlistTake::Storage)?;
        if let Ok(mut h) = self.hotlist.write() {
            // Two takes at once: the newer stays (a stored older row is replaced by the
            // next fetch; the cards in memory are what the checkout uses).
            if h.as_ref().is_none_or(|c| c.issued_at <= list.issued_at) {
                *h = Some(Arc::new(list));
            }
        }
        Ok(())
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The currency the shop's SAMs serve (`None` while no SAM has answered yet).
    pub fn currency(&self) -> Option<Currency> {
        self.sams.currency()
    }

    /// The SAMs the engine drives.
    pub fn sams(&self) -> &Pool {
        &self.sams
    }

    fn check_alive(&self) -> Result<(), ApiError> {
        if self.poisoned.load(Ordering::Relaxed) {
            return Err(ApiError::unavailable());
        }
        Ok(())
    }

    /// Awaits a submitted write; a failure stops the engine (nothing more is acknowledged
    /// until a restart rebuilds the state from what is durable).
    pub async fn durable(
        &self,
        c: Result<Committed, crate::store::StoreError>,
    ) -> Result<(), ApiError> {
        let r = match c {
            Ok(c) => c.wait().await,
            Err(e) => Err(e),
        };
        r.map_err(|e| {
            tracing::error!("database write failed, refusing further requests until restart: {e}");
            self.poisoned.store(true, Ordering::Relaxed);
            ApiError::unavailable()
        })?;
        self.outbox.notify_one();
        Ok(())
    }

    pub async fn load(&self, id: &str) -> Result<Payment, ApiError> {
        self.store
            .lookup(|c| rows::load_payment(c, id))
            .map_err(|_| ApiError::unavailable())?
            .ok_or_else(|| ApiError::not_found("payment"))
    }

    /// A payment as it stands now: a waiting payment whose client secret ran out is
    /// expired first, so the merchant never sees `created` for one no card can pay.
    pub async fn load_current(&self, id: &str) -> Result<Payment, ApiError> {
        let p = self.load(id).await?;
        if p.status != Status::Created || self.now() < p.secret_expires_at {
            return Ok(p);
        }
        self.check_alive()?;
        let _g = self.lock(id).await;
        let p = self.expire_if_due(self.load(id).await?).await?;
        Ok(p)
    }

    /// The webhook event of a status change, in the same transaction as the change.
    pub(crate) fn event(&self, p: &Payment, kind: &str) -> Op {
        let id = format!("evt_{}", random_hex(12));
        let body = json!({
            "id": id,
            "object": "event",
            "type": kind,
            "created": p.updated_at,
            "data": { "object": p.merchant_view() },
        });
        rows::insert_event(NewEvent {
            id,
            payment_id: p.id.clone(),
            kind: kind.to_string(),
            created_at: p.updated_at,
            body: body.to_string(),
            notify_url: p.notify_url.clone(),
        })
    }
}

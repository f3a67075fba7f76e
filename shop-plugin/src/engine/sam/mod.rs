//! The engine's side of the SAM: the SAM applet behind a [`SecurityModule`] (the SAM card
//! in its reader, or the applet in process for tests) holds the keys and counters; the
//! engine keeps each payment's sealed context in `sam_payment` and each counted record
//! with its tag in `sam_record`. A SAM answer that moves money (AUTHORIZE's S2, TICK's
//! S2k, a completion) is queued for SQLite while the SAM's lock is held and is durable
//! before anything leaves. A SAM that does not answer leaves its payments as they are.

mod checkout;
mod close;
mod recovery;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use purse::{KeyVersion, Rnd, SamId};
use serde_json::json;

pub use recovery::CardRun;

use super::{ApiError, Engine};
use crate::payment::Payment;
use crate::sam::{Identity, SamError, SecurityModule};
use crate::store::sam_rows::{self, SamSlot};

/// One SAM the engine drives.
pub struct CardSam {
    sam: Mutex<Box<dyn SecurityModule>>,
    id: Identity,
    /// Whether its last command found it (a new payment tries the others first).
    answering: AtomicBool,
}

impl CardSam {
    pub fn new(sam: Box<dyn SecurityModule>) -> CardSam {
        let id = sam.identity();
        CardSam {
            sam: Mutex::new(sam),
            id,
            answering: AtomicBool::new(true),
        }
    }

    pub fn identity(&self) -> Identity {
        self.id
    }

    pub fn answering(&self) -> bool {
        self.answering.load(Ordering::Relaxed)
    }

    /// Notes whether a command found the SAM.
    pub(crate) fn noted<T>(&self, r: Result<T, SamError>) -> Result<T, SamError> {
        let up = !matches!(r, Err(SamError::Unavailable(_)));
        self.answering.store(up, Ordering::Relaxed);
        r
    }

    /// Where it is (its reader), for logs and `doctor`.
    pub fn describe(&self) -> String {
        self.lock().describe()
    }

    /// The SAM, for one command or a few that belong together. PC/SC calls are short
    /// (the SAM answers in well under a millisecond on vpcd).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Box<dyn SecurityModule>> {
        self.sam.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs SAM commands (PC/SC round trips, and the SAM's own durable write: up to some
/// milliseconds) on a multi-threaded runtime without holding up the other tasks of the
/// worker thread; elsewhere (a single-threaded test runtime) simply runs them.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// The shopper's or merchant's error of a SAM that failed to answer or refused.
pub(crate) fn sam_error(e: &SamError) -> ApiError {
    match e {
        SamError::Unavailable(_) => ApiError::new(
            503,
            "sam_unavailable",
            "the shop's security module is not reachable; the payment waits, try again shortly",
        ),
        SamError::Status(sw) if sw.0 == 0x6983 => ApiError::new(
            503,
            "sam_blocked",
            "the shop's security module is blocked (a restored old state was detected)",
        ),
        SamError::Status(sw) if sw.0 == 0x6A84 => ApiError::new(
            503,
            "sam_exhausted",
            "this shop's security module can take no more payments now",
        ),
        SamError::Status(_) | SamError::Malformed(_) => {
            ApiError::conflict("wrong_state", e.to_string())
        }
    }
}

/// A payment with no sealed context on a SAM (made by no SAM: not one this plugin took).
pub(crate) fn no_context() -> ApiError {
    ApiError::conflict("wrong_state", "this payment has no context on the SAM")
}

/// `80 50 P1 KV 1E InitData 00`.
pub(crate) fn initialize_apdu(p1: u8, kv: KeyVersion, init_data: &[u8]) -> Vec<u8> {
    let mut a = vec![0x80, 0x50, p1, kv.0, 0x1E];
    a.extend_from_slice(init_data);
    a.push(0);
    a
}

/// The RND_S inside an INITIALIZE data field (`SAM_ID || RND_S || U || MaxUnits`).
fn rnd_of(init_data: &[u8]) -> Rnd {
    let mut r = [0u8; 16];
    r.copy_from_slice(&init_data[8..24]);
    Rnd(r)
}

impl Engine {
    /// Runs `f`, which drives the SAMs: off the async worker when they do I/O.
    pub(crate) fn with_sams<T>(&self, f: impl FnOnce() -> T) -> T {
        if self.sams.without_io() {
            f()
        } else {
            blocking(f)
        }
    }

    /// The SAM of `sam_id` (the one a payment began on), or why it cannot be used.
    pub(crate) fn sam_of(&self, sam_id: SamId) -> Result<&CardSam, ApiError> {
        self.sams.get(sam_id).ok_or_else(|| {
            tracing::warn!("SAM {} is not among this plugin's SAMs", sam_id.to_hex());
            sam_error(&SamError::Unavailable(format!(
                "SAM {} is not connected",
                sam_id.to_hex()
            )))
        })
    }

    /// BEGIN for `p` (a new payment, or another try after a refusal) on the next SAM
    /// that answers. Returns the RND_S of its INITIALIZE and the slot to store.
    pub(crate) fn card_begin(
        &self,
        payment_id: &str,
        order: &purse::sam::Order,
    ) -> Result<(SamId, Rnd, SamSlot), ApiError> {
        let mut last = None;
        for card in self.sams.candidates() {
            let begun = card.noted(card.lock().begin(order, card.id.currency));
            let begun = match begun {
                Ok(b) => b,
                Err(SamError::Status(sw)) if sw.0 == 0x6A80 || sw.0 == 0x6A86 => {
                    return Err(ApiError::bad_request(
                        "invalid_order",
                        "the security module refused this order",
                    ))
                }
                // Not reachable, blocked or full: the next SAM may take it.
                Err(e) => {
                    tracing::warn!("{}: {e}", card.describe());
                    last = Some(e);
                    continue;
                }
            };
            let slot = SamSlot {
                payment_id: payment_id.to_string(),
                sam_id: card.id.sam_id,
                sam_tx_seq: None,
                card_id: None,
                nt: None,
                kv: None,
                authorized_at: None,
                ctx: begun.ctx,
                open: false,
            };
            return Ok((card.id.sam_id, rnd_of(&begun.init_data), slot));
        }
        Err(sam_error(
            &last.unwrap_or(SamError::Unavailable("no SAM".into())),
        ))
    }

    /// The INITIALIZE commands of a waiting payment (for the SAM it began on).
    pub(crate) fn card_initialize_commands(&self, p: &Payment) -> Option<serde_json::Value> {
        let card = self.sams.get(p.sam_id?)?;
        let mut init = card.id.sam_id.0.to_vec();
        init.extend_from_slice(&p.rnd_s.0);
        init.extend_from_slice(&p.order.unit_amount.0.to_be_bytes());
        init.extend_from_slice(&p.order.max_units.0.to_be_bytes());
        let kv = card.id.key_version;
        Some(
            json!([{ "kv": kv.0, "apdu": hex::encode(initialize_apdu(p.order.mode.p1(), kv, &init)) }]),
        )
    }

    pub(crate) fn load_slot(&self, id: &str) -> Result<SamSlot, ApiError> {
        let id = id.to_string();
        self.store
            .lookup(move |c| sam_rows::load_slot(c, &id))
            .map_err(|_| ApiError::unavailable())?
            .ok_or_else(no_context)
    }
}

//! The shop's SAMs: one SAM card or several, each with its own `SAM_ID`, counter and
//! daily batch. A new payment goes to the next SAM in turn, one that answered last time
//! first; a payment stays on the SAM that began it (its sealed context is that SAM's).
//! A SAM that does not answer leaves its payments waiting while the others take new
//! ones. A configured reader whose SAM did not answer at start (still held by a process
//! that just died, a reader that enumerates late) joins when it answers: it is tried
//! again, at most once a second, whenever a SAM is looked for and not found.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use purse::{Currency, SamId};

use super::sam::CardSam;
use crate::sam::{SamError, SecurityModule};

/// Why a SAM cannot serve beside the others.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("no SAM")]
    Empty,
    #[error("SAM {0} is in the pool twice")]
    Duplicate(String),
    #[error("SAM {sam} takes {its}, the others {others}: a shop's SAMs serve one currency")]
    Currencies {
        sam: String,
        its: Currency,
        others: Currency,
    },
}

/// Connects to the SAM in a named reader (the PC/SC SAM in service).
pub type Connector = Box<dyn Fn(&str) -> Result<Box<dyn SecurityModule>, SamError> + Send + Sync>;

/// One SAM's place: filled once its SAM has answered.
struct Slot {
    reader: Option<String>,
    sam: OnceLock<CardSam>,
}

pub struct Pool {
    slots: Vec<Slot>,
    next: AtomicUsize,
    connect: Option<Connector>,
    /// When the absent readers were last tried.
    last_try: Mutex<Option<Instant>>,
    /// Every SAM answers without I/O (see [`SecurityModule::without_io`]).
    without_io: bool,
}

/// How often absent readers are tried again.
const RETRY: Duration = Duration::from_secs(1);

impl Pool {
    /// A pool of SAMs that all answered.
    pub fn new(modules: Vec<Box<dyn SecurityModule>>) -> Result<Pool, PoolError> {
        if modules.is_empty() {
            return Err(PoolError::Empty);
        }
        let without_io = modules.iter().all(|m| m.without_io());
        let pool = Pool {
            slots: modules
                .iter()
                .map(|_| Slot {
                    reader: None,
                    sam: OnceLock::new(),
                })
                .collect(),
            next: AtomicUsize::new(0),
            connect: None,
            last_try: Mutex::new(None),
            without_io,
        };
        for (slot, m) in pool.slots.iter().zip(modules) {
            pool.admit(slot, m)?;
        }
        Ok(pool)
    }

    /// A pool over named readers: those whose SAM answered now (`present`), and those
    /// that will join once `connect` reaches their SAM (`absent`).
    pub fn with_readers(
        present: Vec<(String, Box<dyn SecurityModule>)>,
        absent: Vec<String>,
        connect: Connector,
    ) -> Result<Pool, PoolError> {
        if present.is_empty() && absent.is_empty() {
            return Err(PoolError::Empty);
        }
        let slot = |reader: &String| Slot {
            reader: Some(reader.clone()),
            sam: OnceLock::new(),
        };
        let pool = Pool {
            slots: present
                .iter()
                .map(|(r, _)| slot(r))
                .chain(absent.iter().map(slot))
                .collect(),
            next: AtomicUsize::new(0),
            connect: Some(connect),
            last_try: Mutex::new(None),
            without_io: false,
        };
        for (slot, (_, m)) in pool.slots.iter().zip(present) {
            pool.admit(slot, m)?;
        }
        Ok(pool)
    }

    /// Puts `m` in `slot` when it fits beside the SAMs already there.
    fn admit(&self, slot: &Slot, m: Box<dyn SecurityModule>) -> Result<(), PoolError> {
        let id = m.identity();
        for other in self.present() {
            let o = other.identity();
            if o.sam_id == id.sam_id {
                return Err(PoolError::Duplicate(id.sam_id.to_hex()));
            }
            if o.currency != id.currency {
                return Err(PoolError::Currencies {
                    sam: id.sam_id.to_hex(),
                    its: id.currency,
                    others: o.currency,
                });
            }
        }
        // A slot is filled by one thread only (`join_absent` holds its lock).
        let _ = slot.sam.set(CardSam::new(m));
        Ok(())
    }

    /// The SAMs that have answered.
    fn present(&self) -> impl Iterator<Item = &CardSam> {
        self.slots.iter().filter_map(|s| s.sam.get())
    }

    /// Tries the readers whose SAM has not answered yet (at most once per [`RETRY`]).
    fn join_absent(&self) {
        let Some(connect) = &self.connect else {
            return;
        };
        if self.slots.iter().all(|s| s.sam.get().is_some()) {
            return;
        }
        let Ok(mut last) = self.last_try.try_lock() else {
            return; // another request is trying them now
        };
        if last.is_some_and(|t| t.elapsed() < RETRY) {
            return;
        }
        *last = Some(Instant::now());
        for slot in self.slots.iter().filter(|s| s.sam.get().is_none()) {
            let Some(reader) = &slot.reader else { continue };
            match connect(reader) {
                Ok(m) => {
                    let id = m.identity();
                    match self.admit(slot, m) {
                        Ok(()) => tracing::info!(
                            "SAM {} ({}) in reader '{reader}' joined",
                            id.sam_id.to_hex(),
                            id.currency
                        ),
                        Err(e) => tracing::error!("reader '{reader}': {e}"),
                    }
                }
                Err(e) => tracing::debug!("reader '{reader}': {e}"),
            }
        }
    }

    /// The currency the SAMs serve (`None` before any SAM has answered).
    pub fn currency(&self) -> Option<Currency> {
        self.join_absent();
        self.present().next().map(|s| s.identity().currency)
    }

    /// The SAM `sam_id`, if it is in the pool.
    pub fn get(&self, sam_id: SamId) -> Option<&CardSam> {
        let find = || self.present().find(|s| s.identity().sam_id == sam_id);
        find().or_else(|| {
            self.join_absent();
            find()
        })
    }

    /// Whether every SAM answers without I/O (a reader may join later: never then).
    pub fn without_io(&self) -> bool {
        self.without_io
    }

    /// The SAMs that have answered.
    pub fn iter(&self) -> impl Iterator<Item = &CardSam> {
        self.present()
    }

    /// The SAMs in the order a new payment tries them: from the next in turn, those
    /// that answered their last command first.
    pub fn candidates(&self) -> Vec<&CardSam> {
        self.join_absent();
        let present: Vec<&CardSam> = self.present().collect();
        let n = present.len().max(1);
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let turn = (0..present.len()).map(|i| present[(start + i) % n]);
        let (up, down): (Vec<_>, Vec<_>) = turn.partition(|s| s.answering());
        up.into_iter().chain(down).collect()
    }
}

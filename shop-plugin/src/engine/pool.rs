//! The shop's SAMs: one SAM card or several, each with its own `SAM_ID`, counter and
//! daily batch. A new payment goes to the next SAM in turn, one that answered last time
//! first; a payment stays on the SAM that began it (its sealed context is that SAM's).
//! A SAM that does not answer leaves its payments waiting while the others take new
//! ones.

use std::sync::atomic::{AtomicUsize, Ordering};

use purse::{Currency, SamId};

use super::sam::CardSam;
use crate::sam::SecurityModule;

/// Why a set of SAMs cannot serve together.
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

pub struct Pool {
    sams: Vec<CardSam>,
    next: AtomicUsize,
}

impl Pool {
    pub fn new(modules: Vec<Box<dyn SecurityModule>>) -> Result<Pool, PoolError> {
        let sams: Vec<CardSam> = modules.into_iter().map(CardSam::new).collect();
        let first = sams.first().ok_or(PoolError::Empty)?.identity();
        for (i, s) in sams.iter().enumerate() {
            let id = s.identity();
            if sams[..i].iter().any(|o| o.identity().sam_id == id.sam_id) {
                return Err(PoolError::Duplicate(id.sam_id.to_hex()));
            }
            if id.currency != first.currency {
                return Err(PoolError::Currencies {
                    sam: id.sam_id.to_hex(),
                    its: id.currency,
                    others: first.currency,
                });
            }
        }
        Ok(Pool {
            sams,
            next: AtomicUsize::new(0),
        })
    }

    pub fn currency(&self) -> Currency {
        self.sams[0].identity().currency
    }

    /// The SAM `sam_id`, if it is in the pool.
    pub fn get(&self, sam_id: SamId) -> Option<&CardSam> {
        self.sams.iter().find(|s| s.identity().sam_id == sam_id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &CardSam> {
        self.sams.iter()
    }

    /// The SAMs in the order a new payment tries them: from the next in turn, those
    /// that answered their last command first.
    pub fn candidates(&self) -> Vec<&CardSam> {
        let n = self.sams.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let turn = (0..n).map(|i| &self.sams[(start + i) % n]);
        let (up, down): (Vec<_>, Vec<_>) = turn.partition(|s| s.answering());
        up.into_iter().chain(down).collect()
    }
}

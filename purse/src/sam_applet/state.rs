//! What the SAM card keeps across power cycles (sam-protocol section 1): its keys, the
//! counters, the two windows, the period totals and the blocked flag, and the
//! [`SamStore`] every change goes through before the SAM answers.

use thiserror::Error;

use super::replies::Replies;
use super::window::{SeqWindow, DOUBT_SPAN};
use crate::crypto::Key;
use crate::keys::SamKeys;
use crate::types::{CloseSeq, SamTxSeq, Sum};

/// Begin numbers are reserved in blocks of this many (one write per block).
pub const BEGIN_BLOCK: u32 = 64;
/// `SAM_TxSeq`s are reserved in blocks of this many: AUTHORIZE writes only when it
/// opens a block (what a restart cannot tell about a block fits one doubt).
pub const TX_BLOCK: u32 = DOUBT_SPAN;

/// A count and sum of completions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub count: u32,
    pub sum: Sum,
}

/// The SAM's persistent state.
#[derive(Clone, Debug)]
pub struct SamState {
    pub keys: SamKeys,
    /// Drawn inside the SAM at personalisation; seals contexts and makes tags.
    pub k_ctx: Key,
    pub next_tx_seq: SamTxSeq,
    /// `SAM_TxSeq`s below it may have been handed out: the end of the reserved block.
    /// Persisted before any number of the block leaves; `next_tx_seq` is persisted with
    /// the next write only, so after a restart the SAM resumes here.
    pub tx_ceiling: u32,
    /// Begin numbers below it may have been handed out.
    pub begin_ceiling: u32,
    /// Begin numbers already authorized (older ones have expired). Not journaled: a
    /// restart expires every begin number handed out before it.
    pub begins: SeqWindow,
    /// `SAM_TxSeq`s that are final (counted or voided).
    pub finals: SeqWindow,
    pub last_close_seq: CloseSeq,
    /// Completions counted in the open period `last_close_seq + 1`.
    pub period: Totals,
    /// Completions of period `last_close_seq`, frozen by CLOSE BEGIN.
    pub closed: Totals,
    /// How the last final transactions ended, for replays of a lost answer.
    pub replies: Replies,
    /// A rolled-back state was detected: no money command works any more.
    pub blocked: bool,
}

impl SamState {
    /// A freshly personalised SAM: `SAM_TxSeq` starts at 1, no period closed.
    /// `k_ctx` must come from the SAM's own random source.
    pub fn personalise(keys: SamKeys, k_ctx: Key) -> SamState {
        SamState {
            keys,
            k_ctx,
            next_tx_seq: SamTxSeq(1),
            tx_ceiling: 1,
            begin_ceiling: 0,
            begins: SeqWindow::new(0),
            finals: SeqWindow::new(1),
            last_close_seq: CloseSeq(0),
            period: Totals::default(),
            closed: Totals::default(),
            replies: Replies::default(),
            blocked: false,
        }
    }

    /// Why this state cannot be a SAM's, if it cannot: the counters and windows of a
    /// file or a replayed journal are checked with it.
    pub(super) fn inconsistency(&self) -> Option<&'static str> {
        if self.next_tx_seq.0 == 0 {
            return Some("next_tx_seq starts at 1");
        }
        if self.next_tx_seq.0 > self.tx_ceiling {
            return Some("next_tx_seq lies above tx_ceiling");
        }
        // Nothing is used up at or above what was handed out.
        if self.finals.base() > self.next_tx_seq.0 {
            return Some("the final window lies above next_tx_seq");
        }
        if self.begins.base() > self.begin_ceiling {
            return Some("the begin window lies above begin_ceiling");
        }
        let open = self.open_period().0;
        if self
            .replies
            .iter()
            .any(|r| !self.finals.contains(r.seq) || r.period > open)
        {
            return Some("a reply of a transaction that is not final");
        }
        None
    }

    /// Power-on: what a restart cannot know is given up. The numbers of the reserved
    /// `SAM_TxSeq` block from `next_tx_seq` on may have been handed out since the last
    /// write: they stay open as a doubt and numbering resumes after the block. Every
    /// begin number handed out before has expired (the begin window is not persisted).
    pub fn power_on(&mut self) {
        let first = self.next_tx_seq.0;
        if first < self.tx_ceiling {
            self.finals.doubt(first, self.tx_ceiling - first);
            self.next_tx_seq = SamTxSeq(self.tx_ceiling);
        }
        self.begins = SeqWindow::new(self.begin_ceiling);
    }

    /// The period completions are counted in now.
    pub fn open_period(&self) -> CloseSeq {
        CloseSeq(self.last_close_seq.0.saturating_add(1))
    }
}

/// The store refused or failed to keep the new state; the SAM changed nothing.
#[derive(Debug, Error)]
#[error("SAM state could not be stored: {0}")]
pub struct SamStoreError(pub String);

/// Where the SAM's persistent state goes before it answers (the emulator appends the
/// change to a journal beside its card file: [`super::journal`]).
pub trait SamStore {
    fn persist(&mut self, state: &SamState) -> Result<(), SamStoreError>;
}

/// A store that keeps nothing beyond the applet's own memory (tests, in-process SAM).
#[derive(Debug, Default, Clone, Copy)]
pub struct MemorySamStore;

impl SamStore for MemorySamStore {
    fn persist(&mut self, _state: &SamState) -> Result<(), SamStoreError> {
        Ok(())
    }
}

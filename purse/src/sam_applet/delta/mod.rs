//! The difference between two persisted [`SamState`]s as a few bytes: what one SAM
//! command changed (a counter, a window bit, the period totals), so that the SAM card's
//! journal ([`super::journal`]) stores a change in one small record instead of the whole
//! 6 KB card file.
//!
//! A delta is computed from the two states, not told by the command, so every write the
//! applet makes goes through it unchanged; [`Delta::between`] proves its result by
//! applying it, and declines what it cannot express (a key change, a window sliding
//! backwards): the caller then stores the whole state. The begin window is left out: a
//! restart expires every begin number anyway ([`SamState::power_on`]), so what a delta
//! applies to keeps its begin window as it was.

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use super::replies::{Replies, Reply};
use super::state::{SamState, Totals};
use super::window::{SeqWindow, WINDOW_BITS};
use crate::types::{CloseSeq, SamTxSeq, Sum};

const BITMAP_BYTES: usize = (WINDOW_BITS / 8) as usize;

// Record tags. Window operations add the window (0 begins, 1 finals).
const NEXT_TX_SEQ: u8 = 0x01;
const BEGIN_CEILING: u8 = 0x02;
const LAST_CLOSE_SEQ: u8 = 0x03;
const PERIOD: u8 = 0x04;
const CLOSED: u8 = 0x05;
const BLOCKED: u8 = 0x06;
const REPLY: u8 = 0x07;
const BASE: u8 = 0x10;
const BYTE: u8 = 0x20;
const LAGGARD_ADD: u8 = 0x30;
const LAGGARD_DROP: u8 = 0x40;
const DOUBT: u8 = 0x50;
const TX_CEILING: u8 = 0x08;

/// A delta that does not decode or does not apply to the state it follows.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum DeltaError {
    #[error("SAM journal record: malformed delta")]
    Malformed,
    #[error("SAM journal record does not apply: {0}")]
    Inapplicable(&'static str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Win {
    Begins,
    Finals,
}

impl Win {
    fn code(self) -> u8 {
        match self {
            Win::Begins => 0,
            Win::Finals => 1,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    NextTxSeq(u32),
    TxCeiling(u32),
    BeginCeiling(u32),
    LastCloseSeq(u32),
    Period(Totals),
    Closed(Totals),
    Blocked,
    /// A final transaction's reply remembered (the oldest forgotten when full).
    Reply(Reply),
    /// The window's new base; the bitmap moves down by whole bytes.
    Base(Win, u32),
    /// One bitmap byte's new value (after the base moved).
    Byte(Win, u16, u8),
    LaggardAdd(Win, u32),
    LaggardDrop(Win, u32),
    /// A doubt's new bits, by its first number (0: gone).
    Doubt(Win, u32, u64),
}

/// What changed between two states of one SAM.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delta {
    ops: Vec<Op>,
}

impl Delta {
    /// The change from `old` to `new`, checked by applying it to `old`; `None` when a
    /// delta cannot express it (the caller stores `new` whole).
    pub fn between(old: &SamState, new: &SamState) -> Option<Delta> {
        if old.keys.sam_id != new.keys.sam_id
            || old.keys.currency != new.keys.currency
            || old.keys.key_version != new.keys.key_version
            || old.keys.k_sam != new.keys.k_sam
            || old.keys.mk_pur != new.keys.mk_pur
            || old.k_ctx != new.k_ctx
            || (old.blocked && !new.blocked)
        {
            return None;
        }
        let mut ops = Vec::new();
        let mut scalar = |changed: bool, op: Op| {
            if changed {
                ops.push(op);
            }
        };
        scalar(
            old.next_tx_seq != new.next_tx_seq,
            Op::NextTxSeq(new.next_tx_seq.0),
        );
        scalar(
            old.tx_ceiling != new.tx_ceiling,
            Op::TxCeiling(new.tx_ceiling),
        );
        scalar(
            old.begin_ceiling != new.begin_ceiling,
            Op::BeginCeiling(new.begin_ceiling),
        );
        scalar(
            old.last_close_seq != new.last_close_seq,
            Op::LastCloseSeq(new.last_close_seq.0),
        );
        scalar(old.period != new.period, Op::Period(new.period));
        scalar(old.closed != new.closed, Op::Closed(new.closed));
        scalar(!old.blocked && new.blocked, Op::Blocked);
        ops.extend(reply_ops(&old.replies, &new.replies)?);
        window_ops(Win::Finals, &old.finals, &new.finals, &mut ops)?;
        let delta = Delta { ops };
        let mut check = old.clone();
        delta.apply(&mut check).ok()?;
        same_counters(&check, new).then_some(delta)
    }

    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Applies the change to the state it was computed from. On error `state` may be
    /// partly changed: the caller drops it.
    pub fn apply(&self, state: &mut SamState) -> Result<(), DeltaError> {
        let mut begins = Parts::of(&state.begins);
        let mut finals = Parts::of(&state.finals);
        for op in &self.ops {
            match *op {
                Op::NextTxSeq(n) => state.next_tx_seq = SamTxSeq(n),
                Op::TxCeiling(n) => state.tx_ceiling = n,
                Op::BeginCeiling(n) => state.begin_ceiling = n,
                Op::LastCloseSeq(n) => state.last_close_seq = CloseSeq(n),
                Op::Period(t) => state.period = t,
                Op::Closed(t) => state.closed = t,
                Op::Blocked => state.blocked = true,
                Op::Reply(r) => state.replies.push(r),
                Op::Base(w, base) => pick(w, &mut begins, &mut finals).rebase(base)?,
                Op::Byte(w, i, v) => {
                    let p = pick(w, &mut begins, &mut finals);
                    let slot = p
                        .bits
                        .get_mut(usize::from(i))
                        .ok_or(DeltaError::Malformed)?;
                    *slot = v;
                }
                Op::LaggardAdd(w, n) => {
                    pick(w, &mut begins, &mut finals).laggards.insert(n);
                }
                Op::LaggardDrop(w, n) => {
                    pick(w, &mut begins, &mut finals).laggards.remove(&n);
                }
                Op::Doubt(w, first, 0) => {
                    pick(w, &mut begins, &mut finals).doubts.remove(&first);
                }
                Op::Doubt(w, first, bits) => {
                    pick(w, &mut begins, &mut finals).doubts.insert(first, bits);
                }
            }
        }
        state.begins = begins
            .restore()
            .ok_or(DeltaError::Inapplicable("the begin window"))?;
        state.finals = finals
            .restore()
            .ok_or(DeltaError::Inapplicable("the final window"))?;
        match state.inconsistency() {
            Some(why) => Err(DeltaError::Inapplicable(why)),
            None => Ok(()),
        }
    }

    /// The binary form: each change a tag and its big-endian fields.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(8 * self.ops.len());
        for op in &self.ops {
            match *op {
                Op::NextTxSeq(n) => put(&mut v, NEXT_TX_SEQ, &n.to_be_bytes()),
                Op::TxCeiling(n) => put(&mut v, TX_CEILING, &n.to_be_bytes()),
                Op::BeginCeiling(n) => put(&mut v, BEGIN_CEILING, &n.to_be_bytes()),
                Op::LastCloseSeq(n) => put(&mut v, LAST_CLOSE_SEQ, &n.to_be_bytes()),
                Op::Period(t) => put(&mut v, PERIOD, &totals_bytes(t)),
                Op::Closed(t) => put(&mut v, CLOSED, &totals_bytes(t)),
                Op::Blocked => v.push(BLOCKED),
                Op::Reply(r) => {
                    v.push(REPLY);
                    v.extend_from_slice(&r.seq.to_be_bytes());
                    v.extend_from_slice(&r.period.to_be_bytes());
                    v.extend_from_slice(&r.tag);
                }
                Op::Base(w, b) => put(&mut v, BASE | w.code(), &b.to_be_bytes()),
                Op::Byte(w, i, b) => {
                    put(&mut v, BYTE | w.code(), &i.to_be_bytes());
                    v.push(b);
                }
                Op::LaggardAdd(w, n) => put(&mut v, LAGGARD_ADD | w.code(), &n.to_be_bytes()),
                Op::LaggardDrop(w, n) => put(&mut v, LAGGARD_DROP | w.code(), &n.to_be_bytes()),
                Op::Doubt(w, first, bits) => {
                    put(&mut v, DOUBT | w.code(), &first.to_be_bytes());
                    v.extend_from_slice(&bits.to_be_bytes());
                }
            }
        }
        v
    }

    /// Parses [`Delta::encode`]'s form; whether it applies is [`Delta::apply`]'s check.
    pub fn decode(b: &[u8]) -> Result<Delta, DeltaError> {
        let mut c = Cursor(b);
        let mut ops = Vec::new();
        while let Some(tag) = c.u8() {
            let win = if tag & 0x01 == 0 {
                Win::Begins
            } else {
                Win::Finals
            };
            let op = match tag {
                NEXT_TX_SEQ => Op::NextTxSeq(c.u32()?),
                TX_CEILING => Op::TxCeiling(c.u32()?),
                BEGIN_CEILING => Op::BeginCeiling(c.u32()?),
                LAST_CLOSE_SEQ => Op::LastCloseSeq(c.u32()?),
                PERIOD => Op::Period(c.totals()?),
                CLOSED => Op::Closed(c.totals()?),
                BLOCKED => Op::Blocked,
                REPLY => Op::Reply(Reply {
                    seq: c.u32()?,
                    period: c.u32()?,
                    tag: c.take()?,
                }),
                t if t & 0xFE == BASE => Op::Base(win, c.u32()?),
                t if t & 0xFE == BYTE => {
                    Op::Byte(win, c.u16()?, c.u8().ok_or(DeltaError::Malformed)?)
                }
                t if t & 0xFE == LAGGARD_ADD => Op::LaggardAdd(win, c.u32()?),
                t if t & 0xFE == LAGGARD_DROP => Op::LaggardDrop(win, c.u32()?),
                t if t & 0xFE == DOUBT => {
                    Op::Doubt(win, c.u32()?, c.take().map(u64::from_be_bytes)?)
                }
                _ => return Err(DeltaError::Malformed),
            };
            ops.push(op);
        }
        Ok(Delta { ops })
    }
}

fn pick<'a>(w: Win, begins: &'a mut Parts, finals: &'a mut Parts) -> &'a mut Parts {
    match w {
        Win::Begins => begins,
        Win::Finals => finals,
    }
}

/// A window taken apart while a delta changes it.
struct Parts {
    base: u32,
    bits: Vec<u8>,
    laggards: BTreeSet<u32>,
    doubts: BTreeMap<u32, u64>,
}

impl Parts {
    fn of(w: &SeqWindow) -> Parts {
        Parts {
            base: w.base(),
            bits: w.bits().to_vec(),
            laggards: w.laggards().clone(),
            doubts: w.doubts().clone(),
        }
    }

    /// The base moves up by whole bytes, the bitmap down with it.
    fn rebase(&mut self, base: u32) -> Result<(), DeltaError> {
        let up = base
            .checked_sub(self.base)
            .filter(|up| up % 8 == 0)
            .ok_or(DeltaError::Inapplicable("a window base moved back"))?;
        let shift = usize::try_from(up / 8).map_or(BITMAP_BYTES, |s| s.min(BITMAP_BYTES));
        self.bits.drain(..shift);
        self.bits.resize(BITMAP_BYTES, 0);
        self.base = base;
        Ok(())
    }

    fn restore(self) -> Option<SeqWindow> {
        SeqWindow::restore(self.base, self.bits, self.laggards)?.with_doubts(self.doubts)
    }
}

/// The operations that turn window `old` into `new`; `None` if its base moved back or
/// by a part of a byte (a window never does).
fn window_ops(w: Win, old: &SeqWindow, new: &SeqWindow, ops: &mut Vec<Op>) -> Option<()> {
    let mut moved = Parts::of(old);
    if new.base() != old.base() {
        moved.rebase(new.base()).ok()?;
        ops.push(Op::Base(w, new.base()));
    }
    for (i, (a, b)) in moved.bits.iter().zip(new.bits()).enumerate() {
        if a != b {
            ops.push(Op::Byte(w, u16::try_from(i).ok()?, *b));
        }
    }
    for n in new.laggards().difference(old.laggards()) {
        ops.push(Op::LaggardAdd(w, *n));
    }
    for n in old.laggards().difference(new.laggards()) {
        ops.push(Op::LaggardDrop(w, *n));
    }
    let firsts: BTreeSet<&u32> = old.doubts().keys().chain(new.doubts().keys()).collect();
    for first in firsts {
        let bits = new.doubts().get(first).copied().unwrap_or(0);
        if old.doubts().get(first) != Some(&bits) {
            ops.push(Op::Doubt(w, *first, bits));
        }
    }
    Some(())
}

/// The replies remembered since `old`: the last few of `new`, when pushing them onto
/// `old` gives `new` (a command finalizes one transaction); `None` otherwise.
fn reply_ops(old: &Replies, new: &Replies) -> Option<Vec<Op>> {
    if old == new {
        return Some(Vec::new());
    }
    (1..=2.min(new.len())).find_map(|n| {
        let added: Vec<Reply> = new.iter().skip(new.len() - n).copied().collect();
        let mut pushed = old.clone();
        added.iter().for_each(|r| pushed.push(*r));
        (pushed == *new).then(|| added.into_iter().map(Op::Reply).collect())
    })
}

/// Everything but the keys (which a delta never changes) and the begin window (which
/// it leaves out) is equal.
fn same_counters(a: &SamState, b: &SamState) -> bool {
    a.next_tx_seq == b.next_tx_seq
        && a.tx_ceiling == b.tx_ceiling
        && a.begin_ceiling == b.begin_ceiling
        && a.finals == b.finals
        && a.last_close_seq == b.last_close_seq
        && a.period == b.period
        && a.closed == b.closed
        && a.replies == b.replies
        && a.blocked == b.blocked
}

fn put(v: &mut Vec<u8>, tag: u8, fields: &[u8]) {
    v.push(tag);
    v.extend_from_slice(fields);
}

fn totals_bytes(t: Totals) -> [u8; 12] {
    let mut b = [0u8; 12];
    b[..4].copy_from_slice(&t.count.to_be_bytes());
    b[4..].copy_from_slice(&t.sum.0.to_be_bytes());
    b
}

/// Reads big-endian fields; every read past the end is [`DeltaError::Malformed`].
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], DeltaError> {
        let (head, rest) = self.0.split_at_checked(N).ok_or(DeltaError::Malformed)?;
        self.0 = rest;
        head.try_into().map_err(|_| DeltaError::Malformed)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().ok().map(|b| b[0])
    }

    fn u16(&mut self) -> Result<u16, DeltaError> {
        self.take().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Result<u32, DeltaError> {
        self.take().map(u32::from_be_bytes)
    }

    fn totals(&mut self) -> Result<Totals, DeltaError> {
        let count = self.u32()?;
        let sum = self.take().map(u64::from_be_bytes)?;
        Ok(Totals {
            count,
            sum: Sum(sum),
        })
    }
}

#[cfg(test)]
mod tests;

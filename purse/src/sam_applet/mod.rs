//! The SAM applet (docs/sam-protocol.md): the security module of spec section 5 as an
//! ISO 7816 application in a card of its own, a pure APDU-in / APDU-out state machine
//! like the purse card applet in [`crate::card`].
//!
//! It keeps no per-payment state between commands: each payment's context goes to the
//! host sealed ([`seal`]) and comes back with the next command. What it does keep
//! ([`SamState`]: keys, counters, windows, period totals) goes through a [`SamStore`]
//! before it answers; [`delta`] and [`journal`] are the small-record form a store can
//! keep changes in. The purse MACs, batch formulas and record encodings are those of
//! [`crate::macs`], [`crate::settlement`] and [`crate::commands`].

mod checks;
mod close;
pub mod command;
mod context;
pub mod delta;
pub mod host;
pub mod journal;
mod json;
mod purchase;
mod recovery;
pub mod replies;
pub mod seal;
mod state;
pub mod window;

pub use command::{CloseStep, SamCommand, SAM_AID};
pub use delta::{Delta, DeltaError};
pub use journal::{JournalError, Replayed, SamJournal};
pub use json::{SamCardError, SAM_CARD_FORMAT};
pub use replies::{Replies, Reply, REPLY_DEPTH};
pub use state::{MemorySamStore, SamState, SamStore, SamStoreError, Totals, BEGIN_BLOCK, TX_BLOCK};

use close::CloseStream;
use command::sw;
use context::TxCtx;
use seal::SealKeys;

use crate::apdu::{Response, StatusWord};
use crate::commands::is_select_class;
use crate::types::{CloseSeq, Mac8, Rnd, APP_VERSION};

type Answer = Result<Vec<u8>, StatusWord>;

/// The first byte of an outcome (COMPLETE, STOP, RECOVERY END).
pub mod outcome {
    /// A time-cycle runs: its new context follows.
    pub const RUNNING: u8 = 0x00;
    /// Final and counted: `Period || Rec || Tag` follow.
    pub const COMPLETED: u8 = 0x01;
    /// Final with nothing to settle.
    pub const NOTHING: u8 = 0x02;
    /// Recovery could not decide: nothing changed.
    pub const PENDING: u8 = 0x03;
}

/// What the SAM holds in RAM only: lost on reset.
#[derive(Debug, Default)]
struct Volatile {
    selected: bool,
    begin_next: u32,
    close: Option<CloseStream>,
}

/// The SAM application of one SAM card.
#[derive(Debug)]
pub struct SamApplet {
    state: SamState,
    seal: SealKeys,
    volatile: Volatile,
}

impl SamApplet {
    /// A SAM with `state` (as persisted), just powered on: nothing selected, begin
    /// numbers from the reserved ceiling on, `SAM_TxSeq` after the reserved block
    /// ([`SamState::power_on`]).
    pub fn new(mut state: SamState) -> SamApplet {
        state.power_on();
        let seal = SealKeys::derive(&state.k_ctx, state.keys.sam_id);
        let volatile = Volatile {
            begin_next: state.begin_ceiling,
            ..Volatile::default()
        };
        SamApplet {
            state,
            seal,
            volatile,
        }
    }

    /// The persistent state: as last persisted, with the `SAM_TxSeq`s and begin numbers
    /// of the reserved blocks handed out since (persisted with the next write).
    pub fn state(&self) -> &SamState {
        &self.state
    }

    /// A clean stop: the unused rest of the `SAM_TxSeq` block is given back and the
    /// state persisted, so that the next power-on has nothing to doubt.
    pub fn power_off(&mut self, store: &mut dyn SamStore) -> Result<(), SamStoreError> {
        let mut next = self.state.clone();
        next.tx_ceiling = next.next_tx_seq.0;
        store.persist(&next)?;
        self.state = next;
        Ok(())
    }

    /// Reset or power cycle.
    pub fn reset(&mut self) {
        self.volatile = Volatile {
            begin_next: self.state.begin_ceiling,
            ..Volatile::default()
        };
    }

    /// Processes one command APDU and returns `data || SW`. `rnd` is fresh output of the
    /// SAM's random source; only BEGIN and RECOVERY BEGIN use it. A change of persistent
    /// state is stored through `store` before the answer; if that fails the SAM answers
    /// 6581, unchanged.
    pub fn process(&mut self, apdu: &[u8], rnd: Rnd, store: &mut dyn SamStore) -> Vec<u8> {
        let select_class = is_select_class(apdu);
        if select_class {
            self.volatile.close = None;
        }
        let response = match self.handle(apdu, rnd, store) {
            Ok(data) => Response::ok(data),
            Err(sw) => Response::status(sw),
        };
        if select_class {
            self.volatile.selected = response.sw.is_ok();
        }
        response.to_bytes()
    }

    fn handle(&mut self, apdu: &[u8], rnd: Rnd, store: &mut dyn SamStore) -> Answer {
        let cmd = SamCommand::decode(apdu)?;
        match cmd {
            SamCommand::Select(aid) => return self.select(aid),
            _ if !self.volatile.selected => return Err(StatusWord::CONDITIONS_NOT_SATISFIED),
            SamCommand::Status => return Ok(self.status()),
            _ if self.state.blocked => return Err(sw::BLOCKED),
            _ => {}
        }
        match cmd {
            SamCommand::Begin { mode, data } => self.begin(mode, data, rnd, store),
            SamCommand::Authorize(d) => self.authorize(d, store),
            SamCommand::Complete(d) => self.complete(d, store),
            SamCommand::Tick(d) => self.tick(d, store),
            SamCommand::Stop { how, data } => self.stop(how, data, store),
            SamCommand::RecoveryBegin(d) => self.recovery_begin(d, rnd, store),
            SamCommand::RecoveryEnd(d) => self.recovery_end(d, store),
            SamCommand::Close { step, data } => self.close(step, data, store),
            SamCommand::Select(_) | SamCommand::Status => Err(StatusWord::INS_NOT_SUPPORTED),
        }
    }

    fn select(&self, aid: &[u8]) -> Answer {
        if aid != SAM_AID {
            return Err(StatusWord::FILE_NOT_FOUND);
        }
        let k = &self.state.keys;
        let mut v = vec![APP_VERSION];
        v.extend_from_slice(&k.sam_id.0);
        v.push(k.key_version.0);
        v.extend_from_slice(&k.currency.numeric().to_be_bytes());
        Ok(v)
    }

    /// GET STATUS: identity, counters and totals (for `doctor`), 45 bytes.
    fn status(&self) -> Vec<u8> {
        let s = &self.state;
        let mut v = Vec::with_capacity(45);
        v.extend_from_slice(&s.keys.sam_id.0);
        v.push(s.keys.key_version.0);
        v.extend_from_slice(&s.keys.currency.numeric().to_be_bytes());
        v.extend_from_slice(&s.next_tx_seq.0.to_be_bytes());
        v.extend_from_slice(&s.last_close_seq.0.to_be_bytes());
        v.extend_from_slice(&s.period.count.to_be_bytes());
        v.extend_from_slice(&s.period.sum.0.to_be_bytes());
        v.extend_from_slice(&s.closed.count.to_be_bytes());
        v.extend_from_slice(&s.closed.sum.0.to_be_bytes());
        // At most MAX_LAGGARDS (64).
        v.push(u8::try_from(s.finals.laggards().len()).unwrap_or(u8::MAX));
        v.push(u8::from(s.blocked));
        v
    }

    /// Write-ahead: `next` becomes the state only once the store kept it.
    fn commit(&mut self, next: SamState, store: &mut dyn SamStore) -> Result<(), StatusWord> {
        store
            .persist(&next)
            .map_err(|_| StatusWord::MEMORY_FAILURE)?;
        self.state = next;
        Ok(())
    }

    /// A context from "the future" proves the state was rolled back: block for good (in
    /// RAM even if the store fails, so this power cycle at least refuses).
    fn block(&mut self, store: &mut dyn SamStore) -> StatusWord {
        let mut next = self.state.clone();
        next.blocked = true;
        let _ = store.persist(&next);
        self.state.blocked = true;
        sw::BLOCKED
    }

    /// Opens a transaction context: authentic (6988), not from a rolled-back future
    /// (6983), not final (6985) unless `replay` (COMPLETE, STOP and RECOVERY END of a
    /// final transaction may only reproduce its outcome: [`SamApplet::finalize`]).
    fn open_tx(
        &mut self,
        ctx: TxCtx,
        replay: bool,
        store: &mut dyn SamStore,
    ) -> Result<TxCtx, StatusWord> {
        if ctx.tx.sam_tx_seq >= self.state.next_tx_seq || ctx.period > self.state.open_period() {
            return Err(self.block(store));
        }
        if !replay && self.is_final(&ctx) {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        Ok(ctx)
    }

    fn tx_ctx(
        &mut self,
        raw: &[u8],
        replay: bool,
        store: &mut dyn SamStore,
    ) -> Result<TxCtx, StatusWord> {
        let ctx = TxCtx::open(&self.seal, raw).ok_or(sw::BAD_CONTEXT)?;
        self.open_tx(ctx, replay, store)
    }

    /// Whether the context's transaction is final already.
    fn is_final(&self, ctx: &TxCtx) -> bool {
        self.state.finals.contains(ctx.tx.sam_tx_seq.0)
    }

    /// The transaction becomes final: its bit is set and, when the card confirmed units,
    /// they are counted in the open period and the record goes out with its tag. For a
    /// transaction already final (a replay after a lost answer) nothing changes: the
    /// answer is the one it got then, or 6985 when this would be another outcome or
    /// the SAM no longer remembers it ([`replies`]).
    fn finalize(&mut self, ctx: &TxCtx, store: &mut dyn SamStore) -> Answer {
        let tx = &ctx.tx;
        let seq = tx.sam_tx_seq.0;
        let sam_id = self.state.keys.sam_id;
        let batch = tx.batch_tx(sam_id);
        if self.is_final(ctx) {
            let given = self
                .state
                .replies
                .find(seq)
                .ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)?;
            let again = match &batch {
                None => (given.period == 0).then(|| vec![outcome::NOTHING]),
                Some(b) => {
                    let (v, tag) = self.completed(CloseSeq(given.period), &b.rec(sam_id));
                    (given.period != 0 && tag.0 == given.tag).then_some(v)
                }
            };
            return again.ok_or(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        let mut next = self.state.clone();
        next.finals.insert(seq);
        let Some(b) = batch else {
            next.replies.push(Reply::nothing(seq));
            self.commit(next, store)?;
            return Ok(vec![outcome::NOTHING]);
        };
        let period = next.open_period();
        next.period.count = next.period.count.checked_add(1).ok_or(sw::FULL)?;
        next.period.sum.0 = next
            .period
            .sum
            .0
            .checked_add(u64::from(b.total.0))
            .ok_or(sw::FULL)?;
        let (v, tag) = self.completed(period, &b.rec(sam_id));
        next.replies.push(Reply::counted(seq, period, &tag));
        self.commit(next, store)?;
        Ok(v)
    }

    /// The outcome `01 || Period || Rec || Tag` of a record counted in `period`.
    fn completed(&self, period: CloseSeq, rec: &[u8]) -> (Vec<u8>, Mac8) {
        let tag: Mac8 = self.seal.tag(period, rec);
        let mut v = Vec::with_capacity(73);
        v.push(outcome::COMPLETED);
        v.extend_from_slice(&period.0.to_be_bytes());
        v.extend_from_slice(rec);
        v.extend_from_slice(&tag.0);
        (v, tag)
    }
}

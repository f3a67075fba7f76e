//! A purchase through the SAM (spec 5.1 to 5.4): BEGIN, AUTHORIZE, COMPLETE, TICK and
//! STOP. Each takes the context the last one sealed and checks the card's answer.

use super::checks::{self, Proof};
use super::command::sw;
use super::context::{BeginCtx, TxCtx};
use super::window::Slide;
use super::{outcome, Answer, SamApplet, SamStore};
use crate::apdu::{Response, StatusWord};
use crate::commands::{DebitResponse, InitializeCmd, InitializeResponse, Reader};
use crate::macs::{s2, s2k};
use crate::sam::{Order, SamTx, TxState};
use crate::types::{Amount, Currency, DateTime, KeyVersion, Mode, Rnd, Units};

use super::state::{BEGIN_BLOCK, TX_BLOCK};

impl SamApplet {
    /// BEGIN: the shop's order in, `InitData || BeginCtx` out.
    pub(super) fn begin(
        &mut self,
        mode: u8,
        data: &[u8],
        rnd_s: Rnd,
        store: &mut dyn SamStore,
    ) -> Answer {
        let mut r = Reader::new(data);
        let (u, max_units, period_secs) = (Amount(r.u32()), Units(r.u16()), r.u32());
        let currency = Currency::from_numeric(r.u16()).map_err(|_| StatusWord::WRONG_DATA)?;
        let mode = Mode::from_p1(mode).ok_or(StatusWord::WRONG_DATA)?;
        let fits = mode.accepts(u, max_units)
            && match mode {
                Mode::TimeCycle => period_secs >= 1,
                _ => period_secs == 0,
            };
        if !fits {
            return Err(StatusWord::WRONG_DATA);
        }
        if currency != self.state.keys.currency {
            return Err(sw::CURRENCY);
        }
        let b = self.volatile.begin_next;
        let after = b.checked_add(1).ok_or(sw::FULL)?;
        if b >= self.state.begin_ceiling {
            // Reserve the next block before any of its numbers leaves.
            let mut next = self.state.clone();
            next.begin_ceiling = b.checked_add(BEGIN_BLOCK).ok_or(sw::FULL)?;
            self.commit(next, store)?;
        }
        self.volatile.begin_next = after;
        let ctx = BeginCtx {
            begin_no: b,
            order: Order {
                mode,
                unit_amount: u,
                max_units,
                period_secs,
            },
            rnd_s,
        };
        let mut v = init_data(self.state.keys.sam_id.0, &rnd_s, u, max_units);
        v.extend_from_slice(&ctx.seal(&self.seal));
        Ok(v)
    }

    /// AUTHORIZE: the card's INITIALIZE answer in; S1 verified, funds checked,
    /// `SAM_TxSeq` allocated and persisted; `DebitData || TxCtx` out.
    pub(super) fn authorize(&mut self, data: &[u8], store: &mut dyn SamStore) -> Answer {
        let (head, raw) = data.split_at(47);
        let begin = BeginCtx::open(&self.seal, raw).ok_or(sw::BAD_CONTEXT)?;
        if begin.begin_no >= self.volatile.begin_next {
            return Err(self.block(store));
        }
        if begin.begin_no < self.state.begins.base() {
            return Err(sw::EXPIRED);
        }
        if self.state.begins.contains(begin.begin_no) {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        let mut r = Reader::new(head);
        let kv = KeyVersion(r.u8());
        let now = DateTime(r.u32());
        let resp = InitializeResponse::parse(&head[5..]).map_err(|_| StatusWord::WRONG_DATA)?;
        let order = begin.order;
        let keys = &self.state.keys;
        let cmd = InitializeCmd {
            mode: order.mode,
            kv,
            sam_id: keys.sam_id,
            rnd_s: begin.rnd_s,
            u: order.unit_amount,
            max_units: order.max_units,
        };
        let ks = checks::initialize(keys, &cmd, &resp)?;
        if resp.currency != keys.currency {
            return Err(sw::CURRENCY);
        }
        if resp.balance < order.unit_amount {
            return Err(StatusWord::INSUFFICIENT_FUNDS);
        }
        let mut next = self.state.clone();
        let seq = next.next_tx_seq;
        next.next_tx_seq = seq.next().ok_or(sw::FULL)?;
        let opens_block = seq.0 >= next.tx_ceiling;
        if opens_block {
            // The block and room for all of it in the final window, before any of its
            // numbers leaves; within the block nothing is written.
            next.tx_ceiling = seq.0.checked_add(TX_BLOCK).ok_or(sw::FULL)?;
            next.finals
                .make_room(next.tx_ceiling - 1, Slide::Keep)
                .map_err(|_| sw::FULL)?;
        }
        // Never fails: Expire drops old numbers instead of keeping them.
        let _ = next.begins.make_room(begin.begin_no, Slide::Expire);
        next.begins.insert(begin.begin_no);
        let period = next.open_period();
        if opens_block {
            self.commit(next, store)?;
        } else {
            self.state = next;
        }
        let tx = SamTx {
            sam_tx_seq: seq,
            kv,
            card_id: resp.card_id,
            nt: resp.nt,
            balance: resp.balance,
            order,
            rnd_s: begin.rnd_s,
            rnd_c: resp.rnd_c,
            datetime: now,
            state: TxState::Pending,
            in_flight: Some(Units(1)),
            confirmed: None,
            settled_in: None,
            clearing_decision: None,
        };
        let mac = s2(&ks, &tx.session(self.state.keys.sam_id), seq, now);
        let mut v = Vec::with_capacity(16 + super::command::TX_CTX_LEN);
        v.extend_from_slice(&seq.0.to_be_bytes());
        v.extend_from_slice(&now.0.to_be_bytes());
        v.extend_from_slice(&mac.0);
        v.extend_from_slice(&TxCtx { tx, period }.seal(&self.seal));
        Ok(v)
    }

    /// COMPLETE: the card's DEBIT or TICK answer in; an outcome out.
    pub(super) fn complete(&mut self, data: &[u8], store: &mut dyn SamStore) -> Answer {
        let n = 1 + usize::from(data[0]);
        let mut ctx = self.tx_ctx(&data[n..], true, store)?;
        let k = match (ctx.tx.state, ctx.tx.in_flight) {
            (TxState::Pending, Some(k)) => k,
            _ => return Err(StatusWord::CONDITIONS_NOT_SATISFIED),
        };
        let answer = Response::parse(&data[1..n]).map_err(|_| StatusWord::WRONG_DATA)?;
        if !answer.sw.is_ok() {
            // The card refused: the command in flight debited nothing.
            return self.finalize(&ctx, store);
        }
        let resp = DebitResponse::parse(&answer.data).map_err(|_| StatusWord::WRONG_DATA)?;
        let tx = &ctx.tx;
        let total = tx
            .order
            .unit_amount
            .checked_mul(k)
            .ok_or(StatusWord::WRONG_DATA)?;
        let confirmed = checks::proof(
            &self.state.keys,
            tx,
            Proof {
                units: k,
                total,
                balance_after: resp.balance_after,
                s3: resp.s3,
                tac: resp.tac,
            },
        )?;
        let finished = tx.order.mode == Mode::Single || k >= tx.order.max_units;
        ctx.tx.confirmed = Some(confirmed);
        ctx.tx.in_flight = None;
        if finished {
            ctx.tx.state = TxState::Completed;
            return self.finalize(&ctx, store);
        }
        if self.is_final(&ctx) {
            // Stopped since: this context cannot run again.
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        ctx.tx.state = TxState::Running;
        ctx.period = self.state.open_period();
        Ok(running(&ctx, self))
    }

    /// TICK: a running time-cycle's context and the host's clock in; `k || S2k` and the
    /// context with unit k in flight out. Writes nothing.
    pub(super) fn tick(&mut self, data: &[u8], store: &mut dyn SamStore) -> Answer {
        let now = u64::from(Reader::new(data).u32());
        let mut ctx = self.tx_ctx(&data[4..], false, store)?;
        let tx = &ctx.tx;
        if tx.state != TxState::Running || ctx.period != self.state.open_period() {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        let k = match tx.confirmed_units().0.checked_add(1) {
            Some(k) if k <= tx.order.max_units.0 => Units(k),
            _ => return Err(StatusWord::CONDITIONS_NOT_SATISFIED),
        };
        if now < tx.due_at(k) {
            return Err(sw::NOT_DUE);
        }
        let ks = checks::session(
            &self.state.keys,
            tx.kv,
            tx.card_id,
            tx.nt,
            &tx.rnd_s,
            &tx.rnd_c,
        )?;
        let mac = s2k(&ks, tx.nt, k);
        ctx.tx.state = TxState::Pending;
        ctx.tx.in_flight = Some(k);
        let mut v = Vec::with_capacity(10 + super::command::TX_CTX_LEN);
        v.extend_from_slice(&k.0.to_be_bytes());
        v.extend_from_slice(&mac.0);
        v.extend_from_slice(&ctx.seal(&self.seal));
        Ok(v)
    }

    /// STOP: end a running time-cycle (`how` 00), or record the clearing office's
    /// decision on a pending transaction (01 not debited, 02 debited).
    pub(super) fn stop(&mut self, how: u8, data: &[u8], store: &mut dyn SamStore) -> Answer {
        let ctx = self.tx_ctx(data, true, store)?;
        let wanted = if how == 0 {
            TxState::Running
        } else {
            TxState::Pending
        };
        if ctx.tx.state != wanted {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        self.finalize(&ctx, store)
    }
}

/// `00 || TxCtx`: the time-cycle runs on.
fn running(ctx: &TxCtx, sam: &SamApplet) -> Vec<u8> {
    let mut v = vec![outcome::RUNNING];
    v.extend_from_slice(&ctx.seal(&sam.seal));
    v
}

/// The INITIALIZE data field `SAM_ID || RND_S || U || MaxUnits`.
pub(super) fn init_data(sam_id: [u8; 8], rnd_s: &Rnd, u: Amount, max_units: Units) -> Vec<u8> {
    let mut v = Vec::with_capacity(30 + super::command::RECOVERY_CTX_LEN);
    v.extend_from_slice(&sam_id);
    v.extend_from_slice(&rnd_s.0);
    v.extend_from_slice(&u.0.to_be_bytes());
    v.extend_from_slice(&max_units.0.to_be_bytes());
    v
}

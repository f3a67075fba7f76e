//! The card's volatile purchase session (spec 4): what INITIALIZE opened, the session key,
//! how far DEBIT and DEBIT TICK got, and the checks and MACs of a charge.
//!
//! Nothing here touches persistent state: a charge is computed as a [`Charge`] and the
//! applet persists it before the session records it.

use super::state::CardState;
use crate::apdu::StatusWord;
use crate::commands::{
    DebitCmd, DebitResponse, InitializeCmd, InitializeResponse, TickCmd, TxRecord,
};
use crate::crypto::Key;
use crate::macs::{proof_key, s1, s2, s2k, s3, session_key, SessionParams, TacInput};
use crate::types::{Amount, DateTime, Mac8, Mode, Nt, Rnd, SamTxSeq, Units};

/// A session opened by a successful INITIALIZE. RAM only; `ks` is wiped on drop.
#[derive(Debug)]
pub(super) struct Session {
    params: SessionParams,
    ks: Key,
    progress: Progress,
}

/// How far the session's purchase got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Progress {
    /// INITIALIZE answered, nothing charged yet.
    Opened,
    /// DEBIT (and maybe TICKs) charged: `units` so far, for `total`.
    Debited(Debited),
}

/// What a charged session remembers: the DEBIT's fields, which every later record of the
/// NT keeps, and the cumulative units and total.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Debited {
    sam_tx_seq: SamTxSeq,
    datetime: DateTime,
    units: Units,
    total: Amount,
}

/// A verified and funded charge, not yet persisted: the record `R(NT)` to write (its
/// `balance_after` is the new balance), the session's next progress, and the answer.
#[derive(Debug)]
pub(super) struct Charge {
    pub record: TxRecord,
    pub debited: Debited,
    pub response: DebitResponse,
}

impl Session {
    /// Opens the session of `cmd` for transaction number `nt` (the caller checked state,
    /// mode and data) and computes the INITIALIZE response.
    pub(super) fn open(
        state: &CardState,
        cmd: &InitializeCmd,
        nt: Nt,
        rnd_c: Rnd,
    ) -> (Session, InitializeResponse) {
        let params = SessionParams {
            card_id: state.card_id,
            nt,
            sam_id: cmd.sam_id,
            mode: cmd.mode,
            u: cmd.u,
            max_units: cmd.max_units,
        };
        let ks = session_key(
            &state.k_pur,
            state.card_id,
            nt,
            cmd.sam_id,
            &cmd.rnd_s,
            &rnd_c,
        );
        let response = InitializeResponse {
            card_id: state.card_id,
            nt,
            balance: state.balance,
            currency: state.currency,
            rnd_c,
            s1: s1(&ks, &params, state.balance, state.currency, &cmd.rnd_s),
        };
        let session = Session {
            params,
            ks,
            progress: Progress::Opened,
        };
        (session, response)
    }

    /// DEBIT FOR PURCHASE: unit 1. Checks in the spec's order: 6985, 6982, 9401.
    pub(super) fn debit(&self, cmd: &DebitCmd, state: &CardState) -> Result<Charge, StatusWord> {
        let chargeable = matches!(self.params.mode, Mode::Single | Mode::TimeCycle);
        if !chargeable || self.progress != Progress::Opened {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        let expected = s2(&self.ks, &self.params, cmd.sam_tx_seq, cmd.datetime);
        if !cmd.s2.verify(&expected) {
            return Err(StatusWord::SECURITY_NOT_SATISFIED);
        }
        let debited = Debited {
            sam_tx_seq: cmd.sam_tx_seq,
            datetime: cmd.datetime,
            units: Units(1),
            total: self.params.u,
        };
        self.charge(state, debited)
    }

    /// DEBIT TICK: unit `k = Units + 1 <= MaxUnits` of a debited mode 02 session.
    pub(super) fn tick(&self, cmd: &TickCmd, state: &CardState) -> Result<Charge, StatusWord> {
        let Progress::Debited(done) = self.progress else {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        };
        let next = done.units.0.checked_add(1);
        if self.params.mode != Mode::TimeCycle
            || next != Some(cmd.k.0)
            || cmd.k > self.params.max_units
        {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        if !cmd.s2k.verify(&s2k(&self.ks, self.params.nt, cmd.k)) {
            return Err(StatusWord::SECURITY_NOT_SATISFIED);
        }
        // The total of charged units never exceeds the balance the card started with,
        // so this cannot overflow; refusing the unit is the safe answer if it did.
        let total = done
            .total
            .checked_add(self.params.u)
            .ok_or(StatusWord::INSUFFICIENT_FUNDS)?;
        let debited = Debited {
            units: cmd.k,
            total,
            ..done
        };
        self.charge(state, debited)
    }

    /// Charges one more unit of `U` (9401 if the balance is short), with TAC and then S3
    /// (over the TAC, revision 2) over the cumulative `debited` units and total.
    fn charge(&self, state: &CardState, debited: Debited) -> Result<Charge, StatusWord> {
        let p = &self.params;
        let balance_after = state
            .balance
            .checked_sub(p.u)
            .ok_or(StatusWord::INSUFFICIENT_FUNDS)?;
        let mut record = TxRecord {
            nt: p.nt,
            sam_id: p.sam_id,
            sam_tx_seq: debited.sam_tx_seq,
            datetime: debited.datetime,
            mode: p.mode.p1(),
            u: p.u,
            units: debited.units,
            total: debited.total,
            balance_after,
            s3: Mac8([0; 8]),
            tac: Mac8([0; 8]),
        };
        let kt = proof_key(&state.k_tac, p.card_id, p.nt);
        record.tac = TacInput::of_record(p.card_id, &record, state.currency).mac(&kt);
        record.s3 = s3(
            &self.ks,
            p.nt,
            debited.units,
            debited.total,
            balance_after,
            &record.tac,
        );
        Ok(Charge {
            response: DebitResponse {
                balance_after,
                s3: record.s3,
                tac: record.tac,
            },
            record,
            debited,
        })
    }

    /// Records a persisted charge.
    pub(super) fn charged(&mut self, debited: Debited) {
        self.progress = Progress::Debited(debited);
    }
}

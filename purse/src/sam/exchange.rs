//! Steps 3 and 4 of spec section 5: completing a DEBIT or TICK from the card's answer,
//! issuing the ticks of a time-cycle when the shop's clock says they are due, stopping.

use super::error::SamError;
use super::tx::{Confirmed, Durable, SamTx, TxState};
use super::{Exchange, Sam};
use crate::commands::{DebitResponse, TickCmd};
use crate::crypto::Key;
use crate::macs::{s2k, s3};
use crate::types::{Amount, DateTime, Mode, SamTxSeq, Units};

/// What the SAM made of a DEBIT or TICK answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Completion {
    /// S3 verified: the card charged these cumulative units. `finished` is false while a
    /// time-cycle may still tick.
    Confirmed {
        units: Units,
        total: Amount,
        balance_after: Amount,
        finished: bool,
    },
    /// The card answered a status word: that command debited nothing. A time-cycle keeps
    /// its confirmed units (possibly 0) and ends.
    Voided { kept_units: Units },
    /// No usable answer: the transaction stays pending until recovery.
    Lost,
}

/// A tick to send: store `durable`, then send `command`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tick {
    pub durable: Durable,
    pub command: TickCmd,
}

impl Sam {
    fn open_tx(&self, seq: SamTxSeq) -> Result<SamTx, SamError> {
        self.open.get(&seq).cloned().ok_or(SamError::UnknownTx(seq))
    }

    pub(crate) fn tx_session_key(&self, tx: &SamTx) -> Option<Key> {
        self.session_key(tx.kv, tx.card_id, tx.nt, &tx.rnd_s, &tx.rnd_c)
    }

    /// Step 3: the answer to the DEBIT or TICK in flight. Returns what to store, if
    /// anything changed (store it before acknowledging the outcome).
    pub fn complete(
        &mut self,
        seq: SamTxSeq,
        answer: &Exchange,
    ) -> Result<(Completion, Option<Durable>), SamError> {
        let mut tx = self.open_tx(seq)?;
        let k = match (tx.state, tx.in_flight) {
            (TxState::Pending, Some(k)) => k,
            _ => return Err(SamError::NothingInFlight(seq)),
        };
        let r = match answer {
            Exchange::Failed => return Ok((Completion::Lost, None)),
            Exchange::Answered(r) => r,
        };
        if !r.sw.is_ok() {
            let kept_units = void(&mut tx);
            return Ok((Completion::Voided { kept_units }, Some(self.put(tx))));
        }
        // A 9000 we cannot verify may still have debited the card: treat it as lost.
        let Some(confirmed) = self.verify_debit(&tx, k, &r.data) else {
            return Ok((Completion::Lost, None));
        };
        let finished = tx.order.mode == Mode::Single || k >= tx.order.max_units;
        let done = Completion::Confirmed {
            units: confirmed.units,
            total: confirmed.total,
            balance_after: confirmed.balance_after,
            finished,
        };
        tx.confirmed = Some(confirmed);
        tx.in_flight = None;
        tx.state = if finished {
            TxState::Completed
        } else {
            TxState::Running
        };
        Ok((done, Some(self.put(tx))))
    }

    /// Checks a 9000 DEBIT/TICK answer for unit `k`: S3 over the cumulative values and
    /// the TAC (revision 2), and `BalanceAfter = Balance - Total`.
    fn verify_debit(&self, tx: &SamTx, k: Units, data: &[u8]) -> Option<Confirmed> {
        let resp = DebitResponse::parse(data).ok()?;
        let total = tx.order.unit_amount.checked_mul(k)?;
        if tx.balance.checked_sub(total)? != resp.balance_after {
            return None;
        }
        let ks = self.tx_session_key(tx)?;
        if !s3(&ks, tx.nt, k, total, resp.balance_after, &resp.tac).verify(&resp.s3) {
            return None;
        }
        Some(Confirmed {
            units: k,
            total,
            balance_after: resp.balance_after,
            s3: resp.s3,
            tac: resp.tac,
        })
    }

    /// Step 4: issue the next tick of a running time-cycle, when the shop's clock `now`
    /// says it is due. Store `durable` (unit k recorded) before sending the command.
    pub fn tick(&mut self, seq: SamTxSeq, now: DateTime) -> Result<Tick, SamError> {
        let mut tx = self.open_tx(seq)?;
        if tx.state != TxState::Running || tx.order.mode != Mode::TimeCycle {
            return Err(SamError::NotRunning(seq));
        }
        let units = tx.confirmed_units();
        let k = match units.0.checked_add(1) {
            Some(k) if k <= tx.order.max_units.0 => Units(k),
            _ => {
                return Err(SamError::CapReached {
                    seq,
                    max: tx.order.max_units,
                })
            }
        };
        let due_at = tx.due_at(k);
        if u64::from(now.0) < due_at {
            return Err(SamError::NotDue {
                seq,
                k,
                due_at,
                now: u64::from(now.0),
            });
        }
        let ks = self.tx_session_key(&tx).ok_or(SamError::UnknownTx(seq))?;
        let command = TickCmd {
            k,
            s2k: s2k(&ks, tx.nt, k),
        };
        tx.state = TxState::Pending;
        tx.in_flight = Some(k);
        Ok(Tick {
            durable: self.put(tx),
            command,
        })
    }

    /// Ends a running time-cycle at its last confirmed unit (the shopper pressed Stop,
    /// or the purse cannot pay the next unit).
    pub fn stop(&mut self, seq: SamTxSeq) -> Result<Durable, SamError> {
        let mut tx = self.open_tx(seq)?;
        if tx.state != TxState::Running {
            return Err(SamError::NotRunning(seq));
        }
        tx.state = TxState::Completed;
        Ok(self.put(tx))
    }
}

/// Void: nothing was debited by the command in flight. A time-cycle whose DEBIT was
/// confirmed keeps its confirmed units and ends. Returns the units kept.
pub(crate) fn void(tx: &mut SamTx) -> Units {
    tx.in_flight = None;
    tx.state = if tx.confirmed.is_some() {
        TxState::Completed
    } else {
        TxState::Voided
    };
    tx.confirmed_units()
}

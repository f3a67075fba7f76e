//! Step 5 of spec section 5: recovering the pending transactions of a card whose DEBIT
//! or TICK answer was lost, as a small state machine driven by the card's answers:
//! INITIALIZE mode 00, then one GET TRANSACTION PROOF per pending transaction that the
//! card's NT has passed, in SAM_TxSeq order.

use std::collections::VecDeque;

use super::exchange::void;
use super::tx::{Confirmed, Durable, SamTx, TxState};
use super::{Exchange, Sam};
use crate::commands::{CardCommand, InitializeCmd, TxRecord};
use crate::macs::s3;
use crate::types::{Amount, CardId, KeyVersion, Mode, Nt, Rnd, SamTxSeq, Units};

/// What recovery decided for one transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The card's record proves the debit: completed with the record's values (or the
    /// values already confirmed, when the record shows fewer units).
    Completed,
    /// Nothing was debited by the command in flight.
    Voided,
    /// Still unknown: left for a later recovery or the clearing office.
    Pending,
}

/// An ongoing recovery of one card.
#[derive(Debug)]
pub struct Recovery {
    card_id: CardId,
    initialize: InitializeCmd,
    queue: VecDeque<SamTxSeq>,
    /// The card's NT from the mode-00 INITIALIZE, once answered.
    n: Option<Nt>,
    /// The transaction whose record was asked for.
    current: Option<SamTxSeq>,
    outcomes: Vec<(SamTxSeq, Outcome)>,
}

/// The next thing to do: store `durable`, then send `command` or report `outcomes`.
#[derive(Debug)]
pub enum RecoveryStep {
    Send {
        command: CardCommand,
        durable: Vec<Durable>,
    },
    Done {
        outcomes: Vec<(SamTxSeq, Outcome)>,
        durable: Vec<Durable>,
    },
}

impl Sam {
    /// Starts recovering `card` (of key version `kv`, from its SELECT) with a fresh
    /// `RND_S`. `None` when nothing of this card is pending.
    pub fn start_recovery(
        &self,
        card: CardId,
        kv: KeyVersion,
        rnd_s: Rnd,
    ) -> Option<(Recovery, CardCommand)> {
        let queue: VecDeque<_> = self.pending_for(card).into();
        if queue.is_empty() {
            return None;
        }
        let initialize = InitializeCmd {
            mode: Mode::StatusOnly,
            kv,
            sam_id: self.keys.sam_id,
            rnd_s,
            u: Amount(0),
            max_units: Units(0),
        };
        let cmd = CardCommand::Initialize(initialize.clone());
        Some((
            Recovery {
                card_id: card,
                initialize,
                queue,
                n: None,
                current: None,
                outcomes: Vec::new(),
            },
            cmd,
        ))
    }

    /// Feeds the card's answer to the last command of the recovery.
    pub fn recovery_answer(&mut self, rec: &mut Recovery, answer: &Exchange) -> RecoveryStep {
        let mut durable = Vec::new();
        match (rec.n, rec.current.take()) {
            (None, _) => {
                let n = self
                    .verify_initialize(&rec.initialize, answer)
                    .ok()
                    .filter(|(resp, _)| resp.card_id == rec.card_id)
                    .map(|(resp, _)| resp.nt);
                match n {
                    Some(n) => rec.n = Some(n),
                    // A refused or unverifiable INITIALIZE tells nothing: all stay pending.
                    None => {
                        let rest: Vec<_> = rec.queue.drain(..).collect();
                        rec.outcomes
                            .extend(rest.into_iter().map(|s| (s, Outcome::Pending)));
                    }
                }
            }
            (Some(_), Some(seq)) => match self.judge_record(seq, answer) {
                Some((outcome, d)) => {
                    rec.outcomes.push((seq, outcome));
                    durable.push(d);
                }
                None => rec.outcomes.push((seq, Outcome::Pending)),
            },
            (Some(_), None) => {}
        }
        self.advance(rec, durable)
    }

    /// Decides the queued transactions the NT alone settles, up to the next one that
    /// needs its record read.
    fn advance(&mut self, rec: &mut Recovery, mut durable: Vec<Durable>) -> RecoveryStep {
        let Some(n) = rec.n else {
            return RecoveryStep::Done {
                outcomes: std::mem::take(&mut rec.outcomes),
                durable,
            };
        };
        while let Some(seq) = rec.queue.pop_front() {
            let Some(mut tx) = self
                .open
                .get(&seq)
                .cloned()
                .filter(|t| t.state == TxState::Pending)
            else {
                continue;
            };
            if n == tx.nt {
                void(&mut tx);
                rec.outcomes.push((seq, Outcome::Voided));
                durable.push(self.put(tx));
            } else if n > tx.nt {
                rec.current = Some(seq);
                return RecoveryStep::Send {
                    command: CardCommand::GetProof { nt: tx.nt },
                    durable,
                };
            } else {
                // The card is behind our NT (restored from an old state?): unknown.
                rec.outcomes.push((seq, Outcome::Pending));
            }
        }
        RecoveryStep::Done {
            outcomes: std::mem::take(&mut rec.outcomes),
            durable,
        }
    }

    /// Judges GET TRANSACTION PROOF's answer for a pending transaction. `None` leaves
    /// it pending.
    fn judge_record(&mut self, seq: SamTxSeq, answer: &Exchange) -> Option<(Outcome, Durable)> {
        let mut tx = self.open.get(&seq).cloned()?;
        let Exchange::Answered(r) = answer else {
            return None;
        };
        if !r.sw.is_ok() {
            return None;
        }
        let rec = TxRecord::parse(&r.data)
            .ok()
            .filter(|rec| rec.nt == tx.nt)?;
        if rec.sam_id != self.keys.sam_id || rec.sam_tx_seq != tx.sam_tx_seq {
            // Another SAM, or another transaction of ours, used this NT.
            void(&mut tx);
            return Some((Outcome::Voided, self.put(tx)));
        }
        let confirmed = self.verify_record(&tx, &rec)?;
        if confirmed.units >= tx.confirmed_units() {
            tx.confirmed = Some(confirmed);
        }
        tx.in_flight = None;
        tx.state = TxState::Completed;
        Some((Outcome::Completed, self.put(tx)))
    }

    fn verify_record(&self, tx: &SamTx, rec: &TxRecord) -> Option<Confirmed> {
        if tx.balance.checked_sub(rec.total)? != rec.balance_after {
            return None;
        }
        let ks = self.tx_session_key(tx)?;
        if !s3(
            &ks,
            rec.nt,
            rec.units,
            rec.total,
            rec.balance_after,
            &rec.tac,
        )
        .verify(&rec.s3)
        {
            return None;
        }
        Some(Confirmed {
            units: rec.units,
            total: rec.total,
            balance_after: rec.balance_after,
            s3: rec.s3,
            tac: rec.tac,
        })
    }
}

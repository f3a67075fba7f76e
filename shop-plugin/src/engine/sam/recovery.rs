//! The SAM's side of recovery (sam-protocol RECOVERY BEGIN / END): the SAM opens a
//! mode-00 session with the card for one pending transaction, the card's INITIALIZE
//! answer and, when its NT moved past the pending one, its GET TRANSACTION PROOF answer
//! go back to the SAM, which decides: completed (counted, its record and tag stored),
//! not debited, or still pending.

use purse::commands::{CardCommand, InitializeResponse};
use purse::sam::Outcome as Decided;
use purse::{CardId, KeyVersion, SamTxSeq};

use super::{initialize_apdu, sam_error};
use crate::engine::{ApiError, Engine};
use crate::payment::{Failure, Payment};
use crate::sam::Outcome;
use crate::store::sam_rows::{self, SamSlot};
use crate::store::{rows, Op};

/// One pending transaction being recovered.
pub struct CardRun {
    slot: SamSlot,
    rec_ctx: Vec<u8>,
    /// The card's mode-00 INITIALIZE answer data, once it came.
    init_resp: Option<Vec<u8>>,
}

/// What one recovery step produced.
pub(crate) struct CardStep {
    /// The next card command (hex), or `None` when the run is done.
    pub command: Option<String>,
    pub outcomes: Vec<(SamTxSeq, Decided)>,
    pub ops: Vec<Op>,
}

impl Engine {
    /// RECOVERY BEGIN for payment `payment_id`'s open transaction on `card_id`, on the
    /// SAM it began on: the run and the INITIALIZE (mode 00) for the card.
    pub(crate) async fn card_start_recovery(
        &self,
        payment_id: &str,
        card_id: CardId,
        kv: KeyVersion,
    ) -> Result<(CardRun, Vec<u8>), ApiError> {
        let nothing = || {
            ApiError::new(
                404,
                "nothing_to_recover",
                "this payment has no card transaction waiting for recovery here",
            )
        };
        let id = payment_id.to_string();
        let slot = self
            .store
            .read(move |c| sam_rows::load_slot(c, &id))
            .await
            .map_err(|_| ApiError::unavailable())?
            .filter(|s| s.open && s.card_id == Some(card_id) && s.sam_tx_seq.is_some())
            .ok_or_else(nothing)?;
        // Only a card command in flight can have a lost answer to recover.
        if self.load(payment_id).await?.pending_command.is_none() {
            return Err(nothing());
        }
        let card = self.sam_of(slot.sam_id)?;
        let begun = self
            .with_sams(|| card.noted(card.lock().recovery_begin(&slot.ctx)))
            .map_err(|e| sam_error(&e))?;
        let command = initialize_apdu(0x00, kv, &begun.init_data);
        Ok((
            CardRun {
                slot,
                rec_ctx: begun.ctx,
                init_resp: None,
            },
            command,
        ))
    }

    /// The card's answer to the run's last command: the next command, or the SAM's
    /// decision and its writes (to be queued while the SAM's lock is held: the caller
    /// submits them at once).
    pub(crate) fn card_recovery_step(
        &self,
        run: &mut CardRun,
        answer: Option<&[u8]>,
        payments: &mut [Payment],
        now: i64,
    ) -> Result<CardStep, ApiError> {
        let seq = run.slot.sam_tx_seq.unwrap_or(SamTxSeq(0));
        let pending = || CardStep {
            command: None,
            outcomes: vec![(seq, Decided::Pending)],
            ops: Vec::new(),
        };
        let proof: Vec<u8> = match &run.init_resp {
            None => {
                let Some(resp) = answer.and_then(ok_data) else {
                    return Ok(pending());
                };
                let Ok(init) = InitializeResponse::parse(resp) else {
                    return Ok(pending());
                };
                run.init_resp = Some(resp.to_vec());
                match run.slot.nt {
                    Some(nt) if init.nt > nt => {
                        let command = CardCommand::GetProof { nt }.encode();
                        return Ok(CardStep {
                            command: Some(hex::encode(command)),
                            outcomes: Vec::new(),
                            ops: Vec::new(),
                        });
                    }
                    _ => Vec::new(),
                }
            }
            // The whole GET TRANSACTION PROOF answer (a status word included).
            Some(_) => answer.map(<[u8]>::to_vec).unwrap_or_default(),
        };
        let init_resp = run.init_resp.clone().unwrap_or_default();
        let card = self.sam_of(run.slot.sam_id)?;
        let mut sam = card.lock();
        let outcome = card
            .noted(sam.recovery_end(&init_resp, &proof, &run.rec_ctx))
            .map_err(|e| sam_error(&e))?;
        let decided = match &outcome {
            Outcome::Completed(_) => Decided::Completed,
            Outcome::Nothing => Decided::Voided,
            Outcome::Running(_) | Outcome::Pending => return Ok(pending()),
        };
        let mut ops = Vec::new();
        if let Some(p) = payments.iter_mut().find(|p| p.id == run.slot.payment_id) {
            p.updated_at = now;
            let kind = self.card_final(p, &mut run.slot, &outcome, &mut ops, || Failure {
                code: "not_debited".into(),
                message: "recovery found that the card was not debited; nothing was charged".into(),
            })?;
            ops.push(rows::put_payment(p));
            ops.push(self.event(p, kind));
        }
        Ok(CardStep {
            command: None,
            outcomes: vec![(seq, decided)],
            ops,
        })
    }
}

/// The data of a 9000 answer.
fn ok_data(a: &[u8]) -> Option<&[u8]> {
    let n = a.len().checked_sub(2)?;
    (a[n..] == [0x90, 0x00]).then_some(&a[..n])
}

//! The SAM commands of the shopper's steps: AUTHORIZE with the card's INITIALIZE answer,
//! COMPLETE with its DEBIT or TICK answer, TICK when a unit is due, STOP. Each step's
//! new context, record and payment are queued under the SAM's lock in one transaction.

use purse::commands::{DebitResponse, InitializeResponse};
use purse::{Amount, DateTime, KeyVersion, Units};

use super::{no_context, sam_error};
use crate::engine::{ApiError, Engine};
use crate::payment::{Failure, Payment, Status};
use crate::sam::{Outcome, SamError, StopHow};
use crate::store::sam_rows::{self, SamSlot};
use crate::store::{rows, Op};

type Submitted = Result<crate::store::Committed, crate::store::StoreError>;

/// `80 54 00 00 10 DebitData 00` / `80 56 00 00 0A TickData 00`.
fn card_command(ins: u8, data: &[u8]) -> String {
    let mut a = vec![0x80, ins, 0x00, 0x00, data.len() as u8];
    a.extend_from_slice(data);
    a.push(0);
    hex::encode(a)
}

/// The card's answer bytes: data and SW.
fn split(answer: &[u8]) -> (&[u8], u16) {
    let n = answer.len().saturating_sub(2);
    let sw = match answer.get(n..) {
        Some([a, b]) => u16::from_be_bytes([*a, *b]),
        _ => 0,
    };
    (&answer[..n], sw)
}

fn refusal(sw: u16, init: &InitializeResponse, price: Amount) -> ApiError {
    match sw {
        0x9401 => ApiError::new(
            402,
            "insufficient_funds",
            format!(
                "the card holds {} but the price is {}",
                init.balance.0, price.0
            ),
        )
        .with(serde_json::json!({ "balance": init.balance.0, "price": price.0 })),
        0x6A81 => ApiError::new(
            422,
            "wrong_currency",
            format!(
                "the card holds {}; this shop takes another currency",
                init.currency
            ),
        ),
        0x6A88 => ApiError::new(
            422,
            "card_not_accepted",
            "cards of this key version are not accepted here",
        ),
        _ => invalid_answer(),
    }
}

fn invalid_answer() -> ApiError {
    ApiError::new(
        422,
        "card_answer_invalid",
        "the card's answer does not verify: it did not come unaltered from a genuine card",
    )
}

impl Engine {
    /// AUTHORIZE: on success the payment is authorized with the DEBIT in flight; the
    /// writes are queued (S2 leaves only once they are durable).
    pub(crate) fn card_authorize(
        &self,
        p: &mut Payment,
        slot: Option<SamSlot>,
        kv: u8,
        answer: &str,
        now: i64,
    ) -> Result<Submitted, ApiError> {
        let bytes = hex::decode(answer)
            .map_err(|_| ApiError::bad_request("invalid_apdu", "the card answer is not hex"))?;
        let (data, sw) = split(&bytes);
        if sw != 0x9000 {
            return Err(ApiError::new(
                422,
                "card_refused",
                format!("the card refused to start the payment: {sw:04X}"),
            ));
        }
        let init = InitializeResponse::parse(data).map_err(|_| invalid_answer())?;
        let mut slot = slot.ok_or_else(no_context)?;
        let card = self.sam_of(slot.sam_id)?;
        let mut sam = card.lock();
        let auth = card.noted(sam.authorize(KeyVersion(kv), DateTime(now as u32), data, &slot.ctx));
        let auth = match auth {
            Ok(a) => a,
            Err(SamError::Status(sw)) if sw.0 == 0x6985 || sw.0 == 0x6A83 => {
                // This begin context was used or has expired: the next try begins anew.
                return Err(ApiError::new(
                    409,
                    "payment_retry",
                    "the security module's session for this payment is spent; start again",
                ));
            }
            Err(SamError::Status(sw)) => return Err(refusal(sw.0, &init, p.order.unit_amount)),
            Err(e) => return Err(sam_error(&e)),
        };
        slot.ctx = auth.ctx;
        slot.sam_tx_seq = Some(auth.sam_tx_seq);
        slot.card_id = Some(init.card_id);
        slot.nt = Some(init.nt);
        slot.kv = Some(KeyVersion(kv));
        slot.authorized_at = Some(now);
        slot.open = true;
        p.status = Status::Authorized;
        p.sam_tx_seq = Some(auth.sam_tx_seq);
        p.card_id = Some(init.card_id);
        p.pending_command = Some(card_command(0x54, &auth.debit_data));
        p.init_answer = Some(answer.to_string());
        p.updated_at = now;
        let ops = vec![
            sam_rows::put_slot(&slot),
            rows::put_payment(p),
            self.event(p, "payment.authorized"),
        ];
        Ok(self.store.submit(ops))
    }

    /// The writes of a final transaction: the record and tag (if counted), the slot
    /// closed, the payment succeeded or failed.
    pub(super) fn card_final(
        &self,
        p: &mut Payment,
        slot: &mut SamSlot,
        outcome: &Outcome,
        ops: &mut Vec<Op>,
        declined: impl FnOnce() -> Failure,
    ) -> Result<&'static str, ApiError> {
        slot.open = false;
        p.pending_command = None;
        p.next_due_at = None;
        p.recovery_required = false;
        let kind = match outcome {
            Outcome::Completed(c) => {
                let r = c.tx_record().map_err(|e| sam_error(&e.into()))?;
                p.units = r.units;
                p.total = r.total;
                p.balance_after = Some(r.balance_after);
                p.status = Status::Succeeded;
                ops.push(sam_rows::put_record(&p.id, slot.sam_id, c));
                "payment.succeeded"
            }
            _ => {
                p.status = Status::Failed;
                p.failure = Some(declined());
                "payment.failed"
            }
        };
        ops.push(sam_rows::put_slot(slot));
        Ok(kind)
    }

    /// COMPLETE the DEBIT or TICK in flight with the card's answer.
    pub(crate) fn card_complete(
        &self,
        p: &mut Payment,
        slot: Option<SamSlot>,
        answer: &super::super::checkout::Answer,
    ) -> Result<crate::store::Committed, ApiError> {
        let now = self.now();
        // No answer, or one that does not verify: the card may or may not have debited;
        // only recovery decides.
        let lost = |p: &mut Payment| {
            p.recovery_required = true;
            p.updated_at = now;
            self.store
                .submit(vec![rows::put_payment(p)])
                .map_err(|_| ApiError::unavailable())
        };
        let Some(hex_answer) = answer else {
            return lost(p);
        };
        let bytes = hex::decode(hex_answer)
            .map_err(|_| ApiError::bad_request("invalid_apdu", "the card answer is not hex"))?;
        let mut slot = slot.ok_or_else(no_context)?;
        let card = self.sam_of(slot.sam_id)?;
        let mut sam = card.lock();
        let outcome = match card.noted(sam.complete(&bytes, &slot.ctx)) {
            Ok(o) => o,
            Err(SamError::Status(sw)) if sw.0 == 0x6982 || sw.0 == 0x6A80 => return lost(p),
            Err(e) => return Err(sam_error(&e)),
        };
        p.updated_at = now;
        p.last_answer = answer.clone();
        let mut ops = Vec::new();
        let kind = match outcome {
            Outcome::Running(ctx) => {
                let (data, _) = split(&bytes);
                let confirmed = DebitResponse::parse(data).map(|d| d.balance_after).ok();
                p.units = Units(p.units.0.saturating_add(1));
                p.total = Amount(p.order.unit_amount.0.saturating_mul(u32::from(p.units.0)));
                p.balance_after = confirmed;
                p.pending_command = None;
                p.recovery_required = false;
                slot.ctx = ctx;
                let empty = confirmed.is_some_and(|b| b < p.order.unit_amount);
                if empty {
                    // A purse that cannot pay the next unit: the time-cycle ends here.
                    let o = sam
                        .stop(StopHow::Running, &slot.ctx)
                        .map_err(|e| sam_error(&e))?;
                    self.card_final(p, &mut slot, &o, &mut ops, declined)?
                } else {
                    if p.units.0 == 1 {
                        // Counted under the SAM's lock (see `card_close`).
                        self.runs_started
                            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    p.status = Status::Running;
                    p.next_due_at = slot
                        .authorized_at
                        .map(|t| t + i64::from(p.units.0) * i64::from(p.order.period_secs));
                    ops.push(sam_rows::put_slot(&slot));
                    if p.units.0 == 1 {
                        "payment.running"
                    } else {
                        "payment.unit_charged"
                    }
                }
            }
            o @ (Outcome::Completed(_) | Outcome::Nothing) => {
                let (_, sw) = split(&bytes);
                self.card_final(p, &mut slot, &o, &mut ops, || Failure {
                    code: "card_declined".into(),
                    message: format!("the card refused the debit ({sw:04X}); nothing was charged"),
                })?
            }
            Outcome::Pending => return Err(sam_error(&SamError::Malformed("pending".into()))),
        };
        ops.push(rows::put_payment(p));
        ops.push(self.event(p, kind));
        let committed = self.store.submit(ops).map_err(|_| ApiError::unavailable());
        drop(sam);
        committed
    }

    /// TICK when the next unit is due: `None` when it is not due yet.
    pub(crate) fn card_tick(
        &self,
        p: &mut Payment,
        now: i64,
    ) -> Result<Option<Submitted>, ApiError> {
        let mut slot = self.load_slot(&p.id)?;
        let card = self.sam_of(slot.sam_id)?;
        let mut sam = card.lock();
        match card.noted(sam.tick(DateTime(now as u32), &slot.ctx)) {
            Ok(t) => {
                slot.ctx = t.ctx;
                p.pending_command = Some(card_command(0x56, &t.tick_data));
                p.updated_at = now;
                Ok(Some(self.store.submit(vec![
                    sam_rows::put_slot(&slot),
                    rows::put_payment(p),
                ])))
            }
            Err(SamError::Status(sw)) if sw.0 == 0x6986 => Ok(None),
            // At its cap, or across a close: the time-cycle ends at its confirmed units.
            Err(SamError::Status(sw)) if sw.0 == 0x6985 => {
                let o = sam
                    .stop(StopHow::Running, &slot.ctx)
                    .map_err(|e| sam_error(&e))?;
                p.updated_at = now;
                let mut ops = Vec::new();
                let kind = self.card_final(p, &mut slot, &o, &mut ops, declined)?;
                ops.push(rows::put_payment(p));
                ops.push(self.event(p, kind));
                Ok(Some(self.store.submit(ops)))
            }
            Err(e) => Err(sam_error(&e)),
        }
    }

    /// STOP a running time-cycle at its confirmed units.
    pub(crate) fn card_stop(&self, p: &mut Payment) -> Result<Submitted, ApiError> {
        let mut slot = self.load_slot(&p.id)?;
        let card = self.sam_of(slot.sam_id)?;
        let mut sam = card.lock();
        let o = card
            .noted(sam.stop(StopHow::Running, &slot.ctx))
            .map_err(|e| sam_error(&e))?;
        p.updated_at = self.now();
        let mut ops = Vec::new();
        let kind = self.card_final(p, &mut slot, &o, &mut ops, declined)?;
        ops.push(rows::put_payment(p));
        ops.push(self.event(p, kind));
        Ok(self.store.submit(ops))
    }
}

fn declined() -> Failure {
    Failure {
        code: "not_debited".into(),
        message: "the card was not debited; nothing was charged".into(),
    }
}

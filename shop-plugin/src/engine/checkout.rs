//! The shopper's steps of a payment: the INITIALIZE answer in (DEBIT out), the DEBIT or
//! TICK answer in, ticks of a time-cycle when the shop's clock says they are due, Stop.
//! The same answer sent twice gets the same result; a different one gets a conflict.

use purse::commands::InitializeResponse;
use purse::sam::Exchange;
use purse::Mode;
use serde_json::{json, Value};

use super::{ApiError, Engine};
use crate::payment::{Payment, Status};
use crate::store::rows;
use crate::store::sam_rows::SamSlot;

/// A card's answer as the shopper's side reports it: the response APDU in hex, or
/// `None` when the exchange failed (card pulled, no answer).
pub type Answer = Option<String>;

fn parse_answer(a: &Answer) -> Result<Exchange, ApiError> {
    match a {
        None => Ok(Exchange::Failed),
        Some(h) => {
            let b = hex::decode(h)
                .map_err(|_| ApiError::bad_request("invalid_apdu", "the card answer is not hex"))?;
            if b.len() < 2 || b.len() > 258 {
                return Err(ApiError::bad_request(
                    "invalid_apdu",
                    "a card answer is 2 to 258 bytes",
                ));
            }
            Ok(Exchange::from_bytes(Some(&b)))
        }
    }
}

/// The result of a shopper step: the payment and the next command for the card, if any.
pub struct Step {
    pub payment: Payment,
    pub command: Option<String>,
}

impl Step {
    pub fn body(&self, engine: &Engine) -> Value {
        let mut v = self
            .payment
            .shopper_view(engine.initialize_commands(&self.payment));
        v["command"] = json!(self.command);
        v
    }
}

impl Engine {
    /// Loads a payment for a shopper request, with its place on its SAM (one read), and
    /// checks its client secret.
    async fn shopper_payment(
        &self,
        id: &str,
        secret: &str,
    ) -> Result<(Payment, Option<SamSlot>), ApiError> {
        self.check_alive()?;
        let (p, slot) = self
            .store
            .lookup(|c| rows::load_payment_with_slot(c, id))
            .map_err(|_| ApiError::unavailable())?
            .ok_or_else(|| ApiError::not_found("payment"))?;
        self.check_secret(&p, secret)?;
        let p = self.expire_if_due(p).await?;
        if p.status == Status::Expired {
            return Err(ApiError::new(
                410,
                "payment_expired",
                "this payment expired before a card paid it; ask the shop for a new one",
            ));
        }
        Ok((p, slot))
    }

    /// The card answered INITIALIZE: authorize and hand out the DEBIT.
    pub async fn initialize(
        &self,
        id: &str,
        secret: &str,
        kv: u8,
        answer: String,
    ) -> Result<Step, ApiError> {
        let _g = self.lock(id).await;
        let (mut p, slot) = self.shopper_payment(id, secret).await?;
        if p.status != Status::Created {
            if p.init_answer.as_deref() == Some(answer.as_str()) {
                let command = p.pending_command.clone();
                return Ok(Step {
                    payment: p,
                    command,
                });
            }
            return Err(ApiError::conflict(
                "payment_not_waiting",
                format!(
                    "the payment is {}; it takes no new INITIALIZE answer",
                    p.status.as_str()
                ),
            ));
        }
        let exchange = parse_answer(&Some(answer.clone()))?;
        let now = self.now();
        let blocked = self.hotlisted(&exchange);
        let committed = if let Some(card) = blocked {
            Err(card_blocked(card))
        } else {
            self.with_sams(|| self.card_authorize(&mut p, slot, kv, &answer, now))
        };
        match committed {
            Ok(c) => {
                self.durable(c).await?;
                let command = p.pending_command.clone();
                Ok(Step {
                    payment: p,
                    command,
                })
            }
            // The SAM did not answer (or the database did not): nothing was decided, and
            // the same card answer may be sent again once it is back.
            Err(e) if e.status >= 500 => Err(e),
            Err(refusal) => {
                // A fresh RND_S for the next attempt (another card, or more funds).
                let (sam_id, rnd, slot) = self.with_sams(|| self.card_begin(&p.id, &p.order))?;
                p.rnd_s = rnd;
                p.sam_id = Some(sam_id);
                p.updated_at = now;
                let ops = vec![
                    crate::store::sam_rows::put_slot(&slot),
                    rows::put_payment(&p),
                ];
                self.durable(self.store.submit(ops)).await?;
                Err(refusal)
            }
        }
    }

    /// The card of an INITIALIZE answer, when the held hotlist names it. Checked on the
    /// card ID as the card claims it, before the SAM looks at the answer: a card that
    /// claims another ID to escape the list fails S1 instead.
    fn hotlisted(&self, exchange: &Exchange) -> Option<purse::CardId> {
        let Exchange::Answered(r) = exchange else {
            return None;
        };
        let card = InitializeResponse::parse(&r.data).ok()?.card_id;
        self.hotlist()
            .is_some_and(|h| h.contains(&card))
            .then_some(card)
    }

    /// Completes the DEBIT or TICK in flight with the card's answer and queues the
    /// writes while the SAM lock is held (the database must see SAM records in the
    /// SAM's order: a close running next must not be overwritten by an older record).
    fn complete_in_flight(
        &self,
        p: &mut Payment,
        slot: Option<SamSlot>,
        answer: &Answer,
    ) -> Result<crate::store::Committed, ApiError> {
        if p.sam_tx_seq.is_none() {
            return Err(ApiError::conflict(
                "nothing_in_flight",
                "no card command of this payment awaits an answer",
            ));
        }
        let exchange = parse_answer(answer)?;
        let is_ok = matches!(&exchange, Exchange::Answered(r) if r.sw.is_ok());
        if p.recovery_required && !is_ok {
            return Err(ApiError::conflict(
                "recovery_required",
                "an answer of this payment was lost; run recovery with the card instead",
            ));
        }
        self.with_sams(|| self.card_complete(p, slot, answer))
    }

    /// The card's answer to the DEBIT or TICK in flight.
    pub async fn answer(&self, id: &str, secret: &str, answer: Answer) -> Result<Step, ApiError> {
        let _g = self.lock(id).await;
        let (mut p, slot) = self.shopper_payment(id, secret).await?;
        // The answer already taken, delivered again (its reply was lost): the same result,
        // even when the next tick is already in flight.
        if is_replay(&p, &answer) {
            return Ok(Step {
                payment: p,
                command: None,
            });
        }
        if p.pending_command.is_none() {
            return Err(ApiError::conflict(
                "nothing_in_flight",
                format!(
                    "the payment is {} and awaits no card answer",
                    p.status.as_str()
                ),
            ));
        }
        self.commit_step(&mut p, slot, answer).await?;
        Ok(Step {
            payment: p,
            command: None,
        })
    }

    /// Completes the command in flight (if an answer is given) and makes it durable.
    async fn commit_step(
        &self,
        p: &mut Payment,
        slot: Option<SamSlot>,
        answer: Answer,
    ) -> Result<(), ApiError> {
        let committed = self.complete_in_flight(p, slot, &answer)?;
        self.durable(Ok(committed)).await
    }

    /// Time-cycle: complete the previous unit (if its answer is given), then issue the
    /// next tick when the shop's clock says it is due. One request per tick.
    pub async fn tick(
        &self,
        id: &str,
        secret: &str,
        answer: Option<Answer>,
    ) -> Result<Step, ApiError> {
        let _g = self.lock(id).await;
        let (mut p, slot) = self.shopper_payment(id, secret).await?;
        if p.order.mode != Mode::TimeCycle {
            return Err(ApiError::conflict(
                "not_time_cycle",
                "only a time-cycle payment ticks",
            ));
        }
        if p.pending_command.is_some() {
            match answer {
                Some(a) if !is_replay(&p, &a) => self.commit_step(&mut p, slot, a).await?,
                // The client lost our reply (and may send the answer it carried again):
                // the same command again.
                _ => {
                    let command = p.pending_command.clone();
                    return Ok(Step {
                        payment: p,
                        command,
                    });
                }
            }
        }
        if p.status != Status::Running || p.pending_command.is_some() {
            return Ok(Step {
                payment: p,
                command: None,
            });
        }
        if p.sam_tx_seq.is_none() {
            return Err(ApiError::conflict(
                "nothing_in_flight",
                "the payment has no SAM transaction",
            ));
        }
        let committed = self.with_sams(|| self.card_tick(&mut p, self.now()))?;
        if let Some(c) = committed {
            self.durable(c).await?;
        }
        let command = p.pending_command.clone();
        Ok(Step {
            payment: p,
            command,
        })
    }

    /// Time-cycle: the shopper stops. The last unit's answer may come with it.
    pub async fn stop(
        &self,
        id: &str,
        secret: &str,
        answer: Option<Answer>,
    ) -> Result<Step, ApiError> {
        let _g = self.lock(id).await;
        let (mut p, slot) = self.shopper_payment(id, secret).await?;
        if let (Some(a), Some(_)) = (answer, &p.pending_command) {
            // An answer already taken does not answer the command in flight now.
            if !is_replay(&p, &a) {
                self.commit_step(&mut p, slot, a).await?;
            }
        }
        match p.status {
            Status::Succeeded => {
                return Ok(Step {
                    payment: p,
                    command: None,
                })
            }
            Status::Running if p.pending_command.is_none() => {}
            Status::Running | Status::Authorized => {
                return Err(ApiError::conflict(
                    "answer_required",
                    "a card command is in flight: send its answer (or run recovery) to stop",
                ))
            }
            s => {
                return Err(ApiError::conflict(
                    "not_running",
                    format!("a payment that is {} cannot be stopped", s.as_str()),
                ))
            }
        }
        if p.sam_tx_seq.is_none() {
            return Err(ApiError::conflict("not_running", "no SAM transaction"));
        }
        let committed = self.with_sams(|| self.card_stop(&mut p))?;
        self.durable(committed).await?;
        Ok(Step {
            payment: p,
            command: None,
        })
    }
}

/// Whether `answer` is the card answer this payment already took (a redelivery).
fn is_replay(p: &Payment, answer: &Answer) -> bool {
    answer.is_some() && p.last_answer == *answer
}

/// The shopper-facing error of a refused INITIALIZE (nothing was charged).
fn card_blocked(card: purse::CardId) -> ApiError {
    ApiError::new(
        422,
        "card_blocked",
        format!(
            "card {} is on the clearing office's hotlist (suspected clone); it cannot pay here, \
             and nothing was charged",
            card.to_hex()
        ),
    )
}

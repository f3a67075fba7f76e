//! The shopper's steps of a payment: the INITIALIZE answer in (DEBIT out), the DEBIT or
//! TICK answer in, ticks of a time-cycle when the shop's clock says they are due, Stop.
//! The same answer sent twice gets the same result; a different one gets a conflict.

use purse::commands::{CardCommand, InitializeResponse};
use purse::sam::{Completion, Exchange, SamError};
use purse::{DateTime, KeyVersion, Mode, Units};
use serde_json::{json, Value};

use super::{fresh_rnd, ApiError, Engine};
use crate::payment::{Failure, Payment, Status};
use crate::store::rows;
use crate::store::Op;

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
    /// Loads a payment for a shopper request and checks its client secret.
    async fn shopper_payment(&self, id: &str, secret: &str) -> Result<Payment, ApiError> {
        self.check_alive()?;
        let p = self.load(id).await?;
        self.check_secret(&p, secret)?;
        let p = self.expire_if_due(p).await?;
        if p.status == Status::Expired {
            return Err(ApiError::new(
                410,
                "payment_expired",
                "this payment expired before a card paid it; ask the shop for a new one",
            ));
        }
        Ok(p)
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
        let mut p = self.shopper_payment(id, secret).await?;
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
        } else if let Some(card) = self.card() {
            self.card_authorize(card, &mut p, kv, &answer, now)
        } else {
            let mut sam = self.sam()?;
            let begun = sam
                .begin(p.order, p.rnd_s)
                .map_err(|e| ApiError::bad_request("invalid_order", e.to_string()))?;
            match sam.authorize(&begun, KeyVersion(kv), &exchange, DateTime(now as u32)) {
                Ok(auth) => {
                    p.status = Status::Authorized;
                    p.sam_tx_seq = Some(auth.durable.tx.sam_tx_seq);
                    p.card_id = Some(auth.durable.tx.card_id);
                    p.pending_command = Some(hex::encode(CardCommand::Debit(auth.debit).encode()));
                    p.init_answer = Some(answer);
                    p.updated_at = now;
                    let ops = vec![
                        rows::put_sam(&auth.durable),
                        rows::put_payment(&p),
                        self.event(&p, "payment.authorized"),
                    ];
                    Ok(self.store.submit(ops))
                }
                Err(refusal) => Err(refusal_error(&refusal)),
            }
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
            Err(refusal) => {
                // A fresh RND_S for the next attempt (another card, or more funds).
                let mut ops = Vec::new();
                if let Some(card) = self.card() {
                    let (rnd, slot) = self.card_begin(card, &p.id, &p.order)?;
                    p.rnd_s = rnd;
                    ops.push(crate::store::sam_rows::put_slot(&slot));
                } else {
                    p.rnd_s = fresh_rnd();
                }
                p.updated_at = now;
                ops.push(rows::put_payment(&p));
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
        answer: &Answer,
    ) -> Result<crate::store::Committed, ApiError> {
        let Some(seq) = p.sam_tx_seq else {
            return Err(ApiError::conflict(
                "nothing_in_flight",
                "no card command of this payment awaits an answer",
            ));
        };
        let exchange = parse_answer(answer)?;
        let is_ok = matches!(&exchange, Exchange::Answered(r) if r.sw.is_ok());
        if p.recovery_required && !is_ok {
            return Err(ApiError::conflict(
                "recovery_required",
                "an answer of this payment was lost; run recovery with the card instead",
            ));
        }
        if let Some(card) = self.card() {
            return self.card_complete(card, p, answer);
        }
        let now = self.now();
        let mut sam = self.sam()?;
        let (completion, durable) = sam.complete(seq, &exchange).map_err(sam_conflict)?;
        let mut ops = Vec::new();
        if let Some(d) = &durable {
            ops.push(rows::put_sam(d));
        }
        p.updated_at = now;
        let kind = match completion {
            Completion::Confirmed {
                units,
                total,
                balance_after,
                finished,
            } => {
                p.units = units;
                p.total = total;
                p.balance_after = Some(balance_after);
                p.pending_command = None;
                p.recovery_required = false;
                p.last_answer = answer.clone();
                // Stop a time-cycle the purse can no longer pay.
                let empty = !finished && balance_after < p.order.unit_amount;
                if finished || empty {
                    if empty {
                        if let Ok(d) = sam.stop(seq) {
                            ops.push(rows::put_sam(&d));
                        }
                    }
                    p.status = Status::Succeeded;
                    p.next_due_at = None;
                    "payment.succeeded"
                } else {
                    p.status = Status::Running;
                    p.next_due_at = sam
                        .tx(seq)
                        .map(|t| t.due_at(Units(units.0.saturating_add(1))) as i64);
                    if units.0 == 1 {
                        "payment.running"
                    } else {
                        "payment.unit_charged"
                    }
                }
            }
            Completion::Voided { kept_units } => {
                p.pending_command = None;
                p.last_answer = answer.clone();
                p.next_due_at = None;
                if kept_units.0 == 0 {
                    p.status = Status::Failed;
                    let sw = match &exchange {
                        Exchange::Answered(r) => r.sw.to_string(),
                        Exchange::Failed => String::new(),
                    };
                    p.failure = Some(Failure {
                        code: "card_declined".into(),
                        message: format!("the card refused the debit ({sw}); nothing was charged"),
                    });
                    "payment.failed"
                } else {
                    p.status = Status::Succeeded;
                    "payment.succeeded"
                }
            }
            Completion::Lost => {
                p.recovery_required = true;
                ops.push(rows::put_payment(p));
                return self.store.submit(ops).map_err(|_| ApiError::unavailable());
            }
        };
        ops.push(rows::put_payment(p));
        ops.push(self.event(p, kind));
        let committed = self.store.submit(ops).map_err(|_| ApiError::unavailable());
        drop(sam);
        committed
    }

    /// The card's answer to the DEBIT or TICK in flight.
    pub async fn answer(&self, id: &str, secret: &str, answer: Answer) -> Result<Step, ApiError> {
        let _g = self.lock(id).await;
        let mut p = self.shopper_payment(id, secret).await?;
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
        self.commit_step(&mut p, answer).await?;
        Ok(Step {
            payment: p,
            command: None,
        })
    }

    /// Completes the command in flight (if an answer is given) and makes it durable.
    async fn commit_step(&self, p: &mut Payment, answer: Answer) -> Result<(), ApiError> {
        let committed = self.complete_in_flight(p, &answer)?;
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
        let mut p = self.shopper_payment(id, secret).await?;
        if p.order.mode != Mode::TimeCycle {
            return Err(ApiError::conflict(
                "not_time_cycle",
                "only a time-cycle payment ticks",
            ));
        }
        if p.pending_command.is_some() {
            match answer {
                Some(a) if !is_replay(&p, &a) => self.commit_step(&mut p, a).await?,
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
        let Some(seq) = p.sam_tx_seq else {
            return Err(ApiError::conflict(
                "nothing_in_flight",
                "the payment has no SAM transaction",
            ));
        };
        let now = self.now();
        let committed = if let Some(card) = self.card() {
            self.card_tick(card, &mut p, now)?
        } else {
            let mut sam = self.sam()?;
            match sam.tick(seq, DateTime(now as u32)) {
                Ok(t) => {
                    p.pending_command = Some(hex::encode(CardCommand::Tick(t.command).encode()));
                    p.updated_at = now;
                    Some(
                        self.store
                            .submit(vec![rows::put_sam(&t.durable), rows::put_payment(&p)]),
                    )
                }
                Err(SamError::NotDue { .. }) => None,
                Err(SamError::CapReached { .. }) | Err(SamError::NotRunning(_)) => {
                    let d = sam.stop(seq).ok();
                    p.status = Status::Succeeded;
                    p.next_due_at = None;
                    p.updated_at = now;
                    let mut ops: Vec<Op> = d.iter().map(rows::put_sam).collect();
                    ops.push(rows::put_payment(&p));
                    ops.push(self.event(&p, "payment.succeeded"));
                    Some(self.store.submit(ops))
                }
                Err(e) => return Err(sam_conflict(e)),
            }
        };
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
        let mut p = self.shopper_payment(id, secret).await?;
        if let (Some(a), Some(_)) = (answer, &p.pending_command) {
            // An answer already taken does not answer the command in flight now.
            if !is_replay(&p, &a) {
                self.commit_step(&mut p, a).await?;
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
        let Some(seq) = p.sam_tx_seq else {
            return Err(ApiError::conflict("not_running", "no SAM transaction"));
        };
        let committed = if let Some(card) = self.card() {
            self.card_stop(card, &mut p)?
        } else {
            let mut sam = self.sam()?;
            let d = sam.stop(seq).map_err(sam_conflict)?;
            p.status = Status::Succeeded;
            p.next_due_at = None;
            p.updated_at = self.now();
            self.store.submit(vec![
                rows::put_sam(&d),
                rows::put_payment(&p),
                self.event(&p, "payment.succeeded"),
            ])
        };
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

fn sam_conflict(e: SamError) -> ApiError {
    ApiError::conflict("wrong_state", e.to_string())
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

fn refusal_error(r: &purse::sam::Refusal) -> ApiError {
    use purse::sam::Refusal::*;
    match r {
        InsufficientFunds { balance, price } => ApiError::new(
            402,
            "insufficient_funds",
            format!("the card holds {} but the price is {}", balance.0, price.0),
        )
        .with(json!({ "balance": balance.0, "price": price.0 })),
        WrongCurrency { card, sam } => ApiError::new(
            422,
            "wrong_currency",
            format!("the card holds {card}; this shop takes {sam}"),
        ),
        UnknownKeyVersion(kv) => ApiError::new(
            422,
            "card_not_accepted",
            format!("cards of key version {} are not accepted here", kv.0),
        ),
        CardStatus(sw) => ApiError::new(
            422,
            "card_refused",
            format!("the card refused to start the payment: {sw}"),
        ),
        NoAnswer | Malformed | BadS1 => ApiError::new(
            422,
            "card_answer_invalid",
            "the card's answer does not verify: it did not come unaltered from a genuine card",
        ),
        TxSeqExhausted => ApiError::new(
            503,
            "sam_exhausted",
            "this shop's security module can take no more payments",
        ),
    }
}

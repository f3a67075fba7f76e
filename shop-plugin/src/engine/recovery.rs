//! Recovery over HTTP (spec 5.5): the shopper's side starts it when a card with pending
//! transactions comes back; the SAM asks for INITIALIZE mode 00 and GET TRANSACTION PROOF,
//! one request per command. Every input is authenticated by the card's MACs, so the
//! endpoints need no client secret. Payments follow their transactions' outcomes.

use std::time::{Duration, Instant};

use purse::sam::{Outcome, Recovery, RecoveryStep, TxState};
use purse::{CardId, KeyVersion, SamTxSeq};
use serde_json::{json, Value};

use super::checkout::Answer;
use super::{fresh_rnd, random_hex, ApiError, Engine};
use crate::payment::{Failure, Status};
use crate::store::rows;
use crate::store::Op;

/// An unfinished recovery kept between requests (in memory: nothing durable happens
/// until a transaction is decided, and a lost run is simply started again).
pub struct RecoveryRun {
    kind: RunKind,
    card_id: CardId,
    /// The payments whose transactions this run may decide.
    payments: Vec<String>,
    started: Instant,
}

/// Whose recovery: the LEGACY in-memory SAM's, or the SAM card's.
enum RunKind {
    Legacy(Recovery),
    Card(super::card::CardRun),
}

/// How long an unfinished recovery is kept.
const RECOVERY_TTL: Duration = Duration::from_secs(120);

impl Engine {
    /// Starts recovering the pending transactions of `card`. Returns the run's id and
    /// the INITIALIZE (mode 00) for the card.
    pub async fn start_recovery(&self, card: CardId, kv: KeyVersion) -> Result<Value, ApiError> {
        self.check_alive()?;
        let (kind, command, payments) = if let Some(sam) = self.card() {
            let (run, command, payments) = self.card_start_recovery(sam, card, kv).await?;
            (RunKind::Card(run), command, payments)
        } else {
            let started = {
                let sam = self.sam()?;
                let pending = sam.pending_for(card);
                sam.start_recovery(card, kv, fresh_rnd())
                    .map(|(r, c)| (r, c, pending))
            };
            let Some((recovery, command, pending)) = started else {
                return Err(ApiError::new(
                    404,
                    "nothing_to_recover",
                    "this card has no payment waiting for recovery here",
                ));
            };
            let payments = self.payment_ids(pending).await?;
            (RunKind::Legacy(recovery), command.encode(), payments)
        };
        let id = format!("rec_{}", random_hex(12));
        let mut runs = self.recoveries.lock().unwrap_or_else(|e| e.into_inner());
        runs.retain(|_, r| r.started.elapsed() < RECOVERY_TTL);
        runs.insert(
            id.clone(),
            RecoveryRun {
                kind,
                card_id: card,
                payments,
                started: Instant::now(),
            },
        );
        Ok(
            json!({ "id": id, "object": "recovery", "card_id": card.to_hex(), "command": hex::encode(command), "done": false }),
        )
    }

    /// The card's answer to the recovery's last command.
    pub async fn recovery_answer(&self, id: &str, answer: Answer) -> Result<Value, ApiError> {
        self.check_alive()?;
        let exchange = match &answer {
            None => purse::sam::Exchange::Failed,
            Some(h) => {
                let b = hex::decode(h).map_err(|_| {
                    ApiError::bad_request("invalid_apdu", "the card answer is not hex")
                })?;
                purse::sam::Exchange::from_bytes(Some(&b))
            }
        };
        let mut run = {
            let mut runs = self.recoveries.lock().unwrap_or_else(|e| e.into_inner());
            runs.remove(id).ok_or_else(|| {
                ApiError::not_found("recovery (it may have finished or expired; start again)")
            })?
        };
        // Hold the locks of every payment the run may decide.
        let (guards, mut payments) = self.lock_all(run.payments.clone()).await?;
        let now = self.now();
        let recovery = match &mut run.kind {
            RunKind::Legacy(r) => r,
            RunKind::Card(card_run) => {
                let Some(sam) = self.card() else {
                    return Err(ApiError::unavailable());
                };
                let bytes = match &answer {
                    Some(h) => Some(hex::decode(h).map_err(|_| {
                        ApiError::bad_request("invalid_apdu", "the card answer is not hex")
                    })?),
                    None => None,
                };
                let step =
                    self.card_recovery_step(sam, card_run, bytes.as_deref(), &mut payments, now)?;
                let reply = json_reply(
                    id,
                    run.card_id,
                    step.command.as_deref(),
                    &step.outcomes,
                    &payments,
                );
                self.durable(self.store.submit(step.ops)).await?;
                if step.command.is_some() {
                    run.started = Instant::now();
                    let mut runs = self.recoveries.lock().unwrap_or_else(|e| e.into_inner());
                    runs.insert(id.to_string(), run);
                }
                drop(guards);
                return Ok(reply);
            }
        };
        let (reply, committed) = {
            let mut sam = self.sam()?;
            let step = sam.recovery_answer(recovery, &exchange);
            let (durable, reply, outcomes) = match step {
                RecoveryStep::Send { command, durable } => {
                    (durable, Some(hex::encode(command.encode())), Vec::new())
                }
                RecoveryStep::Done { outcomes, durable } => (durable, None, outcomes),
            };
            let mut ops: Vec<Op> = durable.iter().map(rows::put_sam).collect();
            for d in &durable {
                let Some(p) = payments
                    .iter_mut()
                    .find(|p| p.sam_tx_seq == Some(d.tx.sam_tx_seq))
                else {
                    continue;
                };
                p.updated_at = now;
                p.pending_command = None;
                p.recovery_required = false;
                p.next_due_at = None;
                let kind = match (d.tx.state, &d.tx.confirmed) {
                    (TxState::Completed, Some(c)) => {
                        p.units = c.units;
                        p.total = c.total;
                        p.balance_after = Some(c.balance_after);
                        p.status = Status::Succeeded;
                        "payment.succeeded"
                    }
                    _ => {
                        p.status = Status::Failed;
                        p.failure = Some(Failure {
                            code: "not_debited".into(),
                            message:
                                "recovery found that the card was not debited; nothing was charged"
                                    .into(),
                        });
                        "payment.failed"
                    }
                };
                ops.push(rows::put_payment(p));
                ops.push(self.event(p, kind));
            }
            (
                json_reply(id, run.card_id, reply.as_deref(), &outcomes, &payments),
                self.store.submit(ops),
            )
        };
        self.durable(committed).await?;
        if reply["done"] == json!(false) {
            run.started = Instant::now();
            let mut runs = self.recoveries.lock().unwrap_or_else(|e| e.into_inner());
            runs.insert(id.to_string(), run);
        }
        drop(guards);
        Ok(reply)
    }
}

fn json_reply(
    id: &str,
    card: CardId,
    command: Option<&str>,
    outcomes: &[(SamTxSeq, Outcome)],
    payments: &[crate::payment::Payment],
) -> Value {
    let outcomes: Vec<Value> = outcomes
        .iter()
        .map(|(seq, o)| {
            let pid = payments.iter().find(|p| p.sam_tx_seq == Some(*seq)).map(|p| p.id.clone());
            json!({
                "payment": pid,
                "outcome": match o { Outcome::Completed => "completed", Outcome::Voided => "voided", Outcome::Pending => "pending" },
            })
        })
        .collect();
    json!({
        "id": id,
        "object": "recovery",
        "card_id": card.to_hex(),
        "command": command,
        "done": command.is_none(),
        "outcomes": outcomes,
    })
}

//! Recovery over HTTP (spec 5.5): the shopper's side starts it for a payment whose card
//! answer was lost, when the card comes back; the SAM asks for INITIALIZE mode 00 and GET
//! TRANSACTION PROOF of that payment's NT, one request per command. Every input is authenticated by the card's MACs, so the
//! endpoints need no client secret. Payments follow their transactions' outcomes.

use std::time::{Duration, Instant};

use purse::sam::Outcome;
use purse::{CardId, KeyVersion, SamTxSeq};
use serde_json::{json, Value};

use super::checkout::Answer;
use super::{random_hex, ApiError, Engine};

/// An unfinished recovery kept between requests (in memory: nothing durable happens
/// until a transaction is decided, and a lost run is simply started again).
pub struct RecoveryRun {
    run: super::sam::CardRun,
    card_id: CardId,
    /// The payment whose transaction this run decides.
    payment: String,
    started: Instant,
}

/// How long an unfinished recovery is kept.
const RECOVERY_TTL: Duration = Duration::from_secs(120);

impl Engine {
    /// Starts recovering payment `payment_id`'s pending transaction on `card`. Returns
    /// the run's id and the INITIALIZE (mode 00) for the card.
    pub async fn start_recovery(
        &self,
        payment_id: &str,
        card: CardId,
        kv: KeyVersion,
    ) -> Result<Value, ApiError> {
        self.check_alive()?;
        let (run, command) = self.card_start_recovery(payment_id, card, kv).await?;
        let id = format!("rec_{}", random_hex(12));
        let mut runs = self.recoveries.lock().unwrap_or_else(|e| e.into_inner());
        runs.retain(|_, r| r.started.elapsed() < RECOVERY_TTL);
        runs.insert(
            id.clone(),
            RecoveryRun {
                run,
                card_id: card,
                payment: payment_id.to_string(),
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
        let bytes = match &answer {
            Some(h) => Some(hex::decode(h).map_err(|_| {
                ApiError::bad_request("invalid_apdu", "the card answer is not hex")
            })?),
            None => None,
        };
        let mut run = {
            let mut runs = self.recoveries.lock().unwrap_or_else(|e| e.into_inner());
            runs.remove(id).ok_or_else(|| {
                ApiError::not_found("recovery (it may have finished or expired; start again)")
            })?
        };
        let (guards, mut payments) = self.lock_all(vec![run.payment.clone()]).await?;
        let now = self.now();
        let step = self.with_sams(|| {
            self.card_recovery_step(&mut run.run, bytes.as_deref(), &mut payments, now)
        })?;
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

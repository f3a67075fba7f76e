//! A payment: the shop's order, its status, and what the SAM and card have done for it.
//! Statuses move only forward; terminal statuses never change again.

use purse::sam::Order;
use purse::{Amount, CardId, Currency, Mode, Rnd, SamId, SamTxSeq, Units};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Where a payment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting for the shopper's card (INITIALIZE).
    Created,
    /// The write-ahead record is durable and the DEBIT has left: waiting for the card's
    /// answer, or for recovery when it was lost.
    Authorized,
    /// A time-cycle whose DEBIT was confirmed: ticks may follow.
    Running,
    Succeeded,
    Failed,
    Canceled,
    Expired,
}

impl Status {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Succeeded | Status::Failed | Status::Canceled | Status::Expired
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Authorized => "authorized",
            Status::Running => "running",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Canceled => "canceled",
            Status::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::Created,
            Status::Authorized,
            Status::Running,
            Status::Succeeded,
            Status::Failed,
            Status::Canceled,
            Status::Expired,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }

    /// Whether `self -> next` is a move the state machine allows.
    pub fn may_become(self, next: Status) -> bool {
        use Status::*;
        match (self, next) {
            (a, b) if a == b => true,
            (Created, Authorized | Failed | Canceled | Expired) => true,
            (Authorized, Running | Succeeded | Failed) => true,
            (Running, Succeeded) => true,
            _ => false,
        }
    }
}

/// Why a payment failed, in words a shop can show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub code: String,
    pub message: String,
}

/// A payment as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub id: String,
    pub status: Status,
    pub currency: Currency,
    pub order: Order,
    pub order_ref: Option<String>,
    pub description: Option<String>,
    pub return_url: Option<String>,
    pub notify_url: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// SHA-256 of the client secret (the secret itself is shown once, at creation).
    pub secret_hash: String,
    pub secret_expires_at: i64,
    /// The RND_S of the INITIALIZE the payment carries now.
    pub rnd_s: Rnd,
    /// The SAM the payment began on (its INITIALIZE names it; it stays on it).
    #[serde(default)]
    pub sam_id: Option<SamId>,
    pub sam_tx_seq: Option<SamTxSeq>,
    pub card_id: Option<CardId>,
    pub units: Units,
    pub total: Amount,
    pub balance_after: Option<Amount>,
    /// The DEBIT or TICK in flight (hex APDU), to give again to a retrying client.
    pub pending_command: Option<String>,
    /// The INITIALIZE answer that authorized it, and the last card answer accepted:
    /// the same answer sent again is answered with the same result.
    pub init_answer: Option<String>,
    pub last_answer: Option<String>,
    /// When the next unit of a running time-cycle is due (shop clock, Unix seconds).
    pub next_due_at: Option<i64>,
    /// A card answer was lost: only recovery (or the answer's proven original) may
    /// settle the command in flight now; a status word can no longer void it.
    #[serde(default)]
    pub recovery_required: bool,
    pub failure: Option<Failure>,
}

impl Payment {
    pub fn mode_name(&self) -> &'static str {
        match self.order.mode {
            Mode::TimeCycle => "time_cycle",
            _ => "single",
        }
    }

    /// The amount shown to the shopper: the price, or the price per unit.
    pub fn amount(&self) -> Amount {
        self.order.unit_amount
    }

    /// The payment as the merchant API shows it.
    pub fn merchant_view(&self) -> Value {
        let mut v = self.common_view();
        v["order_reference"] = json!(self.order_ref);
        v["return_url"] = json!(self.return_url);
        v["notify_url"] = json!(self.notify_url);
        v["sam_tx_seq"] = json!(self.sam_tx_seq.map(|s| s.0));
        v["card_id"] = json!(self.card_id.map(|c| c.to_hex()));
        v
    }

    /// What the shopper's browser may see (no URLs of the shop's back office).
    pub fn shopper_view(&self, initialize: Option<Value>) -> Value {
        let mut v = self.common_view();
        v["return_url"] = json!(self.return_url);
        v["pending_command"] = json!(self.pending_command);
        if let Some(i) = initialize {
            v["initialize"] = i;
        }
        v
    }

    fn common_view(&self) -> Value {
        let time_cycle = (self.order.mode == Mode::TimeCycle).then(|| {
            json!({
                "unit_amount": self.order.unit_amount.0,
                "period_seconds": self.order.period_secs,
                "max_units": self.order.max_units.0,
            })
        });
        json!({
            "id": self.id,
            "object": "payment",
            "status": self.status.as_str(),
            "mode": self.mode_name(),
            "amount": self.amount().0,
            "currency": self.currency.alpha().map_or_else(|| self.currency.numeric().to_string(), str::to_string),
            "time_cycle": time_cycle,
            "description": self.description,
            "created": self.created_at,
            "updated": self.updated_at,
            "charged": { "units": self.units.0, "total": self.total.0 },
            "balance_after": self.balance_after.map(|b| b.0),
            "next_due_at": self.next_due_at,
            "recovery_required": self.recovery_required,
            "failure": self.failure,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_states_never_move() {
        use Status::*;
        for t in [Succeeded, Failed, Canceled, Expired] {
            for n in [
                Created, Authorized, Running, Succeeded, Failed, Canceled, Expired,
            ] {
                assert_eq!(t.may_become(n), t == n, "{t:?} -> {n:?}");
            }
        }
        assert!(Created.may_become(Authorized));
        assert!(
            !Authorized.may_become(Canceled),
            "no cancel after the debit left"
        );
        assert!(
            !Running.may_become(Failed),
            "confirmed units are never undone"
        );
    }
}

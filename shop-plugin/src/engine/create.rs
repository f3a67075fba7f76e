//! A payment's life before a card pays: creation (the SAM begins, a client secret is
//! drawn and only its hash stored), the INITIALIZE commands the shopper's side sends, the
//! client secret's check, expiry (on access and by the periodic sweep) and the merchant's
//! cancel.

use base64::Engine as _;
use purse::sam::Order;
use purse::{Amount, Currency, Mode, Units};
use rand::RngCore;
use subtle::ConstantTimeEq;

use super::{random_hex, sam, sha256_hex, ApiError, Engine};
use crate::payment::{Payment, Status};
use crate::store::rows;
use crate::store::Op;

/// What the merchant asks for.
#[derive(Clone, Debug)]
pub struct NewPayment {
    pub currency: Currency,
    pub order: Order,
    pub order_ref: Option<String>,
    pub description: Option<String>,
    pub return_url: Option<String>,
    pub notify_url: Option<String>,
}

impl Engine {
    /// Creates a payment: the SAM begins (INITIALIZE ready), the payment is stored with
    /// the hash of a fresh client secret. Returns the payment and the secret.
    pub fn new_payment(&self, req: NewPayment) -> Result<(Payment, String), ApiError> {
        self.check_alive()?;
        let Some(currency) = self.currency() else {
            return Err(sam::sam_error(&crate::sam::SamError::Unavailable(
                "no SAM has answered yet".into(),
            )));
        };
        if req.currency != currency {
            return Err(ApiError::bad_request(
                "currency_not_supported",
                format!(
                    "this shop's purse service takes {currency}, not {}",
                    req.currency
                ),
            ));
        }
        let id = format!("pay_{}", random_hex(12));
        let (sam_id, rnd_s, slot) = self.with_sams(|| self.card_begin(&id, &req.order))?;
        self.begins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), slot);
        let mut secret_bytes = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut secret_bytes);
        let secret = format!(
            "{id}_secret_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret_bytes)
        );
        let now = self.now();
        let p = Payment {
            id,
            status: Status::Created,
            currency: req.currency,
            order: req.order,
            order_ref: req.order_ref,
            description: req.description,
            return_url: req.return_url,
            notify_url: req.notify_url,
            created_at: now,
            updated_at: now,
            secret_hash: sha256_hex(secret.as_bytes()),
            secret_expires_at: now + self.settings.secret_ttl_secs,
            rnd_s,
            sam_id: Some(sam_id),
            sam_tx_seq: None,
            card_id: None,
            units: Units(0),
            total: Amount(0),
            balance_after: None,
            pending_command: None,
            init_answer: None,
            last_answer: None,
            next_due_at: None,
            recovery_required: false,
            failure: None,
        };
        Ok((p, secret))
    }

    /// The writes that store a new payment.
    pub fn create_ops(&self, p: &Payment) -> Vec<Op> {
        let mut ops = vec![rows::put_payment(p), self.event(p, "payment.created")];
        let begun = self
            .begins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&p.id);
        if let Some(slot) = begun {
            ops.push(crate::store::sam_rows::put_slot(&slot));
        }
        ops
    }

    /// Checks the shopper's client secret.
    pub fn check_secret(&self, p: &Payment, secret: &str) -> Result<(), ApiError> {
        let hash = sha256_hex(secret.as_bytes());
        if !bool::from(hash.as_bytes().ct_eq(p.secret_hash.as_bytes())) {
            return Err(ApiError::new(
                401,
                "invalid_client_secret",
                "the client secret does not belong to this payment",
            ));
        }
        Ok(())
    }

    /// The INITIALIZE commands of a payment waiting for a card: one per card key version
    /// the SAM accepts (P2 is the card's KV; the shopper's side picks by the card's SELECT).
    pub fn initialize_commands(&self, p: &Payment) -> Option<serde_json::Value> {
        if p.status != Status::Created {
            return None;
        }
        self.card_initialize_commands(p)
    }

    /// Moves a waiting payment whose client secret expired to `expired`. Returns the
    /// payment as it is after the check.
    pub(crate) async fn expire_if_due(&self, mut p: Payment) -> Result<Payment, ApiError> {
        if p.status == Status::Created && self.now() >= p.secret_expires_at {
            p.status = Status::Expired;
            p.updated_at = self.now();
            let ops = vec![rows::put_payment(&p), self.event(&p, "payment.expired")];
            self.durable(self.store.submit(ops)).await?;
        }
        Ok(p)
    }

    /// Merchant: cancel a payment that no card has paid yet.
    pub async fn cancel(&self, id: &str) -> Result<Payment, ApiError> {
        self.check_alive()?;
        let _g = self.lock(id).await;
        let p = self.load(id).await?;
        let mut p = self.expire_if_due(p).await?;
        match p.status {
            Status::Canceled => return Ok(p),
            Status::Created => {}
            s => {
                return Err(ApiError::conflict(
                    "payment_not_cancelable",
                    format!("a payment that is {} can no longer be canceled", s.as_str()),
                ))
            }
        }
        p.status = Status::Canceled;
        p.updated_at = self.now();
        let ops = vec![rows::put_payment(&p), self.event(&p, "payment.canceled")];
        self.durable(self.store.submit(ops)).await?;
        Ok(p)
    }

    /// Expires every waiting payment whose secret has run out (the periodic sweep).
    pub async fn sweep_expired(&self) -> Result<usize, ApiError> {
        let now = self.now();
        let ids: Vec<String> = self
            .store
            .read(move |c| {
                let mut st = c.prepare("SELECT id FROM payments WHERE status = 'created' AND json_extract(data, '$.secret_expires_at') <= ?1")?;
                let r = st.query_map([now], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>();
                r
            })
            .await
            .map_err(|_| ApiError::unavailable())?;
        let mut n = 0;
        for id in ids {
            let _g = self.lock(&id).await;
            let p = self.load(&id).await?;
            if self.expire_if_due(p).await?.status == Status::Expired {
                n += 1;
            }
        }
        Ok(n)
    }

    pub fn mode_ok(order: &Order) -> bool {
        order.mode != Mode::StatusOnly
    }
}

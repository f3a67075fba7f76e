//! The SAM of spec section 5, as pure operations: begin, authorize, complete, tick,
//! recover, close a period, record a clearing decision.
//!
//! Every operation that changes what must survive a crash returns a [`Durable`] value:
//! the caller stores it (the SAM's journal) *before* the message that came with it
//! leaves, so the write-ahead rule holds whatever the storage is. The SAM keeps the open
//! transactions in memory; [`Sam::restore`] rebuilds it from what the caller stored.

mod close;
mod error;
mod exchange;
mod recovery;
mod tx;

use std::collections::BTreeMap;

pub use close::{Close, RecloseError};
pub use error::{Refusal, SamError};
pub use exchange::{Completion, Tick};
pub use recovery::{Outcome, Recovery, RecoveryStep};
pub use tx::{Confirmed, Durable, Order, SamTx, TxState};

use crate::apdu::Response;
use crate::commands::{DebitCmd, InitializeCmd, InitializeResponse};
use crate::crypto::{div, DivType, Key};
use crate::keys::SamKeys;
use crate::macs::{s1, s2, session_key, SessionParams};
use crate::types::{CardId, CloseSeq, DateTime, KeyVersion, Mode, Nt, Rnd, SamId, SamTxSeq};

/// What came back from the card for one command. A failed exchange (card pulled,
/// transport or relay error, no answer) is never a status word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exchange {
    Answered(Response),
    Failed,
}

impl Exchange {
    /// Raw response bytes; fewer than two bytes cannot be an answer.
    pub fn from_bytes(b: Option<&[u8]>) -> Exchange {
        match b.map(Response::parse) {
            Some(Ok(r)) => Exchange::Answered(r),
            _ => Exchange::Failed,
        }
    }
}

/// A purchase begun for an order: the INITIALIZE is ready, nothing is allocated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Begun {
    pub order: Order,
    pub rnd_s: Rnd,
    pub sam_id: SamId,
}

impl Begun {
    /// The INITIALIZE for a card of key version `kv` (P2 must be the card's KV; it is not
    /// MACed, and a wrong one only makes S1 fail).
    pub fn initialize(&self, kv: KeyVersion) -> InitializeCmd {
        InitializeCmd {
            mode: self.order.mode,
            kv,
            sam_id: self.sam_id,
            rnd_s: self.rnd_s,
            u: self.order.unit_amount,
            max_units: self.order.max_units,
        }
    }
}

/// An authorized purchase: store `durable`, then send `debit`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorized {
    pub durable: Durable,
    pub debit: DebitCmd,
}

/// What the caller stored, to rebuild a SAM after a restart.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub next_tx_seq: SamTxSeq,
    pub last_close_seq: CloseSeq,
    /// Every transaction not yet settled in a batch and not yet finished with.
    pub open: Vec<SamTx>,
}

impl Snapshot {
    /// Rebuilds the SAM's state from its journal, oldest record first (the last record
    /// of each transaction wins). Transactions that are done with stay out of memory.
    pub fn from_journal(
        records: impl IntoIterator<Item = Durable>,
        last_close_seq: CloseSeq,
    ) -> Snapshot {
        let mut next_tx_seq = SamTxSeq(1);
        let mut latest = BTreeMap::new();
        for d in records {
            next_tx_seq = next_tx_seq.max(d.next_tx_seq);
            latest.insert(d.tx.sam_tx_seq, d.tx);
        }
        let open = latest.into_values().filter(|t| !t.is_done()).collect();
        Snapshot {
            next_tx_seq,
            last_close_seq,
            open,
        }
    }
}

/// The security module of one shop and one currency.
pub struct Sam {
    keys: SamKeys,
    next_tx_seq: SamTxSeq,
    last_close_seq: CloseSeq,
    open: BTreeMap<SamTxSeq, SamTx>,
}

impl Sam {
    /// A new SAM: SAM_TxSeq starts at 1, no period closed yet.
    pub fn new(keys: SamKeys) -> Sam {
        Sam::restore(
            keys,
            Snapshot {
                next_tx_seq: SamTxSeq(1),
                ..Snapshot::default()
            },
        )
    }

    /// Rebuilds a SAM from stored state. The counter never goes below a stored
    /// transaction's SAM_TxSeq + 1, so a lost counter write cannot make a number reused.
    pub fn restore(keys: SamKeys, snap: Snapshot) -> Sam {
        let mut next = snap.next_tx_seq.max(SamTxSeq(1));
        let mut open = BTreeMap::new();
        for tx in snap.open {
            if let Some(n) = tx.sam_tx_seq.next() {
                next = next.max(n);
            }
            open.insert(tx.sam_tx_seq, tx);
        }
        Sam {
            keys,
            next_tx_seq: next,
            last_close_seq: snap.last_close_seq,
            open,
        }
    }

    pub fn sam_id(&self) -> SamId {
        self.keys.sam_id
    }

    pub fn keys(&self) -> &SamKeys {
        &self.keys
    }

    pub fn next_tx_seq(&self) -> SamTxSeq {
        self.next_tx_seq
    }

    pub fn last_close_seq(&self) -> CloseSeq {
        self.last_close_seq
    }

    pub fn tx(&self, seq: SamTxSeq) -> Option<&SamTx> {
        self.open.get(&seq)
    }

    /// The transactions the SAM still holds, in SAM_TxSeq order.
    pub fn open_txs(&self) -> impl Iterator<Item = &SamTx> {
        self.open.values()
    }

    /// Transactions of `card` waiting for recovery.
    pub fn pending_for(&self, card: CardId) -> Vec<SamTxSeq> {
        self.open
            .values()
            .filter(|t| t.card_id == card && t.state == TxState::Pending)
            .map(|t| t.sam_tx_seq)
            .collect()
    }

    /// Step 1: begin a purchase for the shop's order with a fresh `RND_S`.
    pub fn begin(&self, order: Order, rnd_s: Rnd) -> Result<Begun, SamError> {
        if !order.mode.accepts(order.unit_amount, order.max_units) || order.mode == Mode::StatusOnly
        {
            return Err(SamError::BadOrder(
                "mode, amount and units do not fit together",
            ));
        }
        if order.mode == Mode::TimeCycle && order.period_secs == 0 {
            return Err(SamError::BadOrder("a time-cycle needs a period"));
        }
        Ok(Begun {
            order,
            rnd_s,
            sam_id: self.keys.sam_id,
        })
    }

    pub(crate) fn k_pur(&self, kv: KeyVersion, card: CardId) -> Option<Key> {
        let mk = self.keys.mk_pur.get(&kv)?;
        Some(div(mk, &card.0, DivType::Purchase))
    }

    /// `Ks` of a session, re-derived from what the write-ahead record holds.
    pub(crate) fn session_key(
        &self,
        kv: KeyVersion,
        card: CardId,
        nt: Nt,
        rnd_s: &Rnd,
        rnd_c: &Rnd,
    ) -> Option<Key> {
        let k_pur = self.k_pur(kv, card)?;
        Some(session_key(
            &k_pur,
            card,
            nt,
            self.keys.sam_id,
            rnd_s,
            rnd_c,
        ))
    }

    /// Verifies an INITIALIZE answer's S1 for the command we sent; returns the answer.
    pub(crate) fn verify_initialize(
        &self,
        cmd: &InitializeCmd,
        answer: &Exchange,
    ) -> Result<(InitializeResponse, Key), Refusal> {
        let r = match answer {
            Exchange::Failed => return Err(Refusal::NoAnswer),
            Exchange::Answered(r) if !r.sw.is_ok() => return Err(Refusal::CardStatus(r.sw)),
            Exchange::Answered(r) => r,
        };
        let resp = InitializeResponse::parse(&r.data).map_err(|_| Refusal::Malformed)?;
        let ks = self
            .session_key(cmd.kv, resp.card_id, resp.nt, &cmd.rnd_s, &resp.rnd_c)
            .ok_or(Refusal::UnknownKeyVersion(cmd.kv))?;
        let params = SessionParams {
            card_id: resp.card_id,
            nt: resp.nt,
            sam_id: self.keys.sam_id,
            mode: cmd.mode,
            u: cmd.u,
            max_units: cmd.max_units,
        };
        if !s1(&ks, &params, resp.balance, resp.currency, &cmd.rnd_s).verify(&resp.s1) {
            return Err(Refusal::BadS1);
        }
        Ok((resp, ks))
    }

    /// Step 2: the card answered INITIALIZE. Verify S1, refuse what cannot be paid,
    /// allocate SAM_TxSeq and return the write-ahead record with the DEBIT.
    pub fn authorize(
        &mut self,
        begun: &Begun,
        kv: KeyVersion,
        answer: &Exchange,
        now: DateTime,
    ) -> Result<Authorized, Refusal> {
        let cmd = begun.initialize(kv);
        let (resp, ks) = self.verify_initialize(&cmd, answer)?;
        if resp.currency != self.keys.currency {
            return Err(Refusal::WrongCurrency {
                card: resp.currency,
                sam: self.keys.currency,
            });
        }
        if resp.balance < begun.order.unit_amount {
            return Err(Refusal::InsufficientFunds {
                balance: resp.balance,
                price: begun.order.unit_amount,
            });
        }
        let seq = self.next_tx_seq;
        let next = seq.next().ok_or(Refusal::TxSeqExhausted)?;
        let tx = SamTx {
            sam_tx_seq: seq,
            kv,
            card_id: resp.card_id,
            nt: resp.nt,
            balance: resp.balance,
            order: begun.order,
            rnd_s: begun.rnd_s,
            rnd_c: resp.rnd_c,
            datetime: now,
            state: TxState::Pending,
            in_flight: Some(crate::types::Units(1)),
            confirmed: None,
            settled_in: None,
            clearing_decision: None,
        };
        let debit = DebitCmd {
            sam_tx_seq: seq,
            datetime: now,
            s2: s2(&ks, &tx.session(self.keys.sam_id), seq, now),
        };
        self.next_tx_seq = next;
        self.open.insert(seq, tx.clone());
        Ok(Authorized {
            durable: Durable {
                next_tx_seq: next,
                tx,
            },
            debit,
        })
    }

    /// Stores a changed transaction in memory and returns what must be made durable.
    pub(crate) fn put(&mut self, tx: SamTx) -> Durable {
        self.open.insert(tx.sam_tx_seq, tx.clone());
        Durable {
            next_tx_seq: self.next_tx_seq,
            tx,
        }
    }
}

//! The SAM's transaction record: the write-ahead fields of spec 5.2, what the card has
//! confirmed so far, and the command in flight. This is what the caller stores.

use serde::{Deserialize, Serialize};

use crate::commands::TxRecord;
use crate::macs::SessionParams;
use crate::settlement::{BatchTx, UnresolvedTx};
use crate::types::{
    Amount, CardId, CloseSeq, DateTime, KeyVersion, Mac8, Mode, Nt, Rnd, SamId, SamTxSeq, Units,
};

/// What the shop ordered: it comes from the shop's own order, never from the browser.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// `Single` or `TimeCycle`.
    pub mode: Mode,
    /// `U`: the price, or the price per unit of a time-cycle.
    pub unit_amount: Amount,
    /// 1 for a single purchase.
    pub max_units: Units,
    /// Seconds between the units of a time-cycle (0 for a single purchase).
    pub period_secs: u32,
}

impl Order {
    pub fn single(amount: Amount) -> Order {
        Order {
            mode: Mode::Single,
            unit_amount: amount,
            max_units: Units(1),
            period_secs: 0,
        }
    }

    pub fn time_cycle(unit_amount: Amount, max_units: Units, period_secs: u32) -> Order {
        Order {
            mode: Mode::TimeCycle,
            unit_amount,
            max_units,
            period_secs,
        }
    }
}

/// Where a transaction stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxState {
    /// A DEBIT or TICK left the SAM and its answer has not been accepted yet
    /// (in flight, or lost: recovery decides).
    Pending,
    /// A time-cycle whose confirmed units may still grow by ticks.
    Running,
    /// Final: the confirmed units settle.
    Completed,
    /// Final: nothing was debited.
    Voided,
    /// Final: the clearing office decided the in-flight command was debited; it settles
    /// that itself (the SAM has no TAC for it).
    Cleared,
}

impl TxState {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TxState::Completed | TxState::Voided | TxState::Cleared
        )
    }
}

/// What the card confirmed with a verified S3: cumulative over all units.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmed {
    pub units: Units,
    pub total: Amount,
    pub balance_after: Amount,
    pub s3: Mac8,
    pub tac: Mac8,
}

/// One transaction of the SAM, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SamTx {
    pub sam_tx_seq: SamTxSeq,
    pub kv: KeyVersion,
    pub card_id: CardId,
    pub nt: Nt,
    /// The card's balance at INITIALIZE.
    pub balance: Amount,
    pub order: Order,
    pub rnd_s: Rnd,
    pub rnd_c: Rnd,
    /// The DEBIT's DateTime (unit 1).
    pub datetime: DateTime,
    pub state: TxState,
    /// The unit whose command is in flight (1 = the DEBIT), while `Pending`.
    pub in_flight: Option<Units>,
    pub confirmed: Option<Confirmed>,
    /// The close whose batch carries this transaction.
    pub settled_in: Option<CloseSeq>,
    /// The clearing office's decision on a transaction recovery could not resolve.
    pub clearing_decision: Option<bool>,
}

impl SamTx {
    pub(crate) fn session(&self, sam_id: SamId) -> SessionParams {
        SessionParams {
            card_id: self.card_id,
            nt: self.nt,
            sam_id,
            mode: self.order.mode,
            u: self.order.unit_amount,
            max_units: self.order.max_units,
        }
    }

    /// When unit `k` is due by the shop's clock: `DateTime + (k-1) * period`.
    pub fn due_at(&self, k: Units) -> u64 {
        u64::from(self.datetime.0)
            + u64::from(k.0.saturating_sub(1)) * u64::from(self.order.period_secs)
    }

    pub fn confirmed_units(&self) -> Units {
        self.confirmed.as_ref().map_or(Units(0), |c| c.units)
    }

    /// Final and settled, or final with nothing to settle: the SAM has no more to do.
    pub fn is_done(&self) -> bool {
        self.state.is_final() && (self.settled_in.is_some() || self.confirmed.is_none())
    }

    /// Whether this transaction belongs in the next batch's records.
    pub fn settles(&self) -> bool {
        self.settled_in.is_none() && self.state == TxState::Completed && self.confirmed.is_some()
    }

    /// The batch entry of a settling transaction.
    pub fn batch_tx(&self, sam_id: SamId) -> Option<BatchTx> {
        let c = self.confirmed.as_ref()?;
        let r = TxRecord {
            nt: self.nt,
            sam_id,
            sam_tx_seq: self.sam_tx_seq,
            datetime: self.datetime,
            mode: self.order.mode.p1(),
            u: self.order.unit_amount,
            units: c.units,
            total: c.total,
            balance_after: c.balance_after,
            s3: c.s3,
            tac: c.tac,
        };
        Some(BatchTx::from_record(self.kv, self.card_id, &r))
    }

    pub fn unresolved(&self) -> UnresolvedTx {
        UnresolvedTx {
            kv: self.kv,
            card_id: self.card_id,
            nt: self.nt,
            sam_tx_seq: self.sam_tx_seq,
            unit_amount: self.order.unit_amount,
        }
    }
}

/// What must be durable before the message returned with it leaves the SAM (or before
/// the outcome is acknowledged to anyone): the counter and the transaction's new state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Durable {
    /// The next SAM_TxSeq the SAM will allocate.
    pub next_tx_seq: SamTxSeq,
    pub tx: SamTx,
}

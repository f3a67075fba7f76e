//! The plaintexts of the sealed contexts (sam-protocol section 2): a begun purchase, a
//! transaction (the write-ahead record of spec 5.2 plus its phase and period) and a
//! recovery. The SAM seals them with [`SealKeys`] and holds none of them itself.

use super::seal::SealKeys;
use crate::commands::Reader;
use crate::sam::{Confirmed, Order, SamTx, TxState};
use crate::types::{
    Amount, CardId, CloseSeq, DateTime, KeyVersion, Mac8, Mode, Nt, Rnd, SamTxSeq, Units,
};

pub const KIND_BEGIN: u8 = 0x42;
pub const KIND_TX: u8 = 0x54;
pub const KIND_RECOVERY: u8 = 0x52;

const BEGIN_LEN: usize = 31;
const TX_LEN: usize = 101;
const RECOVERY_LEN: usize = TX_LEN + 16;

const PHASE_PENDING: u8 = 0x01;
const PHASE_RUNNING: u8 = 0x02;

/// A purchase begun for an order: BEGIN's context, authorized at most once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BeginCtx {
    pub begin_no: u32,
    pub order: Order,
    pub rnd_s: Rnd,
}

/// An authorized transaction that is not final: pending (a command in flight) or a
/// running time-cycle. `period` is the open period when the context was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxCtx {
    pub tx: SamTx,
    pub period: CloseSeq,
}

/// A recovery of a pending transaction: its context and the fresh `RND_S'`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryCtx {
    pub tx: TxCtx,
    pub rnd_s: Rnd,
}

fn put_order(v: &mut Vec<u8>, o: &Order) {
    v.push(o.mode.p1());
    v.extend_from_slice(&o.unit_amount.0.to_be_bytes());
    v.extend_from_slice(&o.max_units.0.to_be_bytes());
    v.extend_from_slice(&o.period_secs.to_be_bytes());
}

fn get_order(r: &mut Reader<'_>) -> Option<Order> {
    let mode = Mode::from_p1(r.u8()).filter(|m| *m != Mode::StatusOnly)?;
    Some(Order {
        mode,
        unit_amount: Amount(r.u32()),
        max_units: Units(r.u16()),
        period_secs: r.u32(),
    })
}

impl BeginCtx {
    pub fn seal(&self, k: &SealKeys) -> Vec<u8> {
        let mut v = Vec::with_capacity(BEGIN_LEN);
        v.extend_from_slice(&self.begin_no.to_be_bytes());
        put_order(&mut v, &self.order);
        v.extend_from_slice(&self.rnd_s.0);
        k.seal(KIND_BEGIN, &v)
    }

    pub fn open(k: &SealKeys, ctx: &[u8]) -> Option<BeginCtx> {
        let p = k.open(KIND_BEGIN, ctx).filter(|p| p.len() == BEGIN_LEN)?;
        let mut r = Reader::new(&p);
        Some(BeginCtx {
            begin_no: r.u32(),
            order: get_order(&mut r)?,
            rnd_s: Rnd(r.array()),
        })
    }
}

impl TxCtx {
    fn encode(&self, v: &mut Vec<u8>) {
        let t = &self.tx;
        v.extend_from_slice(&t.sam_tx_seq.0.to_be_bytes());
        v.extend_from_slice(&self.period.0.to_be_bytes());
        v.push(t.kv.0);
        v.extend_from_slice(&t.card_id.0);
        v.extend_from_slice(&t.nt.0.to_be_bytes());
        v.extend_from_slice(&t.balance.0.to_be_bytes());
        put_order(v, &t.order);
        v.extend_from_slice(&t.rnd_s.0);
        v.extend_from_slice(&t.rnd_c.0);
        v.extend_from_slice(&t.datetime.0.to_be_bytes());
        let (phase, k) = match (t.state, t.in_flight) {
            (TxState::Pending, Some(k)) => (PHASE_PENDING, k),
            _ => (PHASE_RUNNING, Units(0)),
        };
        v.push(phase);
        v.extend_from_slice(&k.0.to_be_bytes());
        let c = t.confirmed.clone().unwrap_or(Confirmed {
            units: Units(0),
            total: Amount(0),
            balance_after: Amount(0),
            s3: Mac8([0; 8]),
            tac: Mac8([0; 8]),
        });
        v.extend_from_slice(&c.units.0.to_be_bytes());
        v.extend_from_slice(&c.total.0.to_be_bytes());
        v.extend_from_slice(&c.balance_after.0.to_be_bytes());
        v.extend_from_slice(&c.s3.0);
        v.extend_from_slice(&c.tac.0);
    }

    fn decode(r: &mut Reader<'_>) -> Option<TxCtx> {
        let sam_tx_seq = SamTxSeq(r.u32());
        let period = CloseSeq(r.u32());
        let kv = KeyVersion(r.u8());
        let card_id = CardId(r.array());
        let nt = Nt(r.u32());
        let balance = Amount(r.u32());
        let order = get_order(r)?;
        let rnd_s = Rnd(r.array());
        let rnd_c = Rnd(r.array());
        let datetime = DateTime(r.u32());
        let phase = r.u8();
        let k = Units(r.u16());
        let (state, in_flight) = match phase {
            PHASE_PENDING if k.0 >= 1 => (TxState::Pending, Some(k)),
            PHASE_RUNNING => (TxState::Running, None),
            _ => return None,
        };
        let c = Confirmed {
            units: Units(r.u16()),
            total: Amount(r.u32()),
            balance_after: Amount(r.u32()),
            s3: Mac8(r.array()),
            tac: Mac8(r.array()),
        };
        let confirmed = (c.units.0 > 0).then_some(c);
        Some(TxCtx {
            tx: SamTx {
                sam_tx_seq,
                kv,
                card_id,
                nt,
                balance,
                order,
                rnd_s,
                rnd_c,
                datetime,
                state,
                in_flight,
                confirmed,
                settled_in: None,
                clearing_decision: None,
            },
            period,
        })
    }

    pub fn seal(&self, k: &SealKeys) -> Vec<u8> {
        let mut v = Vec::with_capacity(TX_LEN);
        self.encode(&mut v);
        k.seal(KIND_TX, &v)
    }

    pub fn open(k: &SealKeys, ctx: &[u8]) -> Option<TxCtx> {
        let p = k.open(KIND_TX, ctx).filter(|p| p.len() == TX_LEN)?;
        TxCtx::decode(&mut Reader::new(&p))
    }
}

impl RecoveryCtx {
    pub fn seal(&self, k: &SealKeys) -> Vec<u8> {
        let mut v = Vec::with_capacity(RECOVERY_LEN);
        self.tx.encode(&mut v);
        v.extend_from_slice(&self.rnd_s.0);
        k.seal(KIND_RECOVERY, &v)
    }

    pub fn open(k: &SealKeys, ctx: &[u8]) -> Option<RecoveryCtx> {
        let p = k
            .open(KIND_RECOVERY, ctx)
            .filter(|p| p.len() == RECOVERY_LEN)?;
        let mut r = Reader::new(&p);
        let tx = TxCtx::decode(&mut r)?;
        Some(RecoveryCtx {
            tx,
            rnd_s: Rnd(r.array()),
        })
    }
}

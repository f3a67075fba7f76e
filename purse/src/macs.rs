//! The session keys and MACs of spec sections 2 and 4: `Ks`, `Kt`, S1, S2, S2k, S3, TAC.
//!
//! One definition of each formula, shared by the card, the SAM and the clearing office.

use crate::commands::TxRecord;
use crate::crypto::{kdf, label, mac8, Key};
use crate::types::{
    Amount, CardId, Currency, DateTime, Mac8, Mode, Nt, Rnd, SamId, SamTxSeq, Units,
};

/// What both the card and the SAM know of one session once INITIALIZE is answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionParams {
    pub card_id: CardId,
    pub nt: Nt,
    pub sam_id: SamId,
    pub mode: Mode,
    pub u: Amount,
    pub max_units: Units,
}

/// `Ks = KDF(K_PUR, 53, CardID || NT || SAM_ID || RND_S || RND_C)`.
pub fn session_key(
    k_pur: &Key,
    card_id: CardId,
    nt: Nt,
    sam_id: SamId,
    rnd_s: &Rnd,
    rnd_c: &Rnd,
) -> Key {
    let mut ctx = [0u8; 52];
    ctx[..8].copy_from_slice(&card_id.0);
    ctx[8..12].copy_from_slice(&nt.0.to_be_bytes());
    ctx[12..20].copy_from_slice(&sam_id.0);
    ctx[20..36].copy_from_slice(&rnd_s.0);
    ctx[36..52].copy_from_slice(&rnd_c.0);
    kdf(k_pur, label::SESSION, &ctx)
}

/// `Kt = KDF(K_TAC, 54, CardID || NT)`.
pub fn proof_key(k_tac: &Key, card_id: CardId, nt: Nt) -> Key {
    let mut ctx = [0u8; 12];
    ctx[..8].copy_from_slice(&card_id.0);
    ctx[8..].copy_from_slice(&nt.0.to_be_bytes());
    kdf(k_tac, label::PROOF, &ctx)
}

/// `S1 = MAC8(Ks, 01 || CardID || NT || Balance || Currency || P1 || U || MaxUnits || SAM_ID || RND_S)`.
pub fn s1(ks: &Key, p: &SessionParams, balance: Amount, currency: Currency, rnd_s: &Rnd) -> Mac8 {
    let mut m = Vec::with_capacity(52);
    m.push(0x01);
    m.extend_from_slice(&p.card_id.0);
    m.extend_from_slice(&p.nt.0.to_be_bytes());
    m.extend_from_slice(&balance.0.to_be_bytes());
    m.extend_from_slice(&currency.numeric().to_be_bytes());
    m.push(p.mode.p1());
    m.extend_from_slice(&p.u.0.to_be_bytes());
    m.extend_from_slice(&p.max_units.0.to_be_bytes());
    m.extend_from_slice(&p.sam_id.0);
    m.extend_from_slice(&rnd_s.0);
    mac8(ks, &m)
}

/// `S2 = MAC8(Ks, 02 || CardID || NT || P1 || U || MaxUnits || SAM_ID || SAM_TxSeq || DateTime)`.
pub fn s2(ks: &Key, p: &SessionParams, sam_tx_seq: SamTxSeq, datetime: DateTime) -> Mac8 {
    let mut m = Vec::with_capacity(36);
    m.push(0x02);
    m.extend_from_slice(&p.card_id.0);
    m.extend_from_slice(&p.nt.0.to_be_bytes());
    m.push(p.mode.p1());
    m.extend_from_slice(&p.u.0.to_be_bytes());
    m.extend_from_slice(&p.max_units.0.to_be_bytes());
    m.extend_from_slice(&p.sam_id.0);
    m.extend_from_slice(&sam_tx_seq.0.to_be_bytes());
    m.extend_from_slice(&datetime.0.to_be_bytes());
    mac8(ks, &m)
}

/// `S2k = MAC8(Ks, 12 || NT || k)`.
pub fn s2k(ks: &Key, nt: Nt, k: Units) -> Mac8 {
    let mut m = [0u8; 7];
    m[0] = 0x12;
    m[1..5].copy_from_slice(&nt.0.to_be_bytes());
    m[5..].copy_from_slice(&k.0.to_be_bytes());
    mac8(ks, &m)
}

/// `S3 = MAC8(Ks, 03 || NT || Units || Total || BalanceAfter || TAC)` (revision 2: S3
/// covers the TAC, so a TAC altered on the way between card and SAM fails S3).
pub fn s3(
    ks: &Key,
    nt: Nt,
    units: Units,
    total: Amount,
    balance_after: Amount,
    tac: &Mac8,
) -> Mac8 {
    let mut m = [0u8; 23];
    m[0] = 0x03;
    m[1..5].copy_from_slice(&nt.0.to_be_bytes());
    m[5..7].copy_from_slice(&units.0.to_be_bytes());
    m[7..11].copy_from_slice(&total.0.to_be_bytes());
    m[11..15].copy_from_slice(&balance_after.0.to_be_bytes());
    m[15..].copy_from_slice(&tac.0);
    mac8(ks, &m)
}

/// Everything a TAC covers. `mode` is the raw P1 byte so that the clearing office can
/// verify (and then reject) a record with a mode no conforming card writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TacInput {
    pub card_id: CardId,
    pub nt: Nt,
    pub sam_id: SamId,
    pub sam_tx_seq: SamTxSeq,
    pub datetime: DateTime,
    pub mode: u8,
    pub u: Amount,
    pub units: Units,
    pub total: Amount,
    pub balance_after: Amount,
    pub currency: Currency,
}

impl TacInput {
    /// What the TAC of a card record covers: the record's fields, the card and the
    /// currency (neither of which the record itself holds).
    pub fn of_record(card_id: CardId, r: &TxRecord, currency: Currency) -> TacInput {
        TacInput {
            card_id,
            nt: r.nt,
            sam_id: r.sam_id,
            sam_tx_seq: r.sam_tx_seq,
            datetime: r.datetime,
            mode: r.mode,
            u: r.u,
            units: r.units,
            total: r.total,
            balance_after: r.balance_after,
            currency,
        }
    }

    /// `TAC = MAC8(Kt, 04 || CardID || NT || SAM_ID || SAM_TxSeq || DateTime || P1 || U || Units || Total || BalanceAfter || Currency)`.
    pub fn mac(&self, kt: &Key) -> Mac8 {
        let mut m = Vec::with_capacity(48);
        m.push(0x04);
        m.extend_from_slice(&self.card_id.0);
        m.extend_from_slice(&self.nt.0.to_be_bytes());
        m.extend_from_slice(&self.sam_id.0);
        m.extend_from_slice(&self.sam_tx_seq.0.to_be_bytes());
        m.extend_from_slice(&self.datetime.0.to_be_bytes());
        m.push(self.mode);
        m.extend_from_slice(&self.u.0.to_be_bytes());
        m.extend_from_slice(&self.units.0.to_be_bytes());
        m.extend_from_slice(&self.total.0.to_be_bytes());
        m.extend_from_slice(&self.balance_after.0.to_be_bytes());
        m.extend_from_slice(&self.currency.numeric().to_be_bytes());
        mac8(kt, &m)
    }
}

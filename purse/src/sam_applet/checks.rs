//! The checks the SAM makes on a purse card's answers (spec 5.2, 5.3, 5.5): `Ks` from
//! `MK_PUR` inside the SAM, S1 of an INITIALIZE answer, S3 and `BalanceAfter` of a DEBIT
//! or TICK answer or of a card record. Pure functions over the purse MACs.

use super::command::sw;
use crate::apdu::StatusWord;
use crate::commands::{InitializeCmd, InitializeResponse};
use crate::crypto::{div, DivType, Key};
use crate::keys::SamKeys;
use crate::macs::{s1, s3, session_key, SessionParams};
use crate::sam::{Confirmed, SamTx};
use crate::types::{Amount, CardId, KeyVersion, Mac8, Nt, Rnd, Units};

/// `Ks` of a session, with `K_PUR` derived from `MK_PUR` of `kv`; 6A88 when the SAM
/// does not accept `kv`.
pub fn session(
    keys: &SamKeys,
    kv: KeyVersion,
    card: CardId,
    nt: Nt,
    rnd_s: &Rnd,
    rnd_c: &Rnd,
) -> Result<Key, StatusWord> {
    let mk = keys.mk_pur.get(&kv).ok_or(sw::KEY_VERSION)?;
    let k_pur = div(mk, &card.0, DivType::Purchase);
    Ok(session_key(&k_pur, card, nt, keys.sam_id, rnd_s, rnd_c))
}

/// Verifies S1 of the card's answer to `cmd`; returns `Ks`. 6A88, then 6982.
pub fn initialize(
    keys: &SamKeys,
    cmd: &InitializeCmd,
    resp: &InitializeResponse,
) -> Result<Key, StatusWord> {
    let ks = session(keys, cmd.kv, resp.card_id, resp.nt, &cmd.rnd_s, &resp.rnd_c)?;
    let params = SessionParams {
        card_id: resp.card_id,
        nt: resp.nt,
        sam_id: keys.sam_id,
        mode: cmd.mode,
        u: cmd.u,
        max_units: cmd.max_units,
    };
    if s1(&ks, &params, resp.balance, resp.currency, &cmd.rnd_s).verify(&resp.s1) {
        Ok(ks)
    } else {
        Err(StatusWord::SECURITY_NOT_SATISFIED)
    }
}

/// What a card claims it charged for the transaction: cumulative units and total.
pub struct Proof {
    pub units: Units,
    pub total: Amount,
    pub balance_after: Amount,
    pub s3: Mac8,
    pub tac: Mac8,
}

/// Checks `BalanceAfter = Balance - Total` and S3 (over the TAC, revision 2) with the
/// transaction's `Ks`; 6982 when either fails.
pub fn proof(keys: &SamKeys, tx: &SamTx, p: Proof) -> Result<Confirmed, StatusWord> {
    let ks = session(keys, tx.kv, tx.card_id, tx.nt, &tx.rnd_s, &tx.rnd_c)?;
    let balance_ok = tx.balance.checked_sub(p.total) == Some(p.balance_after);
    let s3_ok = s3(&ks, tx.nt, p.units, p.total, p.balance_after, &p.tac).verify(&p.s3);
    if balance_ok && s3_ok {
        Ok(Confirmed {
            units: p.units,
            total: p.total,
            balance_after: p.balance_after,
            s3: p.s3,
            tac: p.tac,
        })
    } else {
        Err(StatusWord::SECURITY_NOT_SATISFIED)
    }
}

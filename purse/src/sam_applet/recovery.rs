//! Recovery of a pending transaction (spec 5.5): RECOVERY BEGIN draws `RND_S'` for a
//! mode-00 INITIALIZE; RECOVERY END judges the card's NT and, when the card moved past
//! the pending NT, its record of that NT.

use super::checks::{self, Proof};
use super::command::sw;
use super::context::{RecoveryCtx, TxCtx};
use super::purchase::init_data;
use super::{outcome, Answer, SamApplet, SamStore};
use crate::apdu::{Response, StatusWord};
use crate::commands::{InitializeCmd, InitializeResponse, TxRecord};
use crate::sam::TxState;
use crate::types::{Amount, Mode, Rnd, Units};

impl SamApplet {
    /// RECOVERY BEGIN: a pending transaction's context in; the INITIALIZE data of a
    /// mode-00 session and the recovery context out. Writes nothing.
    pub(super) fn recovery_begin(
        &mut self,
        data: &[u8],
        rnd_s: Rnd,
        store: &mut dyn SamStore,
    ) -> Answer {
        let ctx = self.tx_ctx(data, false, store)?;
        if ctx.tx.state != TxState::Pending {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        let mut v = init_data(self.state.keys.sam_id.0, &rnd_s, Amount(0), Units(0));
        v.extend_from_slice(&RecoveryCtx { tx: ctx, rnd_s }.seal(&self.seal));
        Ok(v)
    }

    /// RECOVERY END: the card's mode-00 INITIALIZE answer, and its GET TRANSACTION PROOF
    /// answer when the host read one, in; an outcome out.
    pub(super) fn recovery_end(&mut self, data: &[u8], store: &mut dyn SamStore) -> Answer {
        let proof_len = usize::from(data[42]);
        let proof = &data[43..43 + proof_len];
        let rec = RecoveryCtx::open(&self.seal, &data[43 + proof_len..]).ok_or(sw::BAD_CONTEXT)?;
        let rnd_s = rec.rnd_s;
        let mut ctx = self.open_tx(rec.tx, true, store)?;
        if ctx.tx.state != TxState::Pending {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        let resp = InitializeResponse::parse(&data[..42]).map_err(|_| StatusWord::WRONG_DATA)?;
        let keys = &self.state.keys;
        let cmd = InitializeCmd {
            mode: Mode::StatusOnly,
            kv: ctx.tx.kv,
            sam_id: keys.sam_id,
            rnd_s,
            u: Amount(0),
            max_units: Units(0),
        };
        checks::initialize(keys, &cmd, &resp)?;
        if resp.card_id != ctx.tx.card_id {
            return Err(StatusWord::SECURITY_NOT_SATISFIED);
        }
        if resp.nt == ctx.tx.nt {
            // The card never used the pending NT: nothing was debited by it.
            return self.finalize(&ctx, store);
        }
        if resp.nt < ctx.tx.nt {
            return self.pending(&ctx);
        }
        let Some(record) = Response::parse(proof)
            .ok()
            .filter(|r| r.sw.is_ok())
            .and_then(|r| TxRecord::parse(&r.data).ok())
            .filter(|r| r.nt == ctx.tx.nt)
        else {
            return self.pending(&ctx);
        };
        if record.sam_id != keys.sam_id || record.sam_tx_seq != ctx.tx.sam_tx_seq {
            // Another SAM, or another transaction of ours, used this NT.
            return self.finalize(&ctx, store);
        }
        let Ok(confirmed) = checks::proof(
            keys,
            &ctx.tx,
            Proof {
                units: record.units,
                total: record.total,
                balance_after: record.balance_after,
                s3: record.s3,
                tac: record.tac,
            },
        ) else {
            return self.pending(&ctx);
        };
        if confirmed.units >= ctx.tx.confirmed_units() {
            ctx.tx.confirmed = Some(confirmed);
        }
        self.finalize(&ctx, store)
    }

    /// Recovery could not decide: `03`, unless the transaction is final already (a
    /// replay that does not reproduce how it ended: 6985).
    fn pending(&self, ctx: &TxCtx) -> Answer {
        if self.is_final(ctx) {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        Ok(vec![outcome::PENDING])
    }
}

//! The SAM card ([`purse::sam_applet::SamApplet`]) as an [`Applet`]: its persistent
//! state (keys, `K_CTX`, counters, windows, period totals, blocked flag) lives in a
//! `purse-sam-card/1` file and its journal ([`crate::sam_store`]), each write the
//! applet asks for durable before its answer leaves. `RND_S` comes from the OS.

use purse::sam_applet::{SamApplet, SamState};

use crate::applet::{os_rnd, Applet};
use crate::atr::{SAM_ATR, SAM_ATR_T0};
use crate::sam_store::SamFileStore;

pub(crate) const NAME: &str = "sam-emulator";

pub struct SamCard {
    applet: SamApplet,
    store: SamFileStore,
}

impl SamCard {
    pub fn new(state: SamState, store: SamFileStore) -> SamCard {
        SamCard {
            applet: SamApplet::new(state),
            store,
        }
    }
}

impl Applet for SamCard {
    const NAME: &'static str = NAME;

    fn atr(&self, t0: bool) -> &'static [u8] {
        if t0 {
            &SAM_ATR_T0
        } else {
            &SAM_ATR
        }
    }

    fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.applet.process(apdu, os_rnd(NAME), &mut self.store)
    }

    fn reset(&mut self) {
        self.applet.reset();
    }

    fn close(&mut self) {
        // A clean stop gives the unused SAM_TxSeq block back: the next start resumes
        // without a gap.
        if let Err(e) = self.applet.power_off(&mut self.store) {
            eprintln!("{NAME}: storing the state at stop failed: {e}");
            return;
        }
        if let Err(e) = self.store.close() {
            eprintln!("{NAME}: compacting the journal at stop failed: {e:#}");
        }
    }

    fn status(&self) -> String {
        let s = self.applet.state();
        format!(
            "sam_id={} next_tx_seq={} last_close_seq={} period_count={} period_sum={} blocked={} \
             journal_records={}",
            s.keys.sam_id.to_hex(),
            s.next_tx_seq,
            s.last_close_seq,
            s.period.count,
            s.period.sum,
            s.blocked,
            self.store.journal_records()
        )
    }
}

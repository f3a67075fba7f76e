//! The purse card ([`purse::card::Card`]) as an [`Applet`], its state in a
//! `purse-card-state/1` file; or, for the "unsupported card" paths of the shopper's
//! side, a card of another kind without the purse application.

use purse::card::Card;

use crate::applet::Applet;
use crate::atr::{ATR, ATR_T0};
use crate::store::FileStore;

pub struct PurseCard {
    card: Card,
    store: FileStore,
    /// No purse application: SELECT of it answers 6A82, anything else 6D00.
    without_purse: bool,
}

impl PurseCard {
    pub fn new(card: Card, store: FileStore, without_purse: bool) -> PurseCard {
        PurseCard {
            card,
            store,
            without_purse,
        }
    }
}

impl Applet for PurseCard {
    const NAME: &'static str = "card-emulator";

    fn atr(&self, t0: bool) -> &'static [u8] {
        if t0 {
            &ATR_T0
        } else {
            &ATR
        }
    }

    fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        if self.without_purse {
            let sw = if purse::commands::is_select_class(apdu) {
                [0x6A, 0x82]
            } else {
                [0x6D, 0x00]
            };
            return sw.to_vec();
        }
        self.card.process(apdu, &mut self.store)
    }

    fn reset(&mut self) {
        self.card.reset();
    }

    fn status(&self) -> String {
        let s = self.card.state();
        format!("balance={} nt_last={}", s.balance, s.nt_last)
    }
}

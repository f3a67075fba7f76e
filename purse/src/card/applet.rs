//! The card's command processing.
// STUB: owned by the card helper.
use super::state::{CardState, CardStore};
use crate::types::Rnd;

pub struct Card {
    state: CardState,
    #[allow(dead_code)]
    rng: Box<dyn FnMut() -> Rnd + Send>,
}

impl Card {
    pub fn new(state: CardState, rng: Box<dyn FnMut() -> Rnd + Send>) -> Card {
        Card { state, rng }
    }
    pub fn state(&self) -> &CardState {
        &self.state
    }
    pub fn reset(&mut self) {}
    pub fn process(&mut self, _apdu: &[u8], _store: &mut dyn CardStore) -> Vec<u8> {
        vec![0x6F, 0x00]
    }
}

//! What the emulator loop ([`crate::run`]) runs: one card's application behind APDUs,
//! its ATR, its volatile state that a reset drops, and a status line for the control
//! socket. [`crate::purse_card`] and [`crate::sam_card`] are the two cards we emulate.

use purse::Rnd;
use rand::RngCore;

/// A card the loop can put in a vpcd reader. `process` persists any change of the card's
/// non-volatile state before it returns the answer (write-ahead, as a card's EEPROM).
pub trait Applet: Send + 'static {
    /// The program name its log lines start with.
    const NAME: &'static str;

    /// The ATR, as a T=1 card or (`t0`) as a T=0 card.
    fn atr(&self, t0: bool) -> &'static [u8];

    /// One command APDU in, `data || SW` out.
    fn process(&mut self, apdu: &[u8]) -> Vec<u8>;

    /// Power off/on, reset, or out of the field: the volatile state is gone.
    fn reset(&mut self);

    /// The loop ends (SIGTERM, a stopper): a last chance to tidy the stored state.
    fn close(&mut self) {}

    /// `key=value` words for the control socket's `status` reply.
    fn status(&self) -> String;
}

/// 16 random bytes from the OS (RND_C, RND_S). A card that cannot draw randomness must
/// not answer at all: the process exits.
pub fn os_rnd(name: &str) -> Rnd {
    let mut b = [0u8; 16];
    if let Err(e) = rand::rngs::OsRng.try_fill_bytes(&mut b) {
        eprintln!("{name}: error: the OS random generator failed: {e}");
        std::process::exit(70);
    }
    Rnd(b)
}

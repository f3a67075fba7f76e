//! A purse card in a PC/SC reader (through pcscd) as a [`CardLink`], and waiting for a
//! card to arrive in or leave a reader without polling.

use std::ffi::CString;
use std::time::{Duration, Instant};

use pcsc::{Context, Disposition, Protocols, ReaderState, Scope, ShareMode, State};
use purse::surrogate::{CardLink, LinkError};
use thiserror::Error;

/// The first slot of vsmartcard's vpcd driver (TCP port 35963).
pub const VPCD_READER: &str = "Virtual PCD 00 00";

#[derive(Debug, Error)]
pub enum PcscError {
    #[error("the PC/SC service (pcscd) is not running; start it with `pcscd -f -a &` or scripts/test-all")]
    NoService,
    #[error("pcscd has no reader '{0}': is vsmartcard-vpcd installed (/etc/reader.conf.d/vpcd) and was pcscd started after it?")]
    NoReader(String),
    #[error("timed out after {1:?} waiting for the card to be {0} in the reader")]
    Timeout(&'static str, Duration),
    #[error("PC/SC: {0}")]
    Pcsc(#[from] pcsc::Error),
}

/// Connects to the PC/SC service.
pub fn establish() -> Result<Context, PcscError> {
    Context::establish(Scope::User).map_err(|e| match e {
        pcsc::Error::NoService | pcsc::Error::ServiceStopped => PcscError::NoService,
        e => PcscError::Pcsc(e),
    })
}

/// Waits until a card is present (or absent) in `reader`, on pcscd's own notifications.
pub fn wait_for_card(
    ctx: &Context,
    reader: &str,
    present: bool,
    timeout: Duration,
) -> Result<(), PcscError> {
    let name = CString::new(reader).map_err(|_| PcscError::NoReader(reader.into()))?;
    let mut states = [ReaderState::new(name, State::UNAWARE)];
    let deadline = Instant::now() + timeout;
    let what = if present { "present" } else { "absent" };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match ctx.get_status_change(left, &mut states) {
            Ok(()) => {}
            Err(pcsc::Error::Timeout) => return Err(PcscError::Timeout(what, timeout)),
            Err(pcsc::Error::UnknownReader) => return Err(PcscError::NoReader(reader.into())),
            Err(pcsc::Error::NoService | pcsc::Error::ServiceStopped) => {
                return Err(PcscError::NoService)
            }
            Err(e) => return Err(e.into()),
        }
        let s = states[0].event_state();
        if s.contains(State::UNKNOWN) {
            return Err(PcscError::NoReader(reader.into()));
        }
        let has_card = s.contains(State::PRESENT) && !s.contains(State::MUTE);
        // Absent means EMPTY: a card pcscd is still tearing down is neither.
        if has_card == present && (present || s.contains(State::EMPTY)) {
            return Ok(());
        }
        states[0].sync_current_state();
    }
}

/// A connected card. Each transmit is one APDU exchange.
pub struct PcscLink {
    /// Always `Some` until drop.
    card: Option<pcsc::Card>,
}

impl PcscLink {
    pub fn connect(ctx: &Context, reader: &str) -> Result<PcscLink, PcscError> {
        let name = CString::new(reader).map_err(|_| PcscError::NoReader(reader.into()))?;
        let card = ctx.connect(&name, ShareMode::Shared, Protocols::ANY)?;
        Ok(PcscLink { card: Some(card) })
    }
}

impl Drop for PcscLink {
    /// Leaves the card as it is. pcsc's own drop resets it; when the card has already
    /// gone, pcscd's failed reset marks the reader empty behind its polling thread's back
    /// and a card inserted within the next poll is never reported.
    fn drop(&mut self) {
        if let Some(card) = self.card.take() {
            let _ = card.disconnect(Disposition::LeaveCard);
        }
    }
}

impl CardLink for PcscLink {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, LinkError> {
        let Some(card) = &self.card else {
            return Err(LinkError("the card is disconnected".into()));
        };
        let mut buf = [0u8; pcsc::MAX_BUFFER_SIZE];
        match card.transmit(apdu, &mut buf) {
            // pcscd hands back an empty answer when the card left mid-exchange.
            Ok(r) if r.len() < 2 => Err(LinkError(
                "no answer: the card left during the exchange".into(),
            )),
            Ok(r) => Ok(r.to_vec()),
            // A card pulled during a transmit surfaces as NotTransacted, not RemovedCard.
            Err(pcsc::Error::RemovedCard | pcsc::Error::NotTransacted | pcsc::Error::ResetCard) => {
                Err(LinkError(
                    "the card was removed or reset during the exchange".into(),
                ))
            }
            Err(e) => Err(LinkError(format!("PC/SC transmit failed: {e}"))),
        }
    }
}

//! The PC/SC side of the host: the service, its readers, finding the purse card among
//! them ([`choice`] decides), waiting for a card ([`wait`]), holding a card for a
//! session, and one APDU exchange, each failure mapped to the error catalogue. Thin over
//! the `pcsc` crate; the decisions live in the guard, the session and [`choice`].

pub mod choice;
mod wait;

use std::ffi::CString;
use std::time::Duration;

use pcsc::{Context, Disposition, Protocols, ReaderState, Scope, ShareMode, State};
use purse::commands::{CardCommand, SelectInfo};
use purse::{StatusWord, APP_VERSION};

use crate::catalogue::{ErrorCode, Failure};
use choice::{Holding, Probed};

pub use wait::CancelHook;

/// Maps a PC/SC error to the catalogue; `what` says what was being done.
pub fn failure(e: pcsc::Error, what: &str) -> Failure {
    use pcsc::Error as E;
    let code = match e {
        E::NoService | E::ServiceStopped | E::InvalidHandle => ErrorCode::NoPcscService,
        E::NoReadersAvailable | E::UnknownReader | E::ReaderUnavailable => ErrorCode::NoReader,
        E::NoSmartcard => ErrorCode::NoCard,
        // A card pulled during a transmit surfaces as NotTransacted, not RemovedCard.
        E::RemovedCard | E::NotTransacted | E::ResetCard => ErrorCode::CardRemoved,
        E::SharingViolation => ErrorCode::Busy,
        E::Timeout => ErrorCode::Timeout,
        E::Cancelled => ErrorCode::UserCancelled,
        E::UnsupportedCard | E::CardUnsupported | E::UnpoweredCard | E::UnresponsiveCard => {
            ErrorCode::UnsupportedCard
        }
        _ => ErrorCode::CardError,
    };
    Failure::new(code, format!("{what}: {e}"))
}

/// A reader and whether a card is in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderInfo {
    pub name: String,
    /// A card that answered the reader's reset.
    pub card_present: bool,
    /// A card that is in but gave no answer to reset.
    pub mute: bool,
}

/// The PC/SC service, connected on first use and again after pcscd restarted.
#[derive(Default)]
pub struct Pcsc {
    ctx: Option<Context>,
    /// The reader last chosen for the purse card when none was named: what a wait for
    /// that card to leave reports when it has already left.
    purse_chosen: Option<String>,
}

impl Pcsc {
    fn context(&mut self) -> Result<Context, Failure> {
        if let Some(ctx) = &self.ctx {
            if ctx.is_valid().is_ok() {
                return Ok(ctx.clone());
            }
            self.ctx = None;
        }
        let ctx = Context::establish(Scope::User).map_err(|e| match e {
            pcsc::Error::NoService | pcsc::Error::ServiceStopped => Failure::new(
                ErrorCode::NoPcscService,
                format!("SCardEstablishContext: {e}"),
            ),
            e => failure(e, "SCardEstablishContext"),
        })?;
        self.ctx = Some(ctx.clone());
        Ok(ctx)
    }

    /// Whether the service answers.
    pub fn is_up(&mut self) -> bool {
        self.context().is_ok()
    }

    /// Every reader with whether a card is in it.
    pub fn readers(&mut self) -> Result<Vec<ReaderInfo>, Failure> {
        let ctx = self.context()?;
        let names = match ctx.list_readers_owned() {
            Ok(n) => n,
            Err(pcsc::Error::NoReadersAvailable) => return Ok(Vec::new()),
            Err(e) => return Err(self.dropped(failure(e, "SCardListReaders"))),
        };
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut states: Vec<ReaderState> = names
            .into_iter()
            .map(|n| ReaderState::new(n, State::UNAWARE))
            .collect();
        ctx.get_status_change(Duration::ZERO, &mut states)
            .map_err(|e| self.dropped(failure(e, "SCardGetStatusChange")))?;
        Ok(states
            .iter()
            .map(|s| ReaderInfo {
                name: s.name().to_string_lossy().into_owned(),
                card_present: has_card(s.event_state()),
                mute: s.event_state().contains(State::MUTE),
            })
            .collect())
    }

    /// The reader to use: the one named (which must exist and hold a card), else the
    /// purse card's: every card is probed with the purse SELECT and [`choice::pick`]
    /// decides (the first purse card by reader name; `no_card` naming the other cards
    /// when none is a purse card).
    pub fn choose(&mut self, wanted: Option<&str>) -> Result<String, Failure> {
        let readers = self.readers()?;
        if readers.is_empty() {
            return Err(Failure::new(ErrorCode::NoReader, "PC/SC lists no reader"));
        }
        let Some(w) = wanted else {
            let pick = choice::pick(&self.probe_all(&readers)?)?;
            if !pick.passed_over.is_empty() {
                eprintln!(
                    "native-host: purse cards in several readers: using '{}' (the first by \
                     name), not '{}'",
                    pick.reader,
                    pick.passed_over.join("', '")
                );
            }
            self.purse_chosen = Some(pick.reader.clone());
            return Ok(pick.reader);
        };
        let Some(found) = readers.iter().find(|r| r.name == w) else {
            return Err(Failure::new(
                ErrorCode::NoReader,
                format!("no reader named '{w}'"),
            ));
        };
        if !found.card_present {
            return Err(Failure::new(
                ErrorCode::NoCard,
                format!("no card in '{}'", found.name),
            ));
        }
        Ok(found.name.clone())
    }

    /// Connects to the card in `reader`: exclusively for a session (any other
    /// connection, from this process or another, gets `busy` at once), shared for a
    /// look at the card.
    pub fn connect(&mut self, reader: &str, exclusive: bool) -> Result<Connected, Failure> {
        let ctx = self.context()?;
        connect(&ctx, reader, exclusive)
    }

    /// What each reader holds: every card is looked at with the purse SELECT
    /// ([`probe`]); a mute card is another card.
    pub fn probe_all(&mut self, readers: &[ReaderInfo]) -> Result<Vec<Probed>, Failure> {
        let ctx = self.context()?;
        let mut probed = Vec::with_capacity(readers.len());
        for r in readers {
            let holding = if r.card_present {
                probe(&ctx, &r.name).map_err(|f| self.dropped(f))?
            } else if r.mute {
                Holding::Other("it does not answer".into())
            } else {
                Holding::Empty
            };
            probed.push(Probed {
                reader: r.name.clone(),
                holding,
            });
        }
        Ok(probed)
    }

    /// Forgets a context that failed with `f` when the service went away.
    fn dropped(&mut self, f: Failure) -> Failure {
        if f.code == ErrorCode::NoPcscService {
            self.ctx = None;
        }
        f
    }
}

fn has_card(s: State) -> bool {
    s.contains(State::PRESENT) && !s.contains(State::MUTE)
}

fn reader_name(reader: &str) -> Result<CString, Failure> {
    CString::new(reader)
        .map_err(|_| Failure::new(ErrorCode::NoReader, "a reader name with a NUL byte"))
}

fn connect(ctx: &Context, reader: &str, exclusive: bool) -> Result<Connected, Failure> {
    let mode = if exclusive {
        ShareMode::Exclusive
    } else {
        ShareMode::Shared
    };
    let card = ctx
        .connect(&reader_name(reader)?, mode, Protocols::ANY)
        .map_err(|e| failure(e, &format!("SCardConnect to '{reader}'")))?;
    Ok(Connected { card: Some(card) })
}

/// Looks at the card in `reader` on a shared connection (left as it is afterwards) with
/// the purse SELECT. `Err` only when the PC/SC service failed.
fn probe(ctx: &Context, reader: &str) -> Result<Holding, Failure> {
    let found = connect(ctx, reader, false).and_then(|c| match c.card() {
        Some(card) => select_purse(card),
        None => Err(Failure::new(ErrorCode::Internal, "card handle gone")),
    });
    Ok(match found {
        Ok(info) => Holding::Purse(info),
        Err(f) if f.code == ErrorCode::NoPcscService => return Err(f),
        Err(f) if f.code == ErrorCode::UnsupportedCard => Holding::Other(f.detail),
        // It left between the listing and the connect.
        Err(f) if f.code == ErrorCode::NoCard => Holding::Empty,
        Err(f) => Holding::Unknown(f),
    })
}

/// A connected card; disconnected on drop, leaving the card as it is. (pcsc's own drop
/// resets it, and when the card has already gone, pcscd's failed reset marks the reader
/// empty behind its polling thread's back, so a card inserted within the next poll
/// would never be reported.)
pub struct Connected {
    /// `Some` until drop.
    card: Option<pcsc::Card>,
}

impl Connected {
    pub fn card_mut(&mut self) -> Option<&mut pcsc::Card> {
        self.card.as_mut()
    }

    pub fn card(&self) -> Option<&pcsc::Card> {
        self.card.as_ref()
    }
}

impl Drop for Connected {
    fn drop(&mut self) {
        if let Some(card) = self.card.take() {
            let _ = card.disconnect(Disposition::LeaveCard);
        }
    }
}

/// One command to the card and its complete answer: a T=0 card's `61xx` and `6Cxx` are
/// followed ([`crate::t0`]), never relayed.
pub fn transmit(card: &pcsc::Card, apdu: &[u8]) -> Result<Vec<u8>, Failure> {
    crate::t0::exchange(apdu, |c| transmit_once(card, c))
}

/// One APDU exchange. An answer shorter than a status word is a failed exchange (what
/// pcscd returns when the card left mid-exchange), never a status word.
fn transmit_once(card: &pcsc::Card, apdu: &[u8]) -> Result<Vec<u8>, Failure> {
    let mut buf = [0u8; pcsc::MAX_BUFFER_SIZE];
    match card.transmit(apdu, &mut buf) {
        Ok(r) if r.len() < 2 => Err(Failure::new(
            ErrorCode::CardRemoved,
            "no answer: the card left during the exchange",
        )),
        Ok(r) => Ok(r.to_vec()),
        Err(e) => Err(failure(e, "SCardTransmit")),
    }
}

/// SELECTs the purse and reads its FCI; `unsupported_card` for anything but a purse of
/// our application version.
pub fn select_purse(card: &pcsc::Card) -> Result<SelectInfo, Failure> {
    let r = transmit(card, &CardCommand::select().encode())?;
    // transmit() returns at least the two status-word bytes.
    let (data, sw) = match r.as_slice() {
        [data @ .., a, b] => (data, StatusWord(u16::from_be_bytes([*a, *b]))),
        _ => return Err(Failure::new(ErrorCode::CardRemoved, "no answer to SELECT")),
    };
    if !sw.is_ok() {
        return Err(Failure::new(
            ErrorCode::UnsupportedCard,
            format!("SELECT of the purse answered {sw}"),
        ));
    }
    let info = SelectInfo::parse(data)
        .map_err(|e| Failure::new(ErrorCode::UnsupportedCard, format!("SELECT answer: {e}")))?;
    if info.app_version != APP_VERSION {
        return Err(Failure::new(
            ErrorCode::UnsupportedCard,
            format!("purse application version {}", info.app_version),
        ));
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcsc_errors_map_to_the_catalogue() {
        use pcsc::Error as E;
        for (e, code) in [
            (E::NoService, ErrorCode::NoPcscService),
            (E::ServiceStopped, ErrorCode::NoPcscService),
            (E::NoReadersAvailable, ErrorCode::NoReader),
            (E::UnknownReader, ErrorCode::NoReader),
            (E::NoSmartcard, ErrorCode::NoCard),
            (E::RemovedCard, ErrorCode::CardRemoved),
            (E::NotTransacted, ErrorCode::CardRemoved),
            (E::ResetCard, ErrorCode::CardRemoved),
            (E::SharingViolation, ErrorCode::Busy),
            (E::Timeout, ErrorCode::Timeout),
            (E::Cancelled, ErrorCode::UserCancelled),
            (E::UnpoweredCard, ErrorCode::UnsupportedCard),
            (E::CommError, ErrorCode::CardError),
        ] {
            assert_eq!(failure(e, "x").code, code, "{e:?}");
        }
    }
}

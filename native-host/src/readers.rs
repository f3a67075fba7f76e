//! The PC/SC side of the host: the service, its readers, waiting for a card, holding a
//! card for a session, and one APDU exchange, each failure mapped to the error
//! catalogue. Thin over the `pcsc` crate; the decisions live in the guard and session.

use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pcsc::{Context, Disposition, Protocols, ReaderState, Scope, ShareMode, State};
use purse::commands::{CardCommand, SelectInfo};
use purse::{StatusWord, APP_VERSION};

use crate::catalogue::{ErrorCode, Failure};

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

/// Lets another thread end a blocking wait (the extension's `cancel`, or the browser
/// closing the pipe): set the flag, then cancel the registered context.
#[derive(Default)]
pub struct CancelHook {
    requested: AtomicBool,
    waiting: Mutex<Option<Context>>,
}

impl CancelHook {
    pub fn cancel(&self) {
        self.requested.store(true, Ordering::SeqCst);
        if let Ok(guard) = self.waiting.lock() {
            if let Some(ctx) = guard.as_ref() {
                let _ = ctx.cancel();
            }
        }
    }

    /// Called when the cancel request itself is handled: later waits run again.
    pub fn clear(&self) {
        self.requested.store(false, Ordering::SeqCst);
    }

    fn register(&self, ctx: Option<Context>) {
        if let Ok(mut guard) = self.waiting.lock() {
            *guard = ctx;
        }
    }

    fn requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }
}

/// A reader and whether a card is in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReaderInfo {
    pub name: String,
    pub card_present: bool,
}

/// The PC/SC service, connected on first use and again after pcscd restarted.
#[derive(Default)]
pub struct Pcsc {
    ctx: Option<Context>,
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
            })
            .collect())
    }

    /// The reader to use: the one named (which must exist and hold a card), else the
    /// first that holds a card.
    pub fn choose(&mut self, wanted: Option<&str>) -> Result<String, Failure> {
        let readers = self.readers()?;
        if readers.is_empty() {
            return Err(Failure::new(ErrorCode::NoReader, "PC/SC lists no reader"));
        }
        let found = match wanted {
            Some(w) => match readers.iter().find(|r| r.name == w) {
                Some(r) => r,
                None => {
                    return Err(Failure::new(
                        ErrorCode::NoReader,
                        format!("no reader named '{w}'"),
                    ))
                }
            },
            None => match readers.iter().find(|r| r.card_present) {
                Some(r) => r,
                None => {
                    return Err(Failure::new(
                        ErrorCode::NoCard,
                        format!("no card in {} reader(s)", readers.len()),
                    ))
                }
            },
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
        let name = CString::new(reader)
            .map_err(|_| Failure::new(ErrorCode::NoReader, "a reader name with a NUL byte"))?;
        let mode = if exclusive {
            ShareMode::Exclusive
        } else {
            ShareMode::Shared
        };
        let card = ctx
            .connect(&name, mode, Protocols::ANY)
            .map_err(|e| failure(e, &format!("SCardConnect to '{reader}'")))?;
        Ok(Connected { card: Some(card) })
    }

    /// Waits until a card is in (`present`) or out of `reader` (or any reader / every
    /// reader when none is named). Returns the reader. Ends early with `user_cancelled`
    /// when `hook` is cancelled.
    pub fn wait(
        &mut self,
        reader: Option<&str>,
        present: bool,
        timeout: Duration,
        hook: &CancelHook,
    ) -> Result<String, Failure> {
        let ctx = self.context()?;
        let all = self.readers()?;
        let names: Vec<String> = match reader {
            Some(r) if all.iter().any(|i| i.name == r) => vec![r.to_string()],
            Some(r) => {
                return Err(Failure::new(
                    ErrorCode::NoReader,
                    format!("no reader named '{r}'"),
                ))
            }
            None if all.is_empty() => {
                return Err(Failure::new(ErrorCode::NoReader, "PC/SC lists no reader"))
            }
            None => all.into_iter().map(|i| i.name).collect(),
        };
        let mut states = Vec::with_capacity(names.len());
        for n in &names {
            let c = CString::new(n.as_str())
                .map_err(|_| Failure::new(ErrorCode::NoReader, "a reader name with a NUL byte"))?;
            states.push(ReaderState::new(c, State::UNAWARE));
        }
        hook.register(Some(ctx.clone()));
        let result = wait_states(&ctx, &mut states, present, timeout, hook);
        hook.register(None);
        result.map_err(|e| match e.code {
            ErrorCode::NoPcscService => self.dropped(e),
            _ => e,
        })
    }

    /// Forgets a context that failed with `f` when the service went away.
    fn dropped(&mut self, f: Failure) -> Failure {
        if f.code == ErrorCode::NoPcscService {
            self.ctx = None;
        }
        f
    }
}

/// The longest a wait blocks before it looks at the cancel flag again.
const CANCEL_SLICE: Duration = Duration::from_millis(500);

fn has_card(s: State) -> bool {
    s.contains(State::PRESENT) && !s.contains(State::MUTE)
}

fn wait_states(
    ctx: &Context,
    states: &mut [ReaderState],
    present: bool,
    timeout: Duration,
    hook: &CancelHook,
) -> Result<String, Failure> {
    let deadline = Instant::now() + timeout;
    loop {
        if hook.requested() {
            return Err(Failure::new(
                ErrorCode::UserCancelled,
                "the wait was cancelled",
            ));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        // In slices: a cancel that lands just before the blocking call starts is not
        // remembered by pcscd, so the flag is looked at again at least this often.
        match ctx.get_status_change(left.min(CANCEL_SLICE), states) {
            Ok(()) => {}
            Err(pcsc::Error::Timeout) if left > CANCEL_SLICE => continue,
            Err(pcsc::Error::Timeout) => {
                return Err(Failure::new(
                    ErrorCode::Timeout,
                    format!(
                        "no card {} within {} ms",
                        if present { "arrived" } else { "left" },
                        timeout.as_millis()
                    ),
                ))
            }
            Err(e) => return Err(failure(e, "SCardGetStatusChange")),
        }
        let name = |s: &ReaderState| s.name().to_string_lossy().into_owned();
        if present {
            if let Some(s) = states.iter().find(|s| has_card(s.event_state())) {
                return Ok(name(s));
            }
        } else if states
            .iter()
            .all(|s| s.event_state().contains(State::EMPTY))
        {
            // Absent means EMPTY: a card pcscd is still tearing down is neither.
            return Ok(states.first().map(name).unwrap_or_default());
        }
        if states
            .iter()
            .any(|s| s.event_state().contains(State::UNKNOWN))
        {
            return Err(Failure::new(ErrorCode::NoReader, "the reader went away"));
        }
        for s in states.iter_mut() {
            s.sync_current_state();
        }
    }
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

//! Waiting for a card to arrive in or leave a reader, on pcscd's notifications, in
//! slices so that a cancel is never missed. With no reader named, the wait is about the
//! purse card: it arrives when a reader holds a card that may be one (cards that refuse
//! the purse SELECT, such as a laptop's ID card or a SAM, are passed over), and it has
//! left when the readers that held one are empty; the other cards may stay.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pcsc::{Context, ReaderState, State};

use super::choice::Holding;
use super::{failure, has_card, probe, reader_name, Pcsc};
use crate::catalogue::{ErrorCode, Failure};

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

/// What a wait waits for in the readers it watches.
enum Goal {
    /// A card in one of them.
    Card,
    /// A card that may be the purse card in one of them. Cards that refused the purse
    /// SELECT, by reader and pcscd's event count (which moves on when a card comes or
    /// goes), are not probed again.
    Purse { passed: Vec<(String, u32)> },
    /// All of them empty.
    Empty,
}

impl Pcsc {
    /// Waits until a card is in (`present`) or out of `reader`. With none named: until a
    /// card that may be the purse card is in a reader, or until the readers holding one
    /// are empty (at once when none does). Returns the reader. Ends early with
    /// `user_cancelled` when `hook` is cancelled.
    pub fn wait(
        &mut self,
        reader: Option<&str>,
        present: bool,
        timeout: Duration,
        hook: &CancelHook,
    ) -> Result<String, Failure> {
        let ctx = self.context()?;
        let all = self.readers()?;
        let (names, goal) = match reader {
            Some(r) if all.iter().any(|i| i.name == r) => {
                let goal = if present { Goal::Card } else { Goal::Empty };
                (vec![r.to_string()], goal)
            }
            Some(r) => {
                return Err(Failure::new(
                    ErrorCode::NoReader,
                    format!("no reader named '{r}'"),
                ))
            }
            None if all.is_empty() => {
                return Err(Failure::new(ErrorCode::NoReader, "PC/SC lists no reader"))
            }
            None if present => (
                all.into_iter().map(|i| i.name).collect(),
                Goal::Purse { passed: Vec::new() },
            ),
            None => {
                let watched: Vec<String> = self
                    .probe_all(&all)?
                    .into_iter()
                    .filter(|p| p.holding.may_be_purse())
                    .map(|p| p.reader)
                    .collect();
                if watched.is_empty() {
                    // No purse card is in: whatever else is, it has left.
                    let chosen = self.purse_chosen.as_ref();
                    let gone = all.iter().find(|i| Some(&i.name) == chosen).or(all.first());
                    return Ok(gone.map(|i| i.name.clone()).unwrap_or_default());
                }
                (watched, Goal::Empty)
            }
        };
        let mut states = Vec::with_capacity(names.len());
        for n in &names {
            states.push(ReaderState::new(reader_name(n)?, State::UNAWARE));
        }
        hook.register(Some(ctx.clone()));
        let result = wait_states(&ctx, &mut states, goal, timeout, hook);
        hook.register(None);
        result.map_err(|e| self.dropped(e))
    }
}

/// The longest a wait blocks before it looks at the cancel flag again.
const CANCEL_SLICE: Duration = Duration::from_millis(500);

fn wait_states(
    ctx: &Context,
    states: &mut [ReaderState],
    mut goal: Goal,
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
                let what = match goal {
                    Goal::Card => "no card arrived",
                    Goal::Purse { .. } => "no purse card arrived",
                    Goal::Empty => "no card left",
                };
                return Err(Failure::new(
                    ErrorCode::Timeout,
                    format!("{what} within {} ms", timeout.as_millis()),
                ));
            }
            Err(e) => return Err(failure(e, "SCardGetStatusChange")),
        }
        if let Some(reader) = reached(ctx, states, &mut goal)? {
            return Ok(reader);
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

/// The reader where `goal` is reached, if it is.
fn reached(
    ctx: &Context,
    states: &[ReaderState],
    goal: &mut Goal,
) -> Result<Option<String>, Failure> {
    let name = |s: &ReaderState| s.name().to_string_lossy().into_owned();
    let mut with_card = states.iter().filter(|s| has_card(s.event_state()));
    Ok(match goal {
        Goal::Card => with_card.next().map(name),
        Goal::Purse { passed } => {
            for s in with_card {
                let seen = (name(s), s.event_count());
                if passed.contains(&seen) {
                    continue;
                }
                match probe(ctx, &seen.0)? {
                    h if h.may_be_purse() => return Ok(Some(seen.0)),
                    Holding::Other(_) => passed.push(seen),
                    // Gone again before it was looked at: its next event says more.
                    _ => {}
                }
            }
            None
        }
        // Absent means EMPTY: a card pcscd is still tearing down is neither.
        Goal::Empty => states
            .iter()
            .all(|s| s.event_state().contains(State::EMPTY))
            .then(|| states.first().map(name).unwrap_or_default()),
    })
}

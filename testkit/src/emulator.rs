//! The card emulators for a test: the `card-emulator` or `sam-emulator` binary as a
//! child process, or the purse card's or the SAM card's loop from the `card_emulators`
//! library in a thread of the test process (for crates that cannot name the binary).
//! Either way it sits in a locked vpcd slot with a control socket, is driven through
//! that socket, and is stopped on drop.

use std::cell::Cell;
use std::ffi::CString;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use card_emulators::applet::{os_rnd, Applet};
use card_emulators::control::{self, SocketFile};
use card_emulators::purse_card::PurseCard;
use card_emulators::run::{self, Stopper};
use card_emulators::sam_card::SamCard;
use card_emulators::sam_store::SamFileStore;
use card_emulators::store::FileStore;
use card_emulators::wake;
use pcsc::{Context, ReaderState, Scope, State};
use purse::card::Card;
use purse::Rnd;

use super::{SlotLock, CARD_EVENT_TIMEOUT};

/// How long the emulator may take to load its state and bind its control socket, or to
/// exit after SIGTERM.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(10);

/// The stderr line the emulator prints once its control socket accepts connections.
const READY: &str = "control socket listening on";

/// What the emulated card is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardKind {
    /// A purse card (T=1).
    Purse,
    /// A card of another kind: no purse application (SELECT of it answers 6A82).
    WithoutPurse,
    /// A purse card that answers as a T=0 card: data after `61xx` and GET RESPONSE.
    PurseT0,
}

/// The emulator's answer to `status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmulatorStatus {
    pub inserted: bool,
    pub connected: bool,
    pub balance: u32,
    pub nt_last: u32,
}

/// Where the emulator loop runs.
enum Runner {
    Process(Child),
    Thread {
        stopper: Stopper,
        /// `Some` until joined.
        handle: Option<JoinHandle<()>>,
        /// Removes the control socket file when the emulator goes.
        _socket: SocketFile,
    },
}

/// A running card emulator. A child's stderr is forwarded to the test's stderr.
pub struct Emulator {
    runner: Runner,
    control: PathBuf,
    card_file: PathBuf,
    /// The reader it is in (None against a fake vpcd).
    reader: Option<&'static str>,
    /// pcscd's event count while the card was last known present, kept from the moment
    /// it may leave (remove, pull, stop) until pcscd has registered that it left.
    pending_removal: Cell<Option<u32>>,
}

impl Emulator {
    /// Starts the `card-emulator` binary at `bin` (a test's
    /// `env!("CARGO_BIN_EXE_card-emulator")`) with the card inserted in the locked slot.
    /// The control socket goes next to the card file.
    pub fn spawn(bin: &str, lock: &SlotLock, card_file: &Path) -> Emulator {
        Emulator::spawn_with(bin, lock, card_file, &[])
    }

    /// Like [`Emulator::spawn`], with extra arguments (e.g. `--removed`, `-v`).
    pub fn spawn_with(bin: &str, lock: &SlotLock, card_file: &Path, extra: &[&str]) -> Emulator {
        let mut emulator = Emulator::spawn_on_port(bin, lock.slot().port, card_file, extra);
        emulator.reader = Some(lock.slot().reader);
        emulator
    }

    /// Starts the binary against any vpcd port (a fake vpcd in wire-level tests).
    pub fn spawn_on_port(bin: &str, port: u16, card_file: &Path, extra: &[&str]) -> Emulator {
        let control = card_file.with_extension("ctl");
        let mut child = Command::new(bin)
            .arg("--card")
            .arg(card_file)
            .arg("--vpcd-port")
            .arg(port.to_string())
            .arg("--control")
            .arg(&control)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {bin}: {e}"));
        let Some(stderr) = child.stderr.take() else {
            panic!("card-emulator stderr not captured");
        };
        // Forward stderr and report readiness (or an early exit) through a channel.
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        thread::spawn(move || {
            let mut ready_tx = Some(ready_tx);
            let mut early = String::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("{line}");
                if ready_tx.is_some() {
                    early.push_str(&line);
                    early.push('\n');
                }
                if line.contains(READY) {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(Ok(()));
                    }
                }
            }
            if let Some(tx) = ready_tx {
                let _ = tx.send(Err(early));
            }
        });
        let emulator = Emulator {
            runner: Runner::Process(child),
            control,
            card_file: card_file.to_path_buf(),
            reader: None,
            pending_removal: Cell::new(None),
        };
        match ready_rx.recv_timeout(PROCESS_TIMEOUT) {
            Ok(Ok(())) => emulator,
            Ok(Err(log)) => panic!("card-emulator exited before it was ready:\n{log}"),
            Err(_) => panic!("card-emulator not ready after {PROCESS_TIMEOUT:?}"),
        }
    }

    /// Runs the emulator loop of the `card_emulators` library in a thread of
    /// this process, in the locked slot, inserted or not. Same control socket (next to
    /// the card file) and the same behaviour as the binary, minus its signals.
    pub fn in_process(lock: &SlotLock, card_file: &Path, inserted: bool) -> Emulator {
        Emulator::in_process_as(lock, card_file, inserted, CardKind::Purse)
    }

    /// [`Emulator::in_process`], as a card of the given kind.
    pub fn in_process_as(
        lock: &SlotLock,
        card_file: &Path,
        inserted: bool,
        kind: CardKind,
    ) -> Emulator {
        let store = FileStore::new(card_file);
        let state = store
            .load()
            .unwrap_or_else(|e| panic!("loading the card state: {e:#}"));
        let card = Card::new(state, Box::new(os_random));
        let applet = PurseCard::new(card, store, kind == CardKind::WithoutPurse);
        Emulator::in_process_applet(lock, card_file, inserted, kind == CardKind::PurseT0, applet)
    }

    /// A SAM card (the `sam-emulator`'s applet, its file and journal at `sam_file`) in
    /// the locked slot, in a thread of this process: a smart card that is not a purse
    /// card (it answers the purse SELECT with 6A82), as on a shop's machine.
    pub fn in_process_sam(lock: &SlotLock, sam_file: &Path, inserted: bool) -> Emulator {
        let (state, store) = SamFileStore::open(sam_file)
            .unwrap_or_else(|e| panic!("loading the SAM card {}: {e:#}", sam_file.display()));
        let applet = SamCard::new(state, store);
        Emulator::in_process_applet(lock, sam_file, inserted, false, applet)
    }

    fn in_process_applet<A: Applet>(
        lock: &SlotLock,
        card_file: &Path,
        inserted: bool,
        t0: bool,
        applet: A,
    ) -> Emulator {
        let control = card_file.with_extension("ctl");
        let (waker, wake_rx) = wake::channel().unwrap_or_else(|e| panic!("wake channel: {e}"));
        let (req_tx, req_rx) = mpsc::channel();
        let socket = control::serve(&control, req_tx, waker.clone())
            .unwrap_or_else(|e| panic!("control socket {}: {e:#}", control.display()));
        let opts = run::Options {
            host: "127.0.0.1".into(),
            port: lock.slot().port,
            inserted,
            verbose: false,
            t0,
        };
        let emulator = run::Emulator::new(applet, opts, req_rx, wake_rx);
        let stopper = emulator.stopper(waker);
        let handle = thread::Builder::new()
            .name(A::NAME.into())
            .spawn(move || {
                if let Err(e) = emulator.run() {
                    eprintln!("{} (in-process): {e:#}", A::NAME);
                }
            })
            .unwrap_or_else(|e| panic!("spawning the emulator thread: {e}"));
        Emulator {
            runner: Runner::Thread {
                stopper,
                handle: Some(handle),
                _socket: socket,
            },
            control,
            card_file: card_file.to_path_buf(),
            reader: Some(lock.slot().reader),
            pending_removal: Cell::new(None),
        }
    }

    pub fn card_file(&self) -> &Path {
        &self.card_file
    }

    /// The child's PID (to signal it); panics for an in-process emulator.
    pub fn pid(&self) -> u32 {
        match &self.runner {
            Runner::Process(child) => child.id(),
            Runner::Thread { .. } => panic!("an in-process emulator has no PID of its own"),
        }
    }

    /// Sends one control command and returns its reply line; panics on an `err` reply.
    pub fn control(&self, command: &str) -> String {
        let reply = self.try_control(command);
        assert!(
            reply.starts_with("ok"),
            "control '{command}' answered '{reply}'"
        );
        reply
    }

    /// Sends one control command and returns its reply line, whatever it is.
    pub fn try_control(&self, command: &str) -> String {
        let mut s = UnixStream::connect(&self.control)
            .unwrap_or_else(|e| panic!("connecting {}: {e}", self.control.display()));
        let _ = s.set_read_timeout(Some(PROCESS_TIMEOUT));
        writeln!(s, "{command}").unwrap_or_else(|e| panic!("control write: {e}"));
        let mut line = String::new();
        BufReader::new(s)
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("control '{command}': no reply: {e}"));
        line.trim_end().to_string()
    }

    /// Takes the card out of the reader (disconnects from vpcd).
    pub fn remove(&self) {
        self.note_present();
        self.control("remove");
    }

    /// Puts the card back (connects to vpcd), once pcscd has registered that it left
    /// (see `await_removal`).
    pub fn insert(&self) {
        if !self.status().inserted {
            if let Some(count) = self.pending_removal.take() {
                self.await_removal(count).unwrap_or_else(|e| panic!("{e}"));
            }
        }
        self.control("insert");
    }

    /// On the next command with this INS: process it (state persisted), then leave the
    /// reader without answering — a lost response.
    pub fn pull_after(&self, ins: u8) {
        self.note_present();
        self.control(&format!("pull-after {ins:02X}"));
    }

    /// On the next command with this INS: leave the reader without processing it.
    pub fn pull_before(&self, ins: u8) {
        self.note_present();
        self.control(&format!("pull-before {ins:02X}"));
    }

    /// One `key=value` word of the `status` reply (e.g. a SAM's `next_tx_seq`).
    pub fn status_value(&self, key: &str) -> String {
        let reply = self.control("status");
        reply
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
            .unwrap_or_else(|| panic!("no {key} in status '{reply}'"))
            .to_string()
    }

    /// The purse card's status (a purse card emulator only).
    pub fn status(&self) -> EmulatorStatus {
        let reply = self.control("status");
        let field = |k: &str| -> &str {
            reply
                .split_whitespace()
                .find_map(|w| w.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
                .unwrap_or_else(|| panic!("no {k} in status '{reply}'"))
        };
        let num = |k: &str| -> u32 {
            field(k)
                .parse()
                .unwrap_or_else(|_| panic!("bad {k} in status '{reply}'"))
        };
        EmulatorStatus {
            inserted: field("state") == "inserted",
            connected: field("connected") == "true",
            balance: num("balance"),
            nt_last: num("nt_last"),
        }
    }

    /// SIGTERM (or the stop handle), then waits for the exit and for pcscd to have seen
    /// the card leave; panics unless both happen cleanly in time.
    pub fn stop(mut self) {
        self.note_present();
        match &mut self.runner {
            Runner::Process(child) => {
                // SAFETY: kill(2) on our own child's PID, which we have not reaped yet.
                unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
                let status = wait_exit(child);
                assert!(status.success(), "card-emulator exited with {status}");
            }
            Runner::Thread {
                stopper, handle, ..
            } => {
                stopper.stop();
                if let Some(h) = handle.take() {
                    assert!(h.join().is_ok(), "the emulator thread panicked");
                }
            }
        }
        if let Some(count) = self.pending_removal.take() {
            self.await_removal(count).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// SIGKILL, as a crash or a power cut would end it: no clean shutdown, then waits for
    /// pcscd to have seen the card leave. A child process only.
    pub fn kill(mut self) {
        self.note_present();
        match &mut self.runner {
            Runner::Process(child) => {
                child
                    .kill()
                    .unwrap_or_else(|e| panic!("killing the emulator: {e}"));
                let _ = wait_exit(child);
            }
            Runner::Thread { .. } => panic!("an in-process emulator cannot be killed"),
        }
        if let Some(count) = self.pending_removal.take() {
            self.await_removal(count).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// Remembers pcscd's event count if it shows our card present now.
    fn note_present(&self) {
        let Some(reader) = self.reader.and_then(|r| CString::new(r).ok()) else {
            return;
        };
        let Ok(ctx) = Context::establish(Scope::User) else {
            return;
        };
        let mut rs = [ReaderState::new(reader, State::UNAWARE)];
        if ctx.get_status_change(Duration::ZERO, &mut rs).is_ok()
            && rs[0].event_state().contains(State::PRESENT)
        {
            self.pending_removal.set(Some(rs[0].event_count()));
        }
    }

    /// After the process is gone, waits until pcscd's reader poll has registered the
    /// removal: the reader is EMPTY *and* its event count moved on. EMPTY alone is not
    /// enough: a card handle disconnected with a reset after the emulator died marks
    /// the reader empty without the poll knowing, and a card that connects before that
    /// poll is then never reported present.
    fn await_removal(&self, count: u32) -> Result<(), String> {
        let Some(reader) = self.reader else {
            return Ok(());
        };
        let name = CString::new(reader).map_err(|e| e.to_string())?;
        let ctx = Context::establish(Scope::User).map_err(|e| e.to_string())?;
        let mut rs = [ReaderState::new(name, State::UNAWARE)];
        let deadline = Instant::now() + CARD_EVENT_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match ctx.get_status_change(left, &mut rs) {
                Ok(()) => {}
                Err(pcsc::Error::Timeout) => {
                    return Err(format!(
                        "pcscd did not register the emulator leaving '{reader}' within \
                         {CARD_EVENT_TIMEOUT:?} (state {:?})",
                        rs[0].event_state()
                    ))
                }
                Err(e) => return Err(format!("SCardGetStatusChange on '{reader}': {e}")),
            }
            if rs[0].event_state().contains(State::EMPTY) && rs[0].event_count() != count {
                return Ok(());
            }
            rs[0].sync_current_state();
        }
    }
}

/// Waits for a child with a deadline, on a helper thread blocked in waitpid (no
/// polling); kills it if the deadline passes.
fn wait_exit(child: &mut Child) -> ExitStatus {
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = mpsc::channel();
    thread::scope(|s| {
        s.spawn(|| {
            let _ = tx.send(child.wait());
        });
        match rx.recv_timeout(PROCESS_TIMEOUT) {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => panic!("waiting for card-emulator: {e}"),
            Err(_) => {
                // SAFETY: as above; the waiting thread then reaps it.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                panic!("card-emulator did not exit within {PROCESS_TIMEOUT:?} of SIGTERM");
            }
        }
    })
}

/// RND_C for an in-process card, from the OS as the binary draws it.
fn os_random() -> Rnd {
    os_rnd("card-emulator (in-process)")
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let running = match &mut self.runner {
            Runner::Process(child) => matches!(child.try_wait(), Ok(None)),
            Runner::Thread { handle, .. } => handle.is_some(),
        };
        if !running {
            return;
        }
        self.note_present();
        match &mut self.runner {
            Runner::Process(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Runner::Thread {
                stopper, handle, ..
            } => {
                stopper.stop();
                if let Some(h) = handle.take() {
                    let _ = h.join();
                }
            }
        }
        // Never panic in drop (it may run during a panic): report and go on.
        if let Some(count) = self.pending_removal.take() {
            if let Err(e) = self.await_removal(count) {
                eprintln!("{e}");
            }
        }
    }
}

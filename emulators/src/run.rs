//! The emulator loop: one thread owns the card ([`Applet`]: its application and store)
//! and the vpcd link, and waits in `poll(2)` on the link and the wake-up socket (control
//! commands, signals). [`run_binary`] is what both emulator binaries do once their card
//! is loaded. Inserted
//! means connected to vpcd; power off/on/reset from the reader and every disconnect
//! reset the card's volatile state, as pulling a real card out of the field would.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::applet::Applet;
use crate::control::{self, Command, Request};
use crate::framing::{classify, Control, Message};
use crate::t0::T0;
use crate::vpcd::{Backoff, Link};
use crate::wake::{self, take_signals, WakeReceiver, Waker};

#[derive(Clone, Debug)]
pub struct Options {
    pub host: String,
    pub port: u16,
    /// Start inserted (connect at once) or removed (wait for `insert`).
    pub inserted: bool,
    /// Log every APDU's INS and status word.
    pub verbose: bool,
    /// Be a T=0 card: answers with data come as `61xx` and need GET RESPONSE
    /// ([`super::t0`]); the ATR offers T=0 only.
    pub t0: bool,
}

pub struct Emulator<A: Applet> {
    applet: A,
    /// The T=0 transport's waiting data (used when `opts.t0`).
    t0: T0,
    opts: Options,
    link: Option<Link>,
    inserted: bool,
    pull_after: Option<u8>,
    pull_before: Option<u8>,
    backoff: Backoff,
    /// Whether the current run of failed connection attempts was already logged.
    outage_logged: bool,
    requests: Receiver<Request>,
    wake: WakeReceiver,
    /// Set by a [`Stopper`]: leave the loop as SIGTERM would.
    stop: Arc<AtomicBool>,
}

/// Stops a running loop from another thread, as SIGTERM stops the binary (an emulator
/// running in a thread of a test process has no signal of its own).
#[derive(Clone)]
pub struct Stopper {
    flag: Arc<AtomicBool>,
    waker: Waker,
}

impl Stopper {
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.waker.wake();
    }
}

// `A` resolves where the macro is used: inside `impl<A: Applet> Emulator<A>`.
macro_rules! log {
    ($($t:tt)*) => { eprintln!("{}: {}", A::NAME, format_args!($($t)*)) };
}

impl<A: Applet> Emulator<A> {
    pub fn new(
        applet: A,
        opts: Options,
        requests: Receiver<Request>,
        wake: WakeReceiver,
    ) -> Emulator<A> {
        Emulator {
            applet,
            t0: T0::default(),
            inserted: opts.inserted,
            opts,
            link: None,
            pull_after: None,
            pull_before: None,
            backoff: Backoff::new(),
            outage_logged: false,
            requests,
            wake,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A handle that ends [`Emulator::run`]; `waker` must wake this loop (the sender
    /// half of the channel whose receiver was passed to [`Emulator::new`]).
    pub fn stopper(&self, waker: Waker) -> Stopper {
        Stopper {
            flag: Arc::clone(&self.stop),
            waker,
        }
    }

    /// Runs until SIGTERM/SIGINT or a [`Stopper`].
    pub fn run(mut self) -> Result<()> {
        loop {
            let signals = take_signals();
            if signals.terminate || self.stop.load(Ordering::SeqCst) {
                self.disconnect();
                self.applet.close();
                log!("terminating");
                return Ok(());
            }
            if signals.remove {
                self.apply(Command::Remove);
            }
            if signals.insert {
                self.apply(Command::Insert);
            }
            // Commands from control connections, if any.
            while let Ok(req) = self.requests.try_recv() {
                let reply = self.apply(req.command);
                let _ = req.reply.send(reply);
            }
            if self.inserted && self.link.is_none() && self.backoff.wait_ms() == 0 {
                self.try_connect();
            }
            self.wait()?;
        }
    }

    /// Blocks until the link or the wake-up socket is readable, or the next
    /// connection attempt is due.
    fn wait(&mut self) -> Result<()> {
        let timeout = if self.inserted && self.link.is_none() {
            self.backoff.wait_ms()
        } else {
            -1
        };
        let mut fds = [pollin(self.wake.fd()), pollin(-1)];
        if let Some(link) = &self.link {
            fds[1] = pollin(link.fd());
        }
        // SAFETY: two valid pollfd entries (a negative fd is ignored by poll).
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(()); // A signal: handled at the top of the loop.
            }
            return Err(e).context("poll");
        }
        if fds[0].revents != 0 {
            self.wake.drain();
        }
        if self.link.is_some() && fds[1].revents != 0 {
            self.on_readable();
        }
        Ok(())
    }

    fn try_connect(&mut self) {
        match Link::connect(&self.opts.host, self.opts.port) {
            Ok(link) => {
                log!(
                    "inserted: connected to vpcd {}:{}",
                    self.opts.host,
                    self.opts.port
                );
                self.link = Some(link);
                self.outage_logged = false;
            }
            Err(e) => {
                if !self.outage_logged {
                    log!(
                        "vpcd {}:{} not reachable ({e}); retrying (is pcscd running?)",
                        self.opts.host,
                        self.opts.port
                    );
                    self.outage_logged = true;
                }
                self.backoff.failed();
            }
        }
    }

    fn on_readable(&mut self) {
        let Some(link) = self.link.as_mut() else {
            return;
        };
        match link.receive() {
            Ok(true) => {}
            Ok(false) => return self.lost("vpcd closed the connection"),
            Err(e) => return self.lost(&format!("receive failed: {e}")),
        }
        loop {
            let Some(link) = self.link.as_mut() else {
                return; // Pulled or dropped while handling a frame.
            };
            match link.next_frame() {
                Ok(Some(frame)) => {
                    self.backoff.reset();
                    self.handle(&frame);
                }
                Ok(None) => return,
                Err(e) => return self.lost(&format!("dropping the connection: {e}")),
            }
        }
    }

    fn handle(&mut self, frame: &[u8]) {
        match classify(frame) {
            Message::Control(Control::GetAtr) => {
                let atr = self.applet.atr(self.opts.t0);
                self.send(atr)
            }
            Message::Control(c @ (Control::PowerOff | Control::PowerOn | Control::Reset)) => {
                if self.opts.verbose {
                    log!("reader: {c:?}");
                }
                self.applet.reset();
                self.t0.reset();
            }
            Message::Control(Control::Unknown(b)) => {
                log!("ignoring unknown vpcd control byte {b:02X}");
            }
            Message::Apdu(apdu) => self.handle_apdu(apdu),
        }
    }

    fn handle_apdu(&mut self, apdu: &[u8]) {
        let ins = apdu.get(1).copied();
        if ins.is_some() && ins == self.pull_before {
            self.pull_before = None;
            log!(
                "pulling the card before INS {:02X}: not processed",
                ins.unwrap_or(0)
            );
            return self.pull();
        }
        let response = if self.opts.t0 {
            let applet = &mut self.applet;
            self.t0.exchange(apdu, |a| applet.process(a))
        } else {
            self.applet.process(apdu)
        };
        if self.opts.verbose {
            log!("apdu ins={} -> {}", hex_opt(ins), sw_hex(&response));
        }
        if ins.is_some() && ins == self.pull_after {
            self.pull_after = None;
            log!(
                "pulling the card after INS {:02X} ({}): response withheld",
                ins.unwrap_or(0),
                sw_hex(&response)
            );
            return self.pull();
        }
        self.send(&response);
    }

    fn send(&mut self, payload: &[u8]) {
        if let Some(link) = self.link.as_mut() {
            if let Err(e) = link.send(payload) {
                self.lost(&format!("send failed: {e}"));
            }
        }
    }

    fn apply(&mut self, command: Command) -> String {
        match command {
            Command::Remove => {
                self.inserted = false;
                self.disconnect();
                log!("removed");
                "ok removed".into()
            }
            Command::Insert => {
                if !self.inserted {
                    self.inserted = true;
                    self.backoff.reset();
                }
                "ok inserted".into()
            }
            Command::PullAfter(ins) => {
                self.pull_after = Some(ins);
                format!("ok pull-after {ins:02X}")
            }
            Command::PullBefore(ins) => {
                self.pull_before = Some(ins);
                format!("ok pull-before {ins:02X}")
            }
            Command::Status => format!(
                "ok state={} connected={} {}",
                if self.inserted { "inserted" } else { "removed" },
                self.link.is_some(),
                self.applet.status()
            ),
        }
    }

    /// The card leaves the reader mid-command and stays out until `insert`.
    fn pull(&mut self) {
        self.inserted = false;
        self.disconnect();
    }

    /// The connection broke while the card should be in: reconnect with backoff.
    fn lost(&mut self, why: &str) {
        log!("{why}");
        self.disconnect();
        self.backoff.failed();
    }

    fn disconnect(&mut self) {
        if let Some(link) = self.link.take() {
            link.close();
        }
        // Out of the field: the volatile session is gone.
        self.applet.reset();
        self.t0.reset();
    }
}

/// Runs `applet` as an emulator binary does: SIGTERM/SIGINT end it, SIGUSR1 removes and
/// SIGUSR2 inserts the card, and `control` (if any) is the control socket; returns when
/// the loop ends.
pub fn run_binary<A: Applet>(applet: A, opts: Options, control: Option<&Path>) -> Result<()> {
    let (waker, wake_rx) = wake::channel().context("creating the wake-up socket")?;
    wake::install_signal_handlers(&waker).context("installing signal handlers")?;
    let (req_tx, req_rx) = mpsc::channel();
    let _socket_file = match control {
        Some(path) => {
            let guard = control::serve(path, req_tx, waker.clone())?;
            // Tests wait for this line before they connect.
            log!("control socket listening on {}", path.display());
            Some(guard)
        }
        None => None,
    };
    Emulator::new(applet, opts, req_rx, wake_rx).run()
}

fn pollin(fd: i32) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }
}

fn hex_opt(b: Option<u8>) -> String {
    b.map_or_else(|| "--".into(), |b| format!("{b:02X}"))
}

fn sw_hex(response: &[u8]) -> String {
    match response {
        [.., a, b] => format!("{a:02X}{b:02X}"),
        _ => "(no status word)".into(),
    }
}

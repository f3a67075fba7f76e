//! The I/O shell that drives the pure core: stdin frames in (through the [`input`]
//! thread), replies out on stdout (the framing channel: nothing else is ever written
//! there), PC/SC through [`crate::readers`]. One request at a time; while a session
//! holds a card, [`session`] runs the loop; [`history`] reads the shopper's own card
//! for the extension's popup.

mod history;
mod input;
mod session;

use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::catalogue::{ErrorCode, Failure};
use crate::frame;
use crate::held::HeldStore;
use crate::message::reply::{Outbound, PcscState, ReaderView, Reply};
use crate::message::request::{Parsed, Request};
use crate::message::{CardView, Id, PROTOCOL, SUPPORTED};
use crate::readers::{select_purse, CancelHook, Pcsc};

pub use input::Inbound;

/// Logs one line to stderr (stdout is the framing channel).
macro_rules! log {
    ($($t:tt)*) => { eprintln!("native-host: {}", format_args!($($t)*)) };
}
pub(crate) use log;

/// How the host ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// The browser closed the pipe between messages.
    Closed,
    /// The input ended inside a frame (reported to the browser as `bad_frame`).
    Truncated,
    /// stdout or stdin failed.
    Broken(String),
}

/// What to do after a message.
pub(crate) enum Flow {
    Continue,
    Exit(Exit),
}

pub struct Config {
    /// Where held responses live; `None` keeps nothing (no home directory).
    pub state_dir: Option<PathBuf>,
}

pub(crate) struct Host<W: Write> {
    rx: Receiver<Inbound>,
    out: W,
    pcsc: Pcsc,
    held: Option<HeldStore>,
    hook: Arc<CancelHook>,
    /// The open session, as `status` shows it (the session itself lives in its loop).
    busy: Option<crate::message::reply::SessionView>,
}

/// Serves the browser on `input`/`output` until the input ends.
pub fn serve(
    input: impl std::io::Read + Send + 'static,
    output: impl Write,
    config: Config,
) -> Exit {
    let (tx, rx) = mpsc::channel();
    let hook = Arc::new(CancelHook::default());
    let pump_hook = Arc::clone(&hook);
    let spawned = thread::Builder::new()
        .name("stdin".into())
        .spawn(move || input::pump(input, tx, pump_hook));
    if let Err(e) = spawned {
        return Exit::Broken(format!("cannot start the input thread: {e}"));
    }
    let mut host = Host {
        rx,
        out: output,
        pcsc: Pcsc::default(),
        held: config.state_dir.map(HeldStore::new),
        hook,
        busy: None,
    };
    if host.held.is_none() {
        log!("no state directory (HOME unset?): DEBIT/TICK answers will not be kept");
    }
    loop {
        let Ok(inbound) = host.rx.recv() else {
            return Exit::Broken("the input thread stopped".into());
        };
        if let Flow::Exit(e) = host.inbound(inbound) {
            return e;
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn random_id() -> String {
    hex::encode(rand::random::<[u8; 8]>())
}

impl<W: Write> Host<W> {
    /// Writes one message; a broken stdout ends the host.
    pub(crate) fn send(&mut self, id: Option<Id>, reply: Reply) -> Flow {
        let body = Outbound { id, reply }.to_json();
        let framed = match frame::encode(&body) {
            Ok(f) => f,
            Err(e) => {
                log!("{e}");
                let reply = Reply::error(&Failure::new(ErrorCode::Internal, e.to_string()));
                let body = Outbound { id: None, reply }.to_json();
                match frame::encode(&body) {
                    Ok(f) => f,
                    Err(e) => return Flow::Exit(Exit::Broken(e.to_string())),
                }
            }
        };
        match self.out.write_all(&framed).and_then(|_| self.out.flush()) {
            Ok(()) => Flow::Continue,
            Err(e) => Flow::Exit(Exit::Broken(format!("writing to the browser: {e}"))),
        }
    }

    pub(crate) fn fail(&mut self, id: Option<Id>, f: &Failure) -> Flow {
        log!("error {f}");
        self.send(id, Reply::error(f))
    }

    /// Handles what the input thread delivered, outside a session.
    fn inbound(&mut self, inbound: Inbound) -> Flow {
        match inbound {
            Inbound::Message(p) => self.message(p),
            other => self.transport(other),
        }
    }

    /// Frames that are not requests, and the end of input.
    pub(crate) fn transport(&mut self, inbound: Inbound) -> Flow {
        match inbound {
            Inbound::Message(p) => self.message(p),
            Inbound::TooLarge(len) => self.fail(
                None,
                &Failure::new(
                    ErrorCode::MessageTooLarge,
                    format!(
                        "a message of {len} bytes (at most {} accepted); it was skipped",
                        frame::MAX_INBOUND
                    ),
                ),
            ),
            Inbound::End(Ok(())) => Flow::Exit(Exit::Closed),
            Inbound::End(Err(t)) => {
                // The browser may still read: say what happened before leaving.
                let _ = self.fail(None, &Failure::new(ErrorCode::BadFrame, t.to_string()));
                Flow::Exit(Exit::Truncated)
            }
            Inbound::ReadFailed(e) => Flow::Exit(Exit::Broken(format!("reading stdin: {e}"))),
        }
    }

    fn message(&mut self, p: Parsed) -> Flow {
        let Parsed { id, request } = p;
        match request {
            Err(f) => self.fail(id, &f),
            Ok(Request::OpenSession {
                reader,
                purpose,
                idle_timeout,
            }) => self.open_session(id, reader.as_deref(), purpose, idle_timeout),
            Ok(Request::Apdu { session, .. } | Request::CloseSession { session }) => self.fail(
                id,
                &Failure::new(ErrorCode::NoSession, format!("no open session '{session}'")),
            ),
            Ok(r) => self.common(id, r),
        }
    }

    /// Requests answered the same way with or without a session.
    pub(crate) fn common(&mut self, id: Option<Id>, request: Request) -> Flow {
        let result = match request {
            Request::Hello { protocol, client } => {
                log!(
                    "hello from {} (protocol {protocol})",
                    client.as_deref().unwrap_or("an unnamed client")
                );
                if SUPPORTED.contains(&protocol) {
                    Ok(Reply::Hello {
                        protocol: PROTOCOL,
                        supported: SUPPORTED.to_vec(),
                        host: "native-host",
                        version: env!("CARGO_PKG_VERSION"),
                    })
                } else {
                    Err(Failure::new(
                        ErrorCode::VersionMismatch,
                        format!("the extension speaks protocol {protocol}; this host speaks {SUPPORTED:?}"),
                    ))
                }
            }
            Request::Status => Ok(self.status()),
            Request::CardInfo { reader } => self.card_info(reader.as_deref()),
            Request::CardHistory { reader } => self.card_history(reader.as_deref()),
            Request::WaitCard {
                reader,
                present,
                timeout,
            } => self.wait_card(reader.as_deref(), present, timeout),
            Request::Cancel => {
                self.hook.clear();
                Ok(Reply::Cancelled { session: None })
            }
            Request::Held => self.held_list(),
            Request::Ack { held_id } => self.ack(held_id),
            Request::OpenSession { .. } => Err(Failure::new(
                ErrorCode::Busy,
                "a session is already open in this host",
            )),
            Request::Apdu { session, .. } | Request::CloseSession { session } => Err(Failure::new(
                ErrorCode::NoSession,
                format!("no open session '{session}'"),
            )),
        };
        match result {
            Ok(reply) => self.send(id, reply),
            Err(f) => self.fail(id, &f),
        }
    }

    fn status(&mut self) -> Reply {
        let (pcsc, readers) = match self.pcsc.readers() {
            Ok(r) => (PcscState::Up, r),
            Err(f) if f.code == ErrorCode::NoPcscService => (PcscState::Down, Vec::new()),
            Err(f) => {
                log!("status: {f}");
                (PcscState::Up, Vec::new())
            }
        };
        let held = match &self.held {
            Some(s) => s.list().map(|l| l.len()).unwrap_or_else(|e| {
                log!("{e}");
                0
            }),
            None => 0,
        };
        Reply::Status {
            pcsc,
            readers: readers
                .into_iter()
                .map(|r| ReaderView {
                    name: r.name,
                    card_present: r.card_present,
                })
                .collect(),
            session: self.busy.clone(),
            held,
        }
    }

    fn card_info(&mut self, reader: Option<&str>) -> Result<Reply, Failure> {
        let reader = self.pcsc.choose(reader)?;
        let connected = self.pcsc.connect(&reader, false)?;
        let card = connected
            .card()
            .ok_or_else(|| Failure::new(ErrorCode::Internal, "card handle gone"))?;
        let info = select_purse(card)?;
        Ok(Reply::CardInfo {
            reader,
            card: CardView::from(&info),
        })
    }

    fn wait_card(
        &mut self,
        reader: Option<&str>,
        present: bool,
        timeout: Duration,
    ) -> Result<Reply, Failure> {
        let hook = Arc::clone(&self.hook);
        let reader = self.pcsc.wait(reader, present, timeout, &hook)?;
        Ok(Reply::CardEvent { reader, present })
    }

    fn held_list(&mut self) -> Result<Reply, Failure> {
        let responses = match &self.held {
            Some(s) => s
                .list()
                .map_err(|e| Failure::new(ErrorCode::Internal, e.to_string()))?,
            None => Vec::new(),
        };
        Ok(Reply::Held { responses })
    }

    fn ack(&mut self, held_id: String) -> Result<Reply, Failure> {
        let removed = match &self.held {
            Some(s) => s
                .remove(&held_id)
                .map_err(|e| Failure::new(ErrorCode::Internal, e.to_string()))?,
            None => false,
        };
        Ok(Reply::Acked { held_id, removed })
    }
}

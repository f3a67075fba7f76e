//! The built `native-host` binary spawned exactly as a browser spawns it: pipes on stdin
//! and stdout, frames of a native-endian length and JSON. Every message a test sends
//! with [`Host::send`] and every message the host sends is validated against
//! `schema/native-messaging.schema.json`. Replies are awaited on the pipe (bounded),
//! never with sleeps. Also: the SAM's link through the host ([`HostLink`]).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

use purse::surrogate::{CardLink, LinkError};
use serde_json::{json, Value};

/// How long a reply may take (PC/SC waits in tests are shorter than this).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

const SCHEMA: &str = include_str!("../../../schema/native-messaging.schema.json");

fn validator(part: &str) -> jsonschema::Validator {
    let mut schema: Value = serde_json::from_str(SCHEMA).expect("the schema is JSON");
    // Validate one direction: the root's oneOf replaced by a reference to that part.
    let obj = schema.as_object_mut().expect("the schema is an object");
    obj.remove("oneOf");
    obj.insert("$ref".into(), json!(format!("#/$defs/{part}")));
    jsonschema::validator_for(&schema).expect("the schema compiles")
}

/// Asserts that `msg` is a valid request (`"request"`) or reply (`"reply"`).
pub fn assert_valid(part: &str, msg: &Value) {
    static REQUEST: OnceLock<jsonschema::Validator> = OnceLock::new();
    static REPLY: OnceLock<jsonschema::Validator> = OnceLock::new();
    let v = match part {
        "request" => REQUEST.get_or_init(|| validator("request")),
        _ => REPLY.get_or_init(|| validator("reply")),
    };
    let errors: Vec<String> = v.iter_errors(msg).map(|e| e.to_string()).collect();
    assert!(
        errors.is_empty(),
        "{part} does not match the schema: {msg}\n{}",
        errors.join("\n")
    );
}

/// What the stdout reader saw.
enum Out {
    Message(Value),
    Garbage(String),
    Eof,
}

/// A running host.
pub struct Host {
    child: Child,
    stdin: Option<ChildStdin>,
    out: Receiver<Out>,
    next_id: i64,
    /// Messages without the awaited id (events), in arrival order.
    pub events: VecDeque<Value>,
}

impl Host {
    /// Starts the host with its state in `state_dir` (also its HOME) and extra env.
    pub fn spawn(state_dir: &Path, env: &[(&str, &str)]) -> Host {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_native-host"));
        cmd.arg("chrome-extension://abcdefghijklmnopabcdefghijklmnop/")
            .env("PURSE_HOST_STATE_DIR", state_dir)
            .env("HOME", state_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawning native-host");
        let stdout = child.stdout.take().expect("stdout piped");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || read_frames(stdout, tx));
        // The host's log, prefixed, into the test's output.
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[host] {line}");
            }
        });
        Host {
            stdin: child.stdin.take(),
            child,
            out: rx,
            next_id: 1,
            events: VecDeque::new(),
        }
    }

    /// Writes raw bytes to the host's stdin.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(bytes).expect("writing to the host");
        stdin.flush().expect("flushing to the host");
    }

    /// Sends one message as a frame, without schema validation (for bad requests).
    pub fn send_unchecked(&mut self, msg: &Value) {
        self.send_raw(&frame(&serde_json::to_vec(msg).unwrap()));
    }

    /// Sends one valid request.
    pub fn send(&mut self, msg: &Value) {
        assert_valid("request", msg);
        self.send_unchecked(msg);
    }

    /// The next message from the host (validated), or a panic after REPLY_TIMEOUT.
    pub fn recv(&mut self) -> Value {
        if let Some(e) = self.events.pop_front() {
            return e;
        }
        self.recv_wire()
    }

    fn recv_wire(&mut self) -> Value {
        match self.out.recv_timeout(REPLY_TIMEOUT) {
            Ok(Out::Message(v)) => {
                assert_valid("reply", &v);
                v
            }
            Ok(Out::Garbage(why)) => panic!("the host wrote a bad frame: {why}"),
            Ok(Out::Eof) => panic!("the host closed stdout"),
            Err(_) => panic!("no message from the host within {REPLY_TIMEOUT:?}"),
        }
    }

    /// Sends `msg` with a fresh id and returns the reply carrying that id; messages
    /// without it (events) are queued in `events`.
    pub fn request(&mut self, mut msg: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        msg["id"] = json!(id);
        self.send(&msg);
        self.reply_to(id)
    }

    /// Sends `msg` (given an id) without waiting; returns the id.
    pub fn request_later(&mut self, mut msg: Value) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        msg["id"] = json!(id);
        self.send(&msg);
        id
    }

    /// The reply with `id`, queueing other messages as events.
    pub fn reply_to(&mut self, id: i64) -> Value {
        loop {
            let v = self.recv_wire();
            if v["id"] == json!(id) {
                return v;
            }
            self.events.push_back(v);
        }
    }

    /// The reply whose id is the string `id`, queueing other messages as events.
    pub fn reply_to_text(&mut self, id: &str) -> Value {
        loop {
            let v = self.recv_wire();
            if v["id"] == json!(id) {
                return v;
            }
            self.events.push_back(v);
        }
    }

    /// `request`, asserting an error reply with `code`; returns it.
    pub fn expect_error(&mut self, msg: Value, code: &str) -> Value {
        let r = self.request(msg);
        assert_eq!(r["type"], "error", "expected error {code}, got {r}");
        assert_eq!(r["code"], code, "{r}");
        r
    }

    /// `request`, asserting the reply type; returns it.
    pub fn expect(&mut self, msg: Value, reply_type: &str) -> Value {
        let r = self.request(msg);
        assert_eq!(r["type"], reply_type, "{r}");
        r
    }

    /// Closes stdin (the browser disconnects).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the process to exit (after stdin closed), bounded.
    pub fn wait_exit(mut self) -> ExitStatus {
        self.close_stdin();
        // The stdout reader reports EOF when the process is gone: wait for that first.
        loop {
            match self.out.recv_timeout(REPLY_TIMEOUT) {
                Ok(Out::Eof) => break,
                Ok(Out::Message(v)) => self.events.push_back(v),
                Ok(Out::Garbage(why)) => panic!("the host wrote a bad frame: {why}"),
                Err(_) => panic!("the host did not exit within {REPLY_TIMEOUT:?}"),
            }
        }
        self.child.wait().expect("waiting for the host")
    }

    /// Opens a single-purchase session on `reader`; returns the session id.
    pub fn open_payment(&mut self, reader: &str, unit: u32) -> String {
        let mut request = payment_request(unit);
        request["reader"] = json!(reader);
        self.open(request)
    }

    /// Opens a single-purchase session on the reader the host chooses; returns the
    /// session id.
    pub fn open_payment_chosen(&mut self, unit: u32) -> String {
        self.open(payment_request(unit))
    }

    /// Opens a time-cycle session of `max` units of `unit`, one per `period` seconds.
    pub fn open_time_cycle(&mut self, reader: &str, unit: u32, max: u16, period: u32) -> String {
        self.open(
            json!({"type":"open_session","purpose":"payment","reader":reader,
            "payment":{"mode":"time_cycle","unit_amount":unit,"max_units":max,"currency":978,
                       "period_seconds":period}}),
        )
    }

    /// Opens a recovery session on `reader` for the payment of NT `nt`.
    pub fn open_recovery(&mut self, reader: &str, nt: u32) -> String {
        self.open(
            json!({"type":"open_session","purpose":"recovery","reader":reader,
                         "recovery":{"nt":nt}}),
        )
    }

    fn open(&mut self, request: Value) -> String {
        let r = self.expect(request, "session_opened");
        r["session"].as_str().expect("session id").to_string()
    }
}

/// `open_session` for a single purchase of `unit` EUR cents, no reader named.
pub fn payment_request(unit: u32) -> Value {
    json!({"type":"open_session","purpose":"payment",
        "payment":{"mode":"single","unit_amount":unit,"max_units":1,"currency":978}})
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A frame: native-endian length, then the body.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as u32).to_ne_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

fn read_frames(mut stdout: impl Read, tx: mpsc::Sender<Out>) {
    loop {
        let mut len = [0u8; 4];
        if stdout.read_exact(&mut len).is_err() {
            let _ = tx.send(Out::Eof);
            return;
        }
        let len = u32::from_ne_bytes(len) as usize;
        if len > 1024 * 1024 {
            let _ = tx.send(Out::Garbage(format!("a frame of {len} bytes")));
            return;
        }
        let mut body = vec![0u8; len];
        if stdout.read_exact(&mut body).is_err() {
            let _ = tx.send(Out::Garbage("a truncated frame".into()));
            return;
        }
        let out = match serde_json::from_slice(&body) {
            Ok(v) => Out::Message(v),
            Err(e) => Out::Garbage(format!("not JSON: {e}")),
        };
        if tx.send(out).is_err() {
            return;
        }
    }
}

/// The SAM's card link through the host: each APDU is an `apdu` request. An error reply
/// is a failed exchange (its code kept in `errors`), never a status word.
pub struct HostLink<'a> {
    pub host: &'a mut Host,
    pub session: String,
    pub errors: Vec<String>,
    /// Held ids of DEBIT/TICK answers, in order.
    pub held: Vec<String>,
}

impl<'a> HostLink<'a> {
    pub fn new(host: &'a mut Host, session: &str) -> HostLink<'a> {
        HostLink {
            host,
            session: session.to_string(),
            errors: Vec::new(),
            held: Vec::new(),
        }
    }
}

impl CardLink for HostLink<'_> {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, LinkError> {
        let r = self
            .host
            .request(json!({"type":"apdu","session":self.session,"apdu":hex::encode_upper(apdu)}));
        if r["type"] == "error" {
            let code = r["code"].as_str().unwrap_or("?").to_string();
            self.errors.push(code.clone());
            return Err(LinkError(format!("host: {code}: {}", r["detail"])));
        }
        assert_eq!(r["type"], "apdu", "{r}");
        if let Some(h) = r["held_id"].as_str() {
            self.held.push(h.to_string());
        }
        let hex = r["response"].as_str().expect("response hex");
        Ok(hex::decode(hex).expect("response is hex"))
    }
}

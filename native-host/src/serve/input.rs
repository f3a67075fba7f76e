//! The input side of the shell: a thread that reads stdin, decodes frames and parses
//! requests, and hands them to the host loop over a channel. It also fires the cancel
//! hook at once for a `cancel` request or the end of input, so that a wait blocked in
//! PC/SC ends without waiting for the loop to get there.

use std::io::{ErrorKind, Read};
use std::sync::mpsc::Sender;
use std::sync::Arc;

use crate::frame::{Decoder, Event, Truncated};
use crate::message::request::{parse, Parsed, Request};
use crate::readers::CancelHook;

/// What the input thread delivers.
#[derive(Debug)]
pub enum Inbound {
    Message(Parsed),
    /// A frame over the size limit, skipped.
    TooLarge(u64),
    /// The browser closed the pipe: cleanly between frames, or inside one.
    End(Result<(), Truncated>),
    /// Reading stdin failed.
    ReadFailed(std::io::Error),
}

/// Reads `input` until its end, sending every event to `tx`.
pub fn pump(mut input: impl Read, tx: Sender<Inbound>, hook: Arc<CancelHook>) {
    let mut decoder = Decoder::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => {
                hook.cancel();
                let _ = tx.send(Inbound::End(decoder.finish()));
                return;
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                hook.cancel();
                let _ = tx.send(Inbound::ReadFailed(e));
                return;
            }
        };
        let mut chunk = &buf[..n];
        while let Some(event) = decoder.decode(&mut chunk) {
            let inbound = match event {
                Event::Frame(body) => {
                    let parsed = parse(&body);
                    if matches!(parsed.request, Ok(Request::Cancel)) {
                        hook.cancel();
                    }
                    Inbound::Message(parsed)
                }
                Event::TooLarge { len } => Inbound::TooLarge(len),
            };
            if tx.send(inbound).is_err() {
                return; // The host loop is gone.
            }
        }
    }
}

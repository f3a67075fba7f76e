//! Native-messaging framing, sans-IO: a 32-bit length in native byte order, then that
//! many bytes of UTF-8 JSON. The decoder takes whatever bytes the pipe delivered and
//! yields frames; it never allocates more than [`MAX_INBOUND`] for a frame, whatever the
//! length prefix claims, so a hostile or broken peer cannot make it read unboundedly
//! into memory.

use thiserror::Error;

/// The largest message the host accepts. Ours are a few hundred bytes; the browser may
/// send up to 4 GiB, which no purse message needs.
pub const MAX_INBOUND: usize = 64 * 1024;

/// The largest message a browser accepts from a host (Chrome and Firefox: 1 MiB).
pub const MAX_OUTBOUND: usize = 1024 * 1024;

const HEADER: usize = 4;

/// What the decoder found in the byte stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// One complete message body (not yet checked to be UTF-8 or JSON).
    Frame(Vec<u8>),
    /// A message longer than [`MAX_INBOUND`]: its body is skipped without being kept,
    /// and decoding goes on after it.
    TooLarge { len: u64 },
}

/// The stream ended inside a frame.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("the input ended inside a frame: {got} of {expected} bytes of the {part}")]
pub struct Truncated {
    pub part: &'static str,
    pub expected: u64,
    pub got: u64,
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("a message of {0} bytes is over the browser's limit of {MAX_OUTBOUND} bytes")]
pub struct OutboundTooLarge(pub usize);

#[derive(Debug)]
enum State {
    Header { buf: [u8; HEADER], have: usize },
    Body { len: usize, buf: Vec<u8> },
    Skip { len: u64, left: u64 },
}

/// Incremental frame decoder.
#[derive(Debug)]
pub struct Decoder {
    state: State,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder {
            state: State::Header {
                buf: [0; HEADER],
                have: 0,
            },
        }
    }

    /// Consumes bytes from the front of `input` until one event is complete (returned)
    /// or `input` is empty (`None`). Call again with the rest until it returns `None`.
    pub fn decode(&mut self, input: &mut &[u8]) -> Option<Event> {
        loop {
            if input.is_empty() {
                return None;
            }
            match &mut self.state {
                State::Header { buf, have } => {
                    let n = (HEADER - *have).min(input.len());
                    buf[*have..*have + n].copy_from_slice(&input[..n]);
                    *have += n;
                    *input = &input[n..];
                    if *have < HEADER {
                        return None;
                    }
                    let len = u32::from_ne_bytes(*buf);
                    let len_usize = usize::try_from(len).unwrap_or(usize::MAX);
                    if len_usize > MAX_INBOUND {
                        self.state = State::Skip {
                            len: u64::from(len),
                            left: u64::from(len),
                        };
                        return Some(Event::TooLarge {
                            len: u64::from(len),
                        });
                    }
                    if len_usize == 0 {
                        self.reset();
                        return Some(Event::Frame(Vec::new()));
                    }
                    self.state = State::Body {
                        len: len_usize,
                        buf: Vec::with_capacity(len_usize),
                    };
                }
                State::Body { len, buf } => {
                    let n = (*len - buf.len()).min(input.len());
                    buf.extend_from_slice(&input[..n]);
                    *input = &input[n..];
                    if buf.len() < *len {
                        return None;
                    }
                    let frame = std::mem::take(buf);
                    self.reset();
                    return Some(Event::Frame(frame));
                }
                State::Skip { left, .. } => {
                    let n = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(input.len());
                    *input = &input[n..];
                    *left -= n as u64;
                    if *left == 0 {
                        self.reset();
                    }
                }
            }
        }
    }

    /// The end of the input: an error if it came inside a frame (a frame's header or
    /// body cut short, or a too-large body not fully skipped).
    pub fn finish(&self) -> Result<(), Truncated> {
        match &self.state {
            State::Header { have: 0, .. } => Ok(()),
            State::Header { have, .. } => Err(Truncated {
                part: "length prefix",
                expected: HEADER as u64,
                got: *have as u64,
            }),
            State::Body { len, buf } => Err(Truncated {
                part: "message",
                expected: *len as u64,
                got: buf.len() as u64,
            }),
            State::Skip { len, left } => Err(Truncated {
                part: "oversized message",
                expected: *len,
                got: len - left,
            }),
        }
    }

    fn reset(&mut self) {
        self.state = State::Header {
            buf: [0; HEADER],
            have: 0,
        };
    }
}

/// One frame: the length prefix in native byte order, then `body`.
pub fn encode(body: &[u8]) -> Result<Vec<u8>, OutboundTooLarge> {
    if body.len() > MAX_OUTBOUND {
        return Err(OutboundTooLarge(body.len()));
    }
    // MAX_OUTBOUND fits in u32, so the cast is exact.
    let mut v = Vec::with_capacity(HEADER + body.len());
    v.extend_from_slice(&(body.len() as u32).to_ne_bytes());
    v.extend_from_slice(body);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        encode(body).unwrap()
    }

    fn all(dec: &mut Decoder, mut input: &[u8]) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some(e) = dec.decode(&mut input) {
            out.push(e);
        }
        assert!(input.is_empty());
        out
    }

    #[test]
    fn frames_split_anywhere_decode_the_same() {
        let mut stream = frame(br#"{"type":"status"}"#);
        stream.extend(frame(b"{}"));
        for cut in 0..=stream.len() {
            let mut dec = Decoder::new();
            let mut events = all(&mut dec, &stream[..cut]);
            events.extend(all(&mut dec, &stream[cut..]));
            assert_eq!(
                events,
                vec![
                    Event::Frame(br#"{"type":"status"}"#.to_vec()),
                    Event::Frame(b"{}".to_vec())
                ],
                "cut at {cut}"
            );
            assert_eq!(dec.finish(), Ok(()));
        }
    }

    #[test]
    fn an_oversized_frame_is_reported_skipped_and_decoding_goes_on() {
        let big = vec![b'x'; MAX_INBOUND + 1];
        let mut stream = frame(&big);
        stream.extend(frame(b"{}"));
        let mut dec = Decoder::new();
        // Fed in small pieces: the skipped body is never buffered.
        let mut events = Vec::new();
        for chunk in stream.chunks(1000) {
            events.extend(all(&mut dec, chunk));
        }
        assert_eq!(
            events,
            vec![
                Event::TooLarge {
                    len: (MAX_INBOUND + 1) as u64
                },
                Event::Frame(b"{}".to_vec())
            ]
        );
    }

    #[test]
    fn the_largest_accepted_frame_is_max_inbound() {
        let body = vec![b' '; MAX_INBOUND];
        let mut dec = Decoder::new();
        assert_eq!(all(&mut dec, &frame(&body)), vec![Event::Frame(body)]);
    }

    #[test]
    fn truncation_is_reported_where_it_happened() {
        let mut dec = Decoder::new();
        all(&mut dec, &[5, 0]);
        assert_eq!(dec.finish().unwrap_err().part, "length prefix");
        let mut dec = Decoder::new();
        let f = frame(b"{\"a\":1}");
        all(&mut dec, &f[..f.len() - 1]);
        let e = dec.finish().unwrap_err();
        assert_eq!((e.part, e.expected, e.got), ("message", 7, 6));
        let mut dec = Decoder::new();
        let events = all(&mut dec, &u32::MAX.to_ne_bytes());
        assert_eq!(
            events,
            vec![Event::TooLarge {
                len: u64::from(u32::MAX)
            }]
        );
        assert_eq!(dec.finish().unwrap_err().part, "oversized message");
    }

    #[test]
    fn an_empty_frame_is_a_frame() {
        let mut dec = Decoder::new();
        assert_eq!(all(&mut dec, &frame(b"")), vec![Event::Frame(Vec::new())]);
    }

    #[test]
    fn outbound_messages_are_capped_at_one_mib() {
        assert!(encode(&vec![0; MAX_OUTBOUND]).is_ok());
        assert_eq!(
            encode(&vec![0; MAX_OUTBOUND + 1]),
            Err(OutboundTooLarge(MAX_OUTBOUND + 1))
        );
    }
}

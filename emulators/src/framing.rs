//! The vpcd wire format, pure: a 2-byte big-endian length, then the payload. One-byte
//! payloads are reader control (power off/on, reset, get ATR); anything else is a command
//! APDU. No I/O here, so every framing corner case is unit-tested without sockets.

use std::fmt;

/// The largest payload we accept from vpcd. No purse command is longer than 262 bytes;
/// a bigger frame means a confused or hostile peer, and we drop the connection rather
/// than buffer it.
pub const MAX_FRAME: usize = 4096;

/// A reader control byte from vpcd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    PowerOff,
    PowerOn,
    Reset,
    /// vpcd polls with this even when idle: it must always be answered with the ATR.
    GetAtr,
    /// A byte vpcd does not define; ignored (vpcd expects no reply to control bytes
    /// other than GetAtr).
    Unknown(u8),
}

/// One frame from vpcd, classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    Control(Control),
    Apdu(&'a [u8]),
}

/// Classifies a payload the way vpcd means it: exactly one byte is control.
pub fn classify(payload: &[u8]) -> Message<'_> {
    match payload {
        [b] => Message::Control(match b {
            0x00 => Control::PowerOff,
            0x01 => Control::PowerOn,
            0x02 => Control::Reset,
            0x04 => Control::GetAtr,
            other => Control::Unknown(*other),
        }),
        apdu => Message::Apdu(apdu),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The peer announced a payload longer than [`MAX_FRAME`].
    TooLarge(usize),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge(n) => {
                write!(f, "frame of {n} bytes exceeds the limit of {MAX_FRAME}")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// Prefixes `payload` with its length. Payloads over [`MAX_FRAME`] are refused, so the
/// length always fits the 2-byte field.
pub fn encode(payload: &[u8]) -> Result<Vec<u8>, FrameError> {
    if payload.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(payload.len()));
    }
    let mut v = Vec::with_capacity(payload.len() + 2);
    // MAX_FRAME < 65536, so the cast cannot truncate.
    v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    v.extend_from_slice(payload);
    Ok(v)
}

/// Reassembles frames from a byte stream that TCP may split or merge arbitrarily.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    /// Appends bytes received from the socket.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame's payload, `None` when more bytes are needed. An oversize
    /// length is reported as soon as the header is in, before any payload is buffered.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        let [hi, lo, ..] = self.buf[..] else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len > MAX_FRAME {
            return Err(FrameError::TooLarge(len));
        }
        if self.buf.len() < 2 + len {
            return Ok(None);
        }
        let payload = self.buf[2..2 + len].to_vec();
        self.buf.drain(..2 + len);
        Ok(Some(payload))
    }

    /// Bytes held that do not yet form a frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bytes_and_apdus_are_told_apart_by_length() {
        assert_eq!(classify(&[0]), Message::Control(Control::PowerOff));
        assert_eq!(classify(&[1]), Message::Control(Control::PowerOn));
        assert_eq!(classify(&[2]), Message::Control(Control::Reset));
        assert_eq!(classify(&[4]), Message::Control(Control::GetAtr));
        assert_eq!(classify(&[3]), Message::Control(Control::Unknown(3)));
        assert_eq!(classify(&[0x00, 0xA4]), Message::Apdu(&[0x00, 0xA4]));
        // An empty payload is an (invalid) APDU: the card answers it with 6700.
        assert_eq!(classify(&[]), Message::Apdu(&[]));
    }

    #[test]
    fn encode_prefixes_big_endian_length() {
        assert_eq!(encode(&[0x90, 0x00]).unwrap(), vec![0, 2, 0x90, 0x00]);
        assert_eq!(encode(&[]).unwrap(), vec![0, 0]);
        let big = vec![0u8; 300];
        assert_eq!(&encode(&big).unwrap()[..2], &[0x01, 0x2C]);
        assert_eq!(
            encode(&vec![0u8; MAX_FRAME + 1]),
            Err(FrameError::TooLarge(MAX_FRAME + 1))
        );
    }

    #[test]
    fn decoder_reassembles_split_and_merged_frames() {
        let mut d = FrameDecoder::new();
        assert_eq!(d.next_frame(), Ok(None));
        d.push(&[0]);
        assert_eq!(d.next_frame(), Ok(None));
        d.push(&[1, 4, 0, 3, 0xAA]);
        assert_eq!(d.next_frame(), Ok(Some(vec![4])));
        assert_eq!(d.next_frame(), Ok(None));
        d.push(&[0xBB, 0xCC, 0, 0, 0, 1]);
        assert_eq!(d.next_frame(), Ok(Some(vec![0xAA, 0xBB, 0xCC])));
        assert_eq!(d.next_frame(), Ok(Some(vec![])));
        assert_eq!(d.next_frame(), Ok(None));
        assert_eq!(d.pending(), 2);
        d.push(&[2]);
        assert_eq!(d.next_frame(), Ok(Some(vec![2])));
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn oversize_length_is_refused_before_the_payload_arrives() {
        let mut d = FrameDecoder::new();
        d.push(&[0x10, 0x01]);
        assert_eq!(d.next_frame(), Err(FrameError::TooLarge(0x1001)));
        let mut d = FrameDecoder::new();
        d.push(&[0xFF, 0xFF, 1, 2, 3]);
        assert_eq!(d.next_frame(), Err(FrameError::TooLarge(0xFFFF)));
        let mut d = FrameDecoder::new();
        d.push(&(MAX_FRAME as u16).to_be_bytes());
        assert_eq!(d.next_frame(), Ok(None));
    }

    #[test]
    fn decoder_never_panics_on_arbitrary_bytes() {
        // A cheap deterministic fuzz: every split of a pseudo-random stream.
        let mut x: u32 = 0x1234_5678;
        let stream: Vec<u8> = (0..2000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                // Keep lengths mostly small so that frames complete.
                (x % 7) as u8
            })
            .collect();
        for chunk in [1, 2, 3, 5, 64, 2000] {
            let mut d = FrameDecoder::new();
            for piece in stream.chunks(chunk) {
                d.push(piece);
                while let Ok(Some(f)) = d.next_frame() {
                    let _ = classify(&f);
                }
            }
        }
    }
}

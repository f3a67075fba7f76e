//! ISO 7816-4 short-form APDUs: command and response codec and status words.
//!
//! This is the generic layer. The purse command set and its exact length rules
//! (with the spec's status-word precedence) live in [`crate::commands`].

use core::fmt;
use thiserror::Error;

/// A status word `SW1 SW2`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusWord(pub u16);

impl StatusWord {
    pub const OK: StatusWord = StatusWord(0x9000);
    pub const CLA_NOT_SUPPORTED: StatusWord = StatusWord(0x6E00);
    pub const INS_NOT_SUPPORTED: StatusWord = StatusWord(0x6D00);
    pub const WRONG_P1P2: StatusWord = StatusWord(0x6A86);
    pub const WRONG_LENGTH: StatusWord = StatusWord(0x6700);
    pub const CONDITIONS_NOT_SATISFIED: StatusWord = StatusWord(0x6985);
    pub const FILE_NOT_FOUND: StatusWord = StatusWord(0x6A82);
    pub const RECORD_NOT_FOUND: StatusWord = StatusWord(0x6A83);
    pub const WRONG_DATA: StatusWord = StatusWord(0x6A80);
    pub const SECURITY_NOT_SATISFIED: StatusWord = StatusWord(0x6982);
    pub const INSUFFICIENT_FUNDS: StatusWord = StatusWord(0x9401);
    pub const MEMORY_FAILURE: StatusWord = StatusWord(0x6581);

    pub fn is_ok(self) -> bool {
        self == Self::OK
    }

    pub fn bytes(self) -> [u8; 2] {
        self.0.to_be_bytes()
    }

    /// What the status word means in the purse protocol (spec 4).
    pub fn meaning(self) -> &'static str {
        match self.0 {
            0x9000 => "success",
            0x6E00 => "class not supported for this command",
            0x6D00 => "instruction not supported",
            0x6A86 => "wrong P1/P2",
            0x6700 => "wrong length",
            0x6985 => "wrong state or sequence",
            0x6A82 => "application not found",
            0x6A83 => "no record for that NT",
            0x6A80 => "invalid data field",
            0x6982 => "MAC wrong",
            0x9401 => "insufficient funds",
            0x6581 => "memory failure",
            _ => "unknown status word",
        }
    }
}

impl fmt::Debug for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SW({:04X})", self.0)
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X} ({})", self.0, self.meaning())
    }
}

/// Malformed APDU bytes.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ApduError {
    #[error("command APDU shorter than its 4-byte header ({0} bytes)")]
    TooShort(usize),
    #[error("extended-length APDUs are not supported")]
    ExtendedLength,
    #[error("Lc says {lc} data bytes but {available} follow the header")]
    LcMismatch { lc: usize, available: usize },
    #[error("{0} bytes after the data where at most one Le byte may follow")]
    TrailingBytes(usize),
    #[error("response APDU shorter than its 2-byte status word ({0} bytes)")]
    ResponseTooShort(usize),
    #[error("command data longer than 255 bytes ({0})")]
    DataTooLong(usize),
}

/// A short-form command APDU: `CLA INS P1 P2 [Lc Data] [Le]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: Vec<u8>,
    /// `Some(0)` means "up to 256 bytes", as in ISO 7816-4.
    pub le: Option<u8>,
}

impl Command {
    /// Parses the four ISO cases in short form. A 5-byte APDU is case 2 (Le only).
    pub fn parse(b: &[u8]) -> Result<Command, ApduError> {
        let [cla, ins, p1, p2, body @ ..] = b else {
            return Err(ApduError::TooShort(b.len()));
        };
        let (data, le) = match body {
            [] => (Vec::new(), None),
            [le] => (Vec::new(), Some(*le)),
            [0, _, ..] => return Err(ApduError::ExtendedLength),
            [lc, rest @ ..] => {
                let lc = usize::from(*lc);
                if rest.len() < lc {
                    return Err(ApduError::LcMismatch {
                        lc,
                        available: rest.len(),
                    });
                }
                let (data, tail) = rest.split_at(lc);
                match tail {
                    [] => (data.to_vec(), None),
                    [le] => (data.to_vec(), Some(*le)),
                    more => return Err(ApduError::TrailingBytes(more.len())),
                }
            }
        };
        Ok(Command {
            cla: *cla,
            ins: *ins,
            p1: *p1,
            p2: *p2,
            data,
            le,
        })
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, ApduError> {
        let lc =
            u8::try_from(self.data.len()).map_err(|_| ApduError::DataTooLong(self.data.len()))?;
        let mut v = Vec::with_capacity(6 + self.data.len());
        v.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        if lc > 0 {
            v.push(lc);
            v.extend_from_slice(&self.data);
        }
        if let Some(le) = self.le {
            v.push(le);
        }
        Ok(v)
    }
}

/// A response APDU: data followed by the status word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub data: Vec<u8>,
    pub sw: StatusWord,
}

impl Response {
    pub fn ok(data: Vec<u8>) -> Response {
        Response {
            data,
            sw: StatusWord::OK,
        }
    }

    pub fn status(sw: StatusWord) -> Response {
        Response {
            data: Vec::new(),
            sw,
        }
    }

    pub fn parse(b: &[u8]) -> Result<Response, ApduError> {
        if b.len() < 2 {
            return Err(ApduError::ResponseTooShort(b.len()));
        }
        let (data, sw) = b.split_at(b.len() - 2);
        Ok(Response {
            data: data.to_vec(),
            sw: StatusWord(u16::from_be_bytes([sw[0], sw[1]])),
        })
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.data.len() + 2);
        v.extend_from_slice(&self.data);
        v.extend_from_slice(&self.sw.bytes());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_four_cases() {
        let c = Command::parse(&[0x80, 0x5A, 0, 0]).unwrap();
        assert!(c.data.is_empty() && c.le.is_none());
        let c = Command::parse(&[0x80, 0x5A, 0, 0, 0x10]).unwrap();
        assert_eq!(c.le, Some(0x10));
        let c = Command::parse(&[0x80, 0x5A, 0, 0, 2, 1, 2]).unwrap();
        assert_eq!(c.data, vec![1, 2]);
        assert_eq!(c.le, None);
        let c = Command::parse(&[0x80, 0x5A, 0, 0, 2, 1, 2, 0]).unwrap();
        assert_eq!(c.le, Some(0));
        assert_eq!(c.to_bytes().unwrap(), vec![0x80, 0x5A, 0, 0, 2, 1, 2, 0]);
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(Command::parse(&[0x80, 0x5A]), Err(ApduError::TooShort(2)));
        assert_eq!(
            Command::parse(&[0x80, 0x5A, 0, 0, 0, 0, 4]),
            Err(ApduError::ExtendedLength)
        );
        assert!(matches!(
            Command::parse(&[0x80, 0x5A, 0, 0, 4, 1]),
            Err(ApduError::LcMismatch { .. })
        ));
        assert_eq!(
            Command::parse(&[0x80, 0x5A, 0, 0, 1, 1, 0, 0]),
            Err(ApduError::TrailingBytes(2))
        );
        assert_eq!(
            Response::parse(&[0x90]),
            Err(ApduError::ResponseTooShort(1))
        );
    }

    #[test]
    fn response_roundtrip() {
        let r = Response::parse(&[1, 2, 0x90, 0x00]).unwrap();
        assert_eq!(r.data, vec![1, 2]);
        assert!(r.sw.is_ok());
        assert_eq!(r.to_bytes(), vec![1, 2, 0x90, 0]);
    }
}

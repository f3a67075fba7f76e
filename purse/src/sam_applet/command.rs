//! The SAM command set's structure (sam-protocol section 3): CLA, INS, P1-P2 and length
//! checks with the precedence 6E00, 6D00, 6A86, 6700, over short and extended-length
//! APDUs. What the data means is the handlers' business.

use crate::apdu::StatusWord;

/// The SAM application identifier, "PURSAM" (the purse's is "EPURSE").
pub const SAM_AID: [u8; 7] = [0xF0, 0x50, 0x55, 0x52, 0x53, 0x41, 0x4D];

pub const INS_SELECT: u8 = 0xA4;
pub const INS_BEGIN: u8 = 0x70;
pub const INS_AUTHORIZE: u8 = 0x72;
pub const INS_COMPLETE: u8 = 0x74;
pub const INS_TICK: u8 = 0x76;
pub const INS_STOP: u8 = 0x78;
pub const INS_RECOVERY: u8 = 0x7A;
pub const INS_CLOSE: u8 = 0x7C;
pub const INS_STATUS: u8 = 0x7E;

/// The SAM's own status words (sam-protocol section 4), beside those of [`StatusWord`].
pub mod sw {
    use crate::apdu::StatusWord;

    /// A rolled-back state was detected: the SAM is blocked.
    pub const BLOCKED: StatusWord = StatusWord(0x6983);
    /// A sealed context or a tag does not verify.
    pub const BAD_CONTEXT: StatusWord = StatusWord(0x6988);
    /// The begin context is older than the begin window.
    pub const EXPIRED: StatusWord = StatusWord(0x6A83);
    /// Not the SAM's currency.
    pub const CURRENCY: StatusWord = StatusWord(0x6A81);
    /// The card's key version is not accepted.
    pub const KEY_VERSION: StatusWord = StatusWord(0x6A88);
    /// The tick is not due yet.
    pub const NOT_DUE: StatusWord = StatusWord(0x6986);
    /// No room: too many laggards, or SAM_TxSeq exhausted.
    pub const FULL: StatusWord = StatusWord(0x6A84);
}

/// Sizes of the sealed contexts (version, kind, SIV and plaintext).
pub const BEGIN_CTX_LEN: usize = 49;
pub const TX_CTX_LEN: usize = 119;
pub const RECOVERY_CTX_LEN: usize = 135;
/// `Rec(60) || Tag(8)` of CLOSE RECORD.
pub const CLOSE_ENTRY_LEN: usize = 68;

/// The four steps of a close, in P1 of INS 7C.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseStep {
    /// Close the open period and stream it.
    BeginNew,
    /// Stream the last closed period again (retry or correction).
    BeginAgain,
    Record,
    End,
}

/// A structurally valid SAM command: which one, P1 where it matters, and its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SamCommand<'a> {
    Select(&'a [u8]),
    Status,
    Begin { mode: u8, data: &'a [u8] },
    Authorize(&'a [u8]),
    Complete(&'a [u8]),
    Tick(&'a [u8]),
    Stop { how: u8, data: &'a [u8] },
    RecoveryBegin(&'a [u8]),
    RecoveryEnd(&'a [u8]),
    Close { step: CloseStep, data: &'a [u8] },
}

impl<'a> SamCommand<'a> {
    /// Structural decoding with the precedence 6E00, 6D00, 6A86, 6700.
    pub fn decode(b: &'a [u8]) -> Result<SamCommand<'a>, StatusWord> {
        let Some(&cla) = b.first() else {
            return Err(StatusWord::WRONG_LENGTH);
        };
        if cla != 0x00 && cla != 0x80 {
            return Err(StatusWord::CLA_NOT_SUPPORTED);
        }
        let Some(&ins) = b.get(1) else {
            return Err(StatusWord::WRONG_LENGTH);
        };
        let want_cla = match ins {
            INS_SELECT => 0x00,
            INS_BEGIN | INS_AUTHORIZE | INS_COMPLETE | INS_TICK | INS_STOP | INS_RECOVERY
            | INS_CLOSE | INS_STATUS => 0x80,
            _ => return Err(StatusWord::INS_NOT_SUPPORTED),
        };
        if cla != want_cla {
            return Err(StatusWord::CLA_NOT_SUPPORTED);
        }
        let [_, _, p1, p2, body @ ..] = b else {
            return Err(StatusWord::WRONG_LENGTH);
        };
        let (p1, p2) = (*p1, *p2);
        let p1_ok = match ins {
            INS_SELECT => p1 == 0x04,
            INS_BEGIN => p1 == 0x01 || p1 == 0x02,
            INS_STOP => p1 <= 0x02,
            INS_RECOVERY => p1 <= 0x01,
            INS_CLOSE => p1 <= 0x03,
            _ => p1 == 0x00,
        };
        if !p1_ok || p2 != 0x00 {
            return Err(StatusWord::WRONG_P1P2);
        }
        let data = data_field(body).ok_or(StatusWord::WRONG_LENGTH)?;
        let cmd = match (ins, p1) {
            (INS_SELECT, _) => SamCommand::Select(data),
            (INS_STATUS, _) => SamCommand::Status,
            (INS_BEGIN, mode) => SamCommand::Begin { mode, data },
            (INS_AUTHORIZE, _) => SamCommand::Authorize(data),
            (INS_COMPLETE, _) => SamCommand::Complete(data),
            (INS_TICK, _) => SamCommand::Tick(data),
            (INS_STOP, how) => SamCommand::Stop { how, data },
            (INS_RECOVERY, 0) => SamCommand::RecoveryBegin(data),
            (INS_RECOVERY, _) => SamCommand::RecoveryEnd(data),
            (_, p1) => SamCommand::Close {
                step: match p1 {
                    0 => CloseStep::BeginNew,
                    1 => CloseStep::BeginAgain,
                    2 => CloseStep::Record,
                    _ => CloseStep::End,
                },
                data,
            },
        };
        if cmd.length_ok() {
            Ok(cmd)
        } else {
            Err(StatusWord::WRONG_LENGTH)
        }
    }

    /// The data field's length rule of each command.
    fn length_ok(&self) -> bool {
        match *self {
            SamCommand::Select(d) => d.len() == 7,
            SamCommand::Status => true,
            SamCommand::Begin { data, .. } => data.len() == 12,
            SamCommand::Authorize(d) => d.len() == 5 + 42 + BEGIN_CTX_LEN,
            SamCommand::Complete(d) => match d.first() {
                Some(&n) => (2..=22).contains(&n) && d.len() == 1 + usize::from(n) + TX_CTX_LEN,
                None => false,
            },
            SamCommand::Tick(d) => d.len() == 4 + TX_CTX_LEN,
            SamCommand::Stop { data, .. } | SamCommand::RecoveryBegin(data) => {
                data.len() == TX_CTX_LEN
            }
            SamCommand::RecoveryEnd(d) => match d.get(42) {
                Some(&n) => {
                    (n == 0 || (2..=53).contains(&n))
                        && d.len() == 43 + usize::from(n) + RECOVERY_CTX_LEN
                }
                None => false,
            },
            SamCommand::Close { step, data } => match step {
                CloseStep::BeginNew | CloseStep::BeginAgain => data.len() == 4,
                CloseStep::Record => !data.is_empty() && data.len() % CLOSE_ENTRY_LEN == 0,
                CloseStep::End => data.is_empty(),
            },
        }
    }
}

/// The data field after the header: short (`Lc Data [Le]`, `[Le]`) or extended
/// (`00 Lc(2) Data [Le(2)]`, `00 Le(2)`). `None` when the lengths do not add up.
fn data_field(body: &[u8]) -> Option<&[u8]> {
    match body {
        [] | [_] => Some(&[]),
        [0, hi, lo, rest @ ..] => {
            let lc = usize::from(u16::from_be_bytes([*hi, *lo]));
            match rest.len() {
                0 => Some(&[]),
                n if lc > 0 && (n == lc || n == lc + 2) => Some(&rest[..lc]),
                _ => None,
            }
        }
        [lc, rest @ ..] => {
            let lc = usize::from(*lc);
            (lc > 0 && (rest.len() == lc || rest.len() == lc + 1)).then(|| &rest[..lc])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sw(b: &[u8]) -> u16 {
        SamCommand::decode(b).err().map_or(0x9000, |s| s.0)
    }

    #[test]
    fn precedence_and_lengths() {
        assert_eq!(sw(&[]), 0x6700);
        assert_eq!(sw(&[0xA0, 0x70]), 0x6E00);
        assert_eq!(sw(&[0x80, 0x50]), 0x6D00);
        assert_eq!(sw(&[0x00, 0x70, 1, 0]), 0x6E00);
        assert_eq!(sw(&[0x80, 0x70, 3, 0]), 0x6A86);
        assert_eq!(sw(&[0x80, 0x70, 1, 0]), 0x6700);
        assert_eq!(sw(&[0x80, 0x7E, 0, 0]), 0x9000);
        assert_eq!(sw(&[0x80, 0x7E, 0, 0, 0]), 0x9000);
        assert_eq!(sw(&[0x80, 0x7E, 0, 0, 0, 0, 0]), 0x9000, "extended Le");
        let mut b = vec![0x80, 0x70, 1, 0, 12];
        b.extend_from_slice(&[0; 12]);
        assert_eq!(sw(&b), 0x9000);
        b.push(0);
        assert_eq!(sw(&b), 0x9000, "with Le");
        b.push(0);
        assert_eq!(sw(&b), 0x6700, "two trailing bytes in a short APDU");
    }

    #[test]
    fn extended_close_record() {
        let n = 5 * CLOSE_ENTRY_LEN;
        let mut b = vec![0x80, 0x7C, 2, 0, 0];
        b.extend_from_slice(&(n as u16).to_be_bytes());
        b.extend(std::iter::repeat_n(0u8, n));
        assert!(matches!(
            SamCommand::decode(&b),
            Ok(SamCommand::Close { step: CloseStep::Record, data }) if data.len() == n
        ));
        b.pop();
        assert_eq!(sw(&b), 0x6700);
    }
}

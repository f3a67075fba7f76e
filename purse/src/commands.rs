//! The purse command set of spec section 4: typed commands and responses, their exact
//! byte encodings, and the structural decoding of a command with the spec's status-word
//! precedence (6E00, 6D00, 6A86, 6700). State and data checks belong to the card.
//!
//! The card applet, the surrogate and the native host's APDU guard all use this one
//! decoder, so they cannot disagree on what a command is.

use crate::apdu::StatusWord;
use crate::error::ParseError;
use crate::types::{
    Amount, CardId, Currency, DateTime, KeyVersion, Mac8, Mode, Nt, Rnd, SamId, SamTxSeq, Units,
    AID,
};

pub const CLA_ISO: u8 = 0x00;
pub const CLA_PURSE: u8 = 0x80;
pub const INS_SELECT: u8 = 0xA4;
pub const INS_INITIALIZE: u8 = 0x50;
pub const INS_DEBIT: u8 = 0x54;
pub const INS_TICK: u8 = 0x56;
pub const INS_GET_PROOF: u8 = 0x5A;

/// INITIALIZE FOR PURCHASE as the SAM builds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitializeCmd {
    pub mode: Mode,
    pub kv: KeyVersion,
    pub sam_id: SamId,
    pub rnd_s: Rnd,
    pub u: Amount,
    pub max_units: Units,
}

/// DEBIT FOR PURCHASE: charges unit 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DebitCmd {
    pub sam_tx_seq: SamTxSeq,
    pub datetime: DateTime,
    pub s2: Mac8,
}

/// DEBIT TICK: charges unit `k >= 2`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TickCmd {
    pub k: Units,
    pub s2k: Mac8,
}

/// A purse command, structurally valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CardCommand {
    /// SELECT by name; the AID may still be a foreign one (6A82 is the card's check).
    Select {
        aid: [u8; 7],
    },
    Initialize(InitializeCmd),
    Debit(DebitCmd),
    Tick(TickCmd),
    GetProof {
        nt: Nt,
    },
}

/// Whether the raw bytes are a command with CLA 00 and INS A4 (which ends the session
/// and deselects unless it succeeds), whatever else is wrong with them.
pub fn is_select_class(b: &[u8]) -> bool {
    matches!(b, [CLA_ISO, INS_SELECT, ..])
}

impl CardCommand {
    pub fn select() -> CardCommand {
        CardCommand::Select { aid: AID }
    }

    /// The INS byte of this command.
    pub fn ins(&self) -> u8 {
        match self {
            CardCommand::Select { .. } => INS_SELECT,
            CardCommand::Initialize(_) => INS_INITIALIZE,
            CardCommand::Debit(_) => INS_DEBIT,
            CardCommand::Tick(_) => INS_TICK,
            CardCommand::GetProof { .. } => INS_GET_PROOF,
        }
    }

    /// The full command APDU, with `Le = 00`.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(36);
        match self {
            CardCommand::Select { aid } => {
                v.extend_from_slice(&[CLA_ISO, INS_SELECT, 0x04, 0x00, 7]);
                v.extend_from_slice(aid);
            }
            CardCommand::Initialize(c) => {
                v.extend_from_slice(&[CLA_PURSE, INS_INITIALIZE, c.mode.p1(), c.kv.0, 0x1E]);
                v.extend_from_slice(&c.sam_id.0);
                v.extend_from_slice(&c.rnd_s.0);
                v.extend_from_slice(&c.u.0.to_be_bytes());
                v.extend_from_slice(&c.max_units.0.to_be_bytes());
            }
            CardCommand::Debit(c) => {
                v.extend_from_slice(&[CLA_PURSE, INS_DEBIT, 0, 0, 0x10]);
                v.extend_from_slice(&c.sam_tx_seq.0.to_be_bytes());
                v.extend_from_slice(&c.datetime.0.to_be_bytes());
                v.extend_from_slice(&c.s2.0);
            }
            CardCommand::Tick(c) => {
                v.extend_from_slice(&[CLA_PURSE, INS_TICK, 0, 0, 0x0A]);
                v.extend_from_slice(&c.k.0.to_be_bytes());
                v.extend_from_slice(&c.s2k.0);
            }
            CardCommand::GetProof { nt } => {
                v.extend_from_slice(&[CLA_PURSE, INS_GET_PROOF, 0, 0, 4]);
                v.extend_from_slice(&nt.0.to_be_bytes());
            }
        }
        v.push(0x00);
        v
    }

    /// Structural decoding with the spec's precedence: 6E00, 6D00, 6A86, 6700.
    ///
    /// `card_kv` is the card's key version: an INITIALIZE whose P2 differs is 6A86.
    /// `None` accepts any P2 (a relay that has not seen the card's SELECT yet).
    pub fn decode(b: &[u8], card_kv: Option<KeyVersion>) -> Result<CardCommand, StatusWord> {
        let Some(&cla) = b.first() else {
            return Err(StatusWord::WRONG_LENGTH);
        };
        if cla != CLA_ISO && cla != CLA_PURSE {
            return Err(StatusWord::CLA_NOT_SUPPORTED);
        }
        let Some(&ins) = b.get(1) else {
            return Err(StatusWord::WRONG_LENGTH);
        };
        let (want_cla, lc) = match ins {
            INS_SELECT => (CLA_ISO, 7),
            INS_INITIALIZE => (CLA_PURSE, 0x1E),
            INS_DEBIT => (CLA_PURSE, 0x10),
            INS_TICK => (CLA_PURSE, 0x0A),
            INS_GET_PROOF => (CLA_PURSE, 4),
            _ => return Err(StatusWord::INS_NOT_SUPPORTED),
        };
        if cla != want_cla {
            return Err(StatusWord::CLA_NOT_SUPPORTED);
        }
        let [_, _, p1, p2, body @ ..] = b else {
            return Err(StatusWord::WRONG_LENGTH);
        };
        let p1p2_ok = match ins {
            INS_SELECT => (*p1, *p2) == (0x04, 0x00),
            INS_INITIALIZE => Mode::from_p1(*p1).is_some() && card_kv.is_none_or(|kv| kv.0 == *p2),
            _ => (*p1, *p2) == (0, 0),
        };
        if !p1p2_ok {
            return Err(StatusWord::WRONG_P1P2);
        }
        // Exactly Lc, the data, and an optional one-byte Le of any value.
        let data = match body {
            [l, rest @ ..]
                if usize::from(*l) == lc && (rest.len() == lc || rest.len() == lc + 1) =>
            {
                &rest[..lc]
            }
            _ => return Err(StatusWord::WRONG_LENGTH),
        };
        let mut r = Reader::new(data);
        Ok(match ins {
            INS_SELECT => CardCommand::Select { aid: r.array() },
            INS_INITIALIZE => CardCommand::Initialize(InitializeCmd {
                // p1 was checked above; StatusOnly is never reached.
                mode: Mode::from_p1(*p1).unwrap_or(Mode::StatusOnly),
                kv: KeyVersion(*p2),
                sam_id: SamId(r.array()),
                rnd_s: Rnd(r.array()),
                u: Amount(r.u32()),
                max_units: Units(r.u16()),
            }),
            INS_DEBIT => CardCommand::Debit(DebitCmd {
                sam_tx_seq: SamTxSeq(r.u32()),
                datetime: DateTime(r.u32()),
                s2: Mac8(r.array()),
            }),
            INS_TICK => CardCommand::Tick(TickCmd {
                k: Units(r.u16()),
                s2k: Mac8(r.array()),
            }),
            _ => CardCommand::GetProof { nt: Nt(r.u32()) },
        })
    }
}

/// Reads fixed-size big-endian fields from a slice whose length the caller checked.
pub(crate) struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Reader { b }
    }

    /// The next `N` bytes; zeros past the end (callers check lengths first).
    pub(crate) fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let n = N.min(self.b.len());
        out[..n].copy_from_slice(&self.b[..n]);
        self.b = &self.b[n..];
        out
    }

    pub(crate) fn u8(&mut self) -> u8 {
        self.array::<1>()[0]
    }

    pub(crate) fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.array())
    }

    pub(crate) fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.array())
    }
}

fn expect_len(field: &'static str, b: &[u8], n: usize) -> Result<(), ParseError> {
    if b.len() == n {
        Ok(())
    } else {
        Err(ParseError::Length {
            field,
            expected: n,
            got: b.len(),
        })
    }
}

/// The SELECT response (the purse's FCI), 20 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectInfo {
    pub app_version: u8,
    pub kv: KeyVersion,
    pub card_id: CardId,
    pub currency: Currency,
    pub balance: Amount,
    pub nt_last: Nt,
}

impl SelectInfo {
    pub const LEN: usize = 20;

    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(Self::LEN);
        v.push(self.app_version);
        v.push(self.kv.0);
        v.extend_from_slice(&self.card_id.0);
        v.extend_from_slice(&self.currency.numeric().to_be_bytes());
        v.extend_from_slice(&self.balance.0.to_be_bytes());
        v.extend_from_slice(&self.nt_last.0.to_be_bytes());
        v
    }

    pub fn parse(b: &[u8]) -> Result<SelectInfo, ParseError> {
        expect_len("SELECT response", b, Self::LEN)?;
        let mut r = Reader::new(b);
        Ok(SelectInfo {
            app_version: r.u8(),
            kv: KeyVersion(r.u8()),
            card_id: CardId(r.array()),
            currency: Currency::from_numeric(r.u16())?,
            balance: Amount(r.u32()),
            nt_last: Nt(r.u32()),
        })
    }
}

/// The INITIALIZE FOR PURCHASE response, 42 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitializeResponse {
    pub card_id: CardId,
    pub nt: Nt,
    pub balance: Amount,
    pub currency: Currency,
    pub rnd_c: Rnd,
    pub s1: Mac8,
}

impl InitializeResponse {
    pub const LEN: usize = 42;

    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(Self::LEN);
        v.extend_from_slice(&self.card_id.0);
        v.extend_from_slice(&self.nt.0.to_be_bytes());
        v.extend_from_slice(&self.balance.0.to_be_bytes());
        v.extend_from_slice(&self.currency.numeric().to_be_bytes());
        v.extend_from_slice(&self.rnd_c.0);
        v.extend_from_slice(&self.s1.0);
        v
    }

    pub fn parse(b: &[u8]) -> Result<InitializeResponse, ParseError> {
        expect_len("INITIALIZE response", b, Self::LEN)?;
        let mut r = Reader::new(b);
        Ok(InitializeResponse {
            card_id: CardId(r.array()),
            nt: Nt(r.u32()),
            balance: Amount(r.u32()),
            currency: Currency::from_numeric(r.u16())?,
            rnd_c: Rnd(r.array()),
            s1: Mac8(r.array()),
        })
    }
}

/// The DEBIT / DEBIT TICK response, 20 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DebitResponse {
    pub balance_after: Amount,
    pub s3: Mac8,
    pub tac: Mac8,
}

impl DebitResponse {
    pub const LEN: usize = 20;

    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(Self::LEN);
        v.extend_from_slice(&self.balance_after.0.to_be_bytes());
        v.extend_from_slice(&self.s3.0);
        v.extend_from_slice(&self.tac.0);
        v
    }

    pub fn parse(b: &[u8]) -> Result<DebitResponse, ParseError> {
        expect_len("DEBIT response", b, Self::LEN)?;
        let mut r = Reader::new(b);
        Ok(DebitResponse {
            balance_after: Amount(r.u32()),
            s3: Mac8(r.array()),
            tac: Mac8(r.array()),
        })
    }
}

/// A transaction record `R(NT)`, 51 bytes: the card's proof of one purchase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxRecord {
    pub nt: Nt,
    pub sam_id: SamId,
    pub sam_tx_seq: SamTxSeq,
    pub datetime: DateTime,
    /// `P1` as the card stored it (1 or 2 from a conforming card).
    pub mode: u8,
    pub u: Amount,
    pub units: Units,
    pub total: Amount,
    pub balance_after: Amount,
    pub s3: Mac8,
    pub tac: Mac8,
}

impl TxRecord {
    pub const LEN: usize = 51;

    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(Self::LEN);
        v.extend_from_slice(&self.nt.0.to_be_bytes());
        v.extend_from_slice(&self.sam_id.0);
        v.extend_from_slice(&self.sam_tx_seq.0.to_be_bytes());
        v.extend_from_slice(&self.datetime.0.to_be_bytes());
        v.push(self.mode);
        v.extend_from_slice(&self.u.0.to_be_bytes());
        v.extend_from_slice(&self.units.0.to_be_bytes());
        v.extend_from_slice(&self.total.0.to_be_bytes());
        v.extend_from_slice(&self.balance_after.0.to_be_bytes());
        v.extend_from_slice(&self.s3.0);
        v.extend_from_slice(&self.tac.0);
        v
    }

    pub fn parse(b: &[u8]) -> Result<TxRecord, ParseError> {
        expect_len("transaction record", b, Self::LEN)?;
        let mut r = Reader::new(b);
        Ok(TxRecord {
            nt: Nt(r.u32()),
            sam_id: SamId(r.array()),
            sam_tx_seq: SamTxSeq(r.u32()),
            datetime: DateTime(r.u32()),
            mode: r.u8(),
            u: Amount(r.u32()),
            units: Units(r.u16()),
            total: Amount(r.u32()),
            balance_after: Amount(r.u32()),
            s3: Mac8(r.array()),
            tac: Mac8(r.array()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    #[test]
    fn select_encodes_as_in_the_vectors() {
        assert_eq!(
            CardCommand::select().encode(),
            h("00a4040007f045505552534500")
        );
    }

    #[test]
    fn decode_roundtrips_every_command() {
        let cmds = [
            CardCommand::select(),
            CardCommand::Initialize(InitializeCmd {
                mode: Mode::TimeCycle,
                kv: KeyVersion(1),
                sam_id: SamId([5; 8]),
                rnd_s: Rnd([7; 16]),
                u: Amount(200),
                max_units: Units(4),
            }),
            CardCommand::Debit(DebitCmd {
                sam_tx_seq: SamTxSeq(3),
                datetime: DateTime(1_795_000_000),
                s2: Mac8([9; 8]),
            }),
            CardCommand::Tick(TickCmd {
                k: Units(2),
                s2k: Mac8([1; 8]),
            }),
            CardCommand::GetProof { nt: Nt(7) },
        ];
        for c in cmds {
            let b = c.encode();
            assert_eq!(CardCommand::decode(&b, Some(KeyVersion(1))), Ok(c.clone()));
            // Without Le too.
            assert_eq!(CardCommand::decode(&b[..b.len() - 1], None), Ok(c));
        }
    }

    #[test]
    fn decode_precedence() {
        let sw = |s: &str| {
            CardCommand::decode(&h(s), Some(KeyVersion(1)))
                .unwrap_err()
                .0
        };
        assert_eq!(sw(""), 0x6700);
        assert_eq!(sw("a0"), 0x6E00);
        assert_eq!(sw("a0ca"), 0x6E00);
        assert_eq!(sw("80ca07"), 0x6D00);
        assert_eq!(sw("005001"), 0x6E00);
        assert_eq!(sw("805003"), 0x6700);
        assert_eq!(sw("805a000004000000050000"), 0x6700);
        assert_eq!(sw("805a0100040000000500"), 0x6A86);
        assert_eq!(sw("00a4040c07f045505552534600"), 0x6A86);
        assert_eq!(
            sw("805001021e5a000000000000015b1a013f75fb00fce685ff0ce993f4bd00000064000100"),
            0x6A86
        );
    }

    #[test]
    fn responses_reject_wrong_lengths() {
        assert!(SelectInfo::parse(&[0; 19]).is_err());
        assert!(InitializeResponse::parse(&[0; 43]).is_err());
        assert!(DebitResponse::parse(&[]).is_err());
        assert!(TxRecord::parse(&[0; 50]).is_err());
    }
}

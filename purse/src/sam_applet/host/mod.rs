//! The SAM applet's command set as its host sees it (docs/sam-protocol.md section 3):
//! each command's APDU and each answer parsed into typed values. Sans-IO: the shop
//! plugin and the test drivers bring the transport. No answer bytes make it panic.

use thiserror::Error;

use super::command::{BEGIN_CTX_LEN, RECOVERY_CTX_LEN, SAM_AID, TX_CTX_LEN};
use super::outcome;
use crate::apdu::StatusWord;
use crate::commands::TxRecord;
use crate::sam::Order;
use crate::settlement::{Batch, BatchTx, Totals, FORMAT};
use crate::{
    CardId, CloseSeq, Currency, DateTime, Journal, KeyVersion, Mac8, SamId, SamTxSeq, Sum,
};

/// Why an answer of the SAM is not what its command set says.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AnswerError {
    #[error("an answer without a status word")]
    NoStatusWord,
    #[error("{got} bytes where the SAM answers {want}")]
    Length { got: usize, want: usize },
    #[error("unknown currency {0}")]
    Currency(u16),
    #[error("unknown outcome {0:#04x}")]
    Outcome(u8),
    #[error("the SAM's record does not parse")]
    Record,
}

/// A command APDU before framing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SamApdu {
    head: [u8; 4],
    data: Vec<u8>,
    /// Whether the answer carries data (an Le follows command data).
    answers: bool,
}

impl SamApdu {
    fn new(head: [u8; 4], data: Vec<u8>, answers: bool) -> SamApdu {
        SamApdu {
            head,
            data,
            answers,
        }
    }

    /// ISO 7816-4 framing: short when the data fit, extended above 255 bytes; Le when
    /// the command answers with data (what readers need).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.frame(self.answers)
    }

    /// The same without the Le after command data: the form the v1 vectors record
    /// (the applet answers both alike).
    pub fn without_le(&self) -> Vec<u8> {
        self.frame(self.answers && self.data.is_empty())
    }

    fn frame(&self, le: bool) -> Vec<u8> {
        let mut a = self.head.to_vec();
        let n = self.data.len();
        let extended = n > 255;
        if n > 0 {
            if extended {
                a.push(0);
                a.extend_from_slice(&(n as u16).to_be_bytes());
            } else {
                a.push(n as u8);
            }
            a.extend_from_slice(&self.data);
        }
        if le {
            a.push(0);
            if extended {
                a.push(0);
            }
        }
        a
    }
}

/// `data || SW` split; the data when SW is 9000, else the refusal.
pub fn answer(r: &[u8]) -> Result<Result<&[u8], StatusWord>, AnswerError> {
    let split = r.len().checked_sub(2).ok_or(AnswerError::NoStatusWord)?;
    let sw = StatusWord(u16::from_be_bytes([r[split], r[split + 1]]));
    Ok(if sw.is_ok() { Ok(&r[..split]) } else { Err(sw) })
}

fn need(d: &[u8], want: usize) -> Result<(), AnswerError> {
    if d.len() == want {
        Ok(())
    } else {
        Err(AnswerError::Length { got: d.len(), want })
    }
}

/// Four bytes at `at` (callers checked the length).
fn be32(d: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&d[at..at + 4]);
    u32::from_be_bytes(x)
}

fn be64(d: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&d[at..at + 8]);
    u64::from_be_bytes(x)
}

fn bytes8(d: &[u8], at: usize) -> [u8; 8] {
    let mut x = [0u8; 8];
    x.copy_from_slice(&d[at..at + 8]);
    x
}

pub fn select() -> SamApdu {
    SamApdu::new([0x00, 0xA4, 0x04, 0x00], SAM_AID.to_vec(), true)
}

/// Who the SAM is (SELECT).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub sam_id: SamId,
    pub key_version: KeyVersion,
    pub currency: Currency,
}

pub fn identity(d: &[u8]) -> Result<Identity, AnswerError> {
    need(d, 12)?;
    let numeric = u16::from_be_bytes([d[10], d[11]]);
    Ok(Identity {
        sam_id: SamId(bytes8(d, 1)),
        key_version: KeyVersion(d[9]),
        currency: Currency::from_numeric(numeric).map_err(|_| AnswerError::Currency(numeric))?,
    })
}

pub fn get_status() -> SamApdu {
    SamApdu::new([0x80, 0x7E, 0x00, 0x00], Vec::new(), true)
}

/// GET STATUS: counters and totals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    pub sam_id: SamId,
    pub next_tx_seq: SamTxSeq,
    pub last_close_seq: CloseSeq,
    pub period_count: u32,
    pub period_sum: u64,
    pub closed_count: u32,
    pub closed_sum: u64,
    pub laggards: u8,
    pub blocked: bool,
}

pub fn status(d: &[u8]) -> Result<Status, AnswerError> {
    need(d, 45)?;
    Ok(Status {
        sam_id: SamId(bytes8(d, 0)),
        next_tx_seq: SamTxSeq(be32(d, 11)),
        last_close_seq: CloseSeq(be32(d, 15)),
        period_count: be32(d, 19),
        period_sum: be64(d, 23),
        closed_count: be32(d, 31),
        closed_sum: be64(d, 35),
        laggards: d[43],
        blocked: d[44] != 0,
    })
}

pub fn begin(order: &Order, currency: Currency) -> SamApdu {
    let mut d = order.unit_amount.0.to_be_bytes().to_vec();
    d.extend_from_slice(&order.max_units.0.to_be_bytes());
    d.extend_from_slice(&order.period_secs.to_be_bytes());
    d.extend_from_slice(&currency.numeric().to_be_bytes());
    SamApdu::new([0x80, 0x70, order.mode.p1(), 0x00], d, true)
}

/// BEGIN's or RECOVERY BEGIN's answer: the INITIALIZE data and the sealed context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Begun {
    pub init_data: Vec<u8>,
    pub ctx: Vec<u8>,
}

fn split(d: &[u8], head: usize, ctx: usize) -> Result<(Vec<u8>, Vec<u8>), AnswerError> {
    need(d, head + ctx)?;
    Ok((d[..head].to_vec(), d[head..].to_vec()))
}

pub fn begun(d: &[u8]) -> Result<Begun, AnswerError> {
    let (init_data, ctx) = split(d, 30, BEGIN_CTX_LEN)?;
    Ok(Begun { init_data, ctx })
}

pub fn authorize(kv: KeyVersion, now: DateTime, init_resp: &[u8], begin_ctx: &[u8]) -> SamApdu {
    let d = [&[kv.0][..], &now.0.to_be_bytes(), init_resp, begin_ctx].concat();
    SamApdu::new([0x80, 0x72, 0x00, 0x00], d, true)
}

/// AUTHORIZE's answer: the DEBIT data (`SAM_TxSeq || DateTime || S2`) and the context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorized {
    pub debit_data: Vec<u8>,
    pub sam_tx_seq: SamTxSeq,
    pub ctx: Vec<u8>,
}

pub fn authorized(d: &[u8]) -> Result<Authorized, AnswerError> {
    let (debit_data, ctx) = split(d, 16, TX_CTX_LEN)?;
    Ok(Authorized {
        sam_tx_seq: SamTxSeq(be32(&debit_data, 0)),
        debit_data,
        ctx,
    })
}

/// COMPLETE with the card's whole answer (data and SW).
pub fn complete(answer: &[u8], ctx: &[u8]) -> SamApdu {
    let d = [&[answer.len() as u8][..], answer, ctx].concat();
    SamApdu::new([0x80, 0x74, 0x00, 0x00], d, true)
}

pub fn tick(now: DateTime, ctx: &[u8]) -> SamApdu {
    let d = [&now.0.to_be_bytes()[..], ctx].concat();
    SamApdu::new([0x80, 0x76, 0x00, 0x00], d, true)
}

/// TICK's answer: `k || S2k` for the card and the context with `k` in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticked {
    pub tick_data: Vec<u8>,
    pub ctx: Vec<u8>,
}

pub fn ticked(d: &[u8]) -> Result<Ticked, AnswerError> {
    let (tick_data, ctx) = split(d, 10, TX_CTX_LEN)?;
    Ok(Ticked { tick_data, ctx })
}

/// STOP's `How`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopHow {
    /// End a running time-cycle at its confirmed units.
    Running = 0,
    /// The clearing office decided: not debited.
    NotDebited = 1,
    /// The clearing office decided: debited (it settles the unit itself).
    Debited = 2,
}

pub fn stop(how: StopHow, ctx: &[u8]) -> SamApdu {
    SamApdu::new([0x80, 0x78, how as u8, 0x00], ctx.to_vec(), true)
}

pub fn recovery_begin(ctx: &[u8]) -> SamApdu {
    SamApdu::new([0x80, 0x7A, 0x00, 0x00], ctx.to_vec(), true)
}

pub fn recovery_begun(d: &[u8]) -> Result<Begun, AnswerError> {
    let (init_data, ctx) = split(d, 30, RECOVERY_CTX_LEN)?;
    Ok(Begun { init_data, ctx })
}

pub fn recovery_end(init_resp: &[u8], proof: &[u8], rec_ctx: &[u8]) -> SamApdu {
    let d = [init_resp, &[proof.len() as u8], proof, rec_ctx].concat();
    SamApdu::new([0x80, 0x7A, 0x01, 0x00], d, true)
}

/// A record the SAM counted: its period, `Rec = KV || CardID || R(NT)` and the tag the
/// close needs back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counted {
    pub period: CloseSeq,
    pub rec: Vec<u8>,
    pub tag: [u8; 8],
}

/// `KV || CardID` before `R(NT)` in a counted record.
const REC_HEAD: usize = 9;

impl Counted {
    pub fn tx_record(&self) -> Result<TxRecord, AnswerError> {
        let r = self.rec.get(REC_HEAD..).ok_or(AnswerError::Record)?;
        TxRecord::parse(r).map_err(|_| AnswerError::Record)
    }

    /// The record's `SAM_TxSeq` (0 for a hand-made record that does not parse).
    pub fn seq(&self) -> SamTxSeq {
        self.tx_record().map_or(SamTxSeq(0), |r| r.sam_tx_seq)
    }

    pub fn batch_tx(&self) -> Result<BatchTx, AnswerError> {
        let r = self.tx_record()?;
        let card = CardId(bytes8(&self.rec, 1));
        Ok(BatchTx::from_record(KeyVersion(self.rec[0]), card, &r))
    }

    /// `Rec || Tag`, as CLOSE RECORD takes it.
    pub fn entry(&self) -> Vec<u8> {
        [self.rec.as_slice(), &self.tag].concat()
    }
}

/// What COMPLETE, STOP and RECOVERY END say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A time-cycle runs on: its new context.
    Running(Vec<u8>),
    /// Final and counted.
    Completed(Counted),
    /// Final with nothing to settle.
    Nothing,
    /// Recovery could not decide.
    Pending,
}

pub fn outcome(d: &[u8]) -> Result<Outcome, AnswerError> {
    match d.first() {
        Some(&outcome::RUNNING) => {
            need(d, 1 + TX_CTX_LEN)?;
            Ok(Outcome::Running(d[1..].to_vec()))
        }
        Some(&outcome::COMPLETED) => {
            need(d, 73)?;
            let c = Counted {
                period: CloseSeq(be32(d, 1)),
                rec: d[5..65].to_vec(),
                tag: bytes8(d, 65),
            };
            c.tx_record()?;
            Ok(Outcome::Completed(c))
        }
        Some(&outcome::NOTHING) => Ok(Outcome::Nothing),
        Some(&outcome::PENDING) => Ok(Outcome::Pending),
        Some(&other) => Err(AnswerError::Outcome(other)),
        None => Err(AnswerError::Length { got: 0, want: 1 }),
    }
}

/// CLOSE BEGIN: `again` streams the last closed period once more.
pub fn close_begin(again: bool, close_seq: CloseSeq) -> SamApdu {
    let d = close_seq.0.to_be_bytes().to_vec();
    SamApdu::new([0x80, 0x7C, u8::from(again), 0x00], d, true)
}

/// CLOSE BEGIN's answer: the period and its frozen totals (`CloseSeq`, count, sum).
pub fn close_begun(d: &[u8]) -> Result<(CloseSeq, u32, u64), AnswerError> {
    need(d, 16)?;
    Ok((CloseSeq(be32(d, 0)), be32(d, 4), be64(d, 8)))
}

/// Records per CLOSE RECORD: three fit a short APDU, which every reader takes.
pub const RECORDS_PER_APDU: usize = 3;

/// CLOSE RECORD with `records`: short up to three, extended above.
pub fn close_record(records: &[Counted]) -> SamApdu {
    close_entries(records.iter().flat_map(Counted::entry).collect())
}

/// CLOSE RECORD with entries (`Rec || Tag` each) as they are, altered ones included.
pub fn close_entries(entries: Vec<u8>) -> SamApdu {
    SamApdu::new([0x80, 0x7C, 0x02, 0x00], entries, false)
}

pub fn close_end() -> SamApdu {
    SamApdu::new([0x80, 0x7C, 0x03, 0x00], Vec::new(), true)
}

/// CLOSE END's answer: `TR(50) || TRMAC(8)`.
pub fn close_signed(d: &[u8]) -> Result<Vec<u8>, AnswerError> {
    need(d, 58)?;
    Ok(d.to_vec())
}

/// The batch file of a close: the streamed `records` and CLOSE END's `TR || TRMAC`.
pub fn batch(
    id: &Identity,
    records: &[Counted],
    signed: &[u8],
    created_at: &str,
) -> Result<Batch, AnswerError> {
    need(signed, 58)?;
    Ok(Batch {
        format: FORMAT.to_string(),
        sam_id: SamId(bytes8(signed, 0)),
        close_seq: CloseSeq(be32(signed, 8)),
        currency: id.currency,
        created_at: created_at.to_string(),
        key_version: id.key_version,
        transactions: records
            .iter()
            .map(Counted::batch_tx)
            .collect::<Result<_, _>>()?,
        unresolved: Vec::new(),
        totals: Totals {
            count: be32(signed, 20),
            sum: Sum(be64(signed, 24)),
            first_tx_seq: SamTxSeq(be32(signed, 12)),
            last_tx_seq: SamTxSeq(be32(signed, 16)),
            journal: Journal(signed[34..50].try_into().map_err(|_| AnswerError::Record)?),
            mac: Mac8(bytes8(signed, 50)),
        },
    })
}

#[cfg(test)]
mod tests;

//! The SAM applet's command set (docs/sam-protocol.md section 3) as the host sees it:
//! each command's APDU, and its answer parsed into typed values. No I/O here.

use purse::commands::TxRecord;
use purse::sam::Order;
use purse::sam_applet::{outcome, SAM_AID};
use purse::settlement::BatchTx;
use purse::{CardId, CloseSeq, Currency, DateTime, KeyVersion, SamId, SamTxSeq};

use super::SamError;

/// `CLA INS P1 P2 [Lc data] Le`: short when the data fit, extended above 255 bytes.
pub fn apdu(head: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut a = head.to_vec();
    match data.len() {
        0 => a.push(0),
        n if n <= 255 => {
            a.push(n as u8);
            a.extend_from_slice(data);
            a.push(0);
        }
        n => {
            a.push(0);
            a.extend_from_slice(&(n as u16).to_be_bytes());
            a.extend_from_slice(data);
            a.extend_from_slice(&[0, 0]);
        }
    }
    a
}

pub fn select() -> Vec<u8> {
    let mut a = vec![0x00, 0xA4, 0x04, 0x00, SAM_AID.len() as u8];
    a.extend_from_slice(&SAM_AID);
    a.push(0);
    a
}

fn be32(b: &[u8]) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[..4]);
    u32::from_be_bytes(x)
}

fn be64(b: &[u8]) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[..8]);
    u64::from_be_bytes(x)
}

fn need(data: &[u8], len: usize) -> Result<(), SamError> {
    if data.len() == len {
        Ok(())
    } else {
        Err(SamError::Malformed(format!(
            "{} bytes where the SAM answers {len}",
            data.len()
        )))
    }
}

/// Who the SAM is (SELECT).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub sam_id: SamId,
    pub key_version: KeyVersion,
    pub currency: Currency,
}

pub fn identity(d: &[u8]) -> Result<Identity, SamError> {
    need(d, 12)?;
    let mut id = [0u8; 8];
    id.copy_from_slice(&d[1..9]);
    let currency = Currency::from_numeric(u16::from_be_bytes([d[10], d[11]]))
        .map_err(|_| SamError::Malformed("unknown currency".into()))?;
    Ok(Identity {
        sam_id: SamId(id),
        key_version: KeyVersion(d[9]),
        currency,
    })
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

pub const GET_STATUS: [u8; 5] = [0x80, 0x7E, 0x00, 0x00, 0x00];

pub fn status(d: &[u8]) -> Result<Status, SamError> {
    need(d, 45)?;
    let mut id = [0u8; 8];
    id.copy_from_slice(&d[..8]);
    Ok(Status {
        sam_id: SamId(id),
        next_tx_seq: SamTxSeq(be32(&d[11..])),
        last_close_seq: CloseSeq(be32(&d[15..])),
        period_count: be32(&d[19..]),
        period_sum: be64(&d[23..]),
        closed_count: be32(&d[31..]),
        closed_sum: be64(&d[35..]),
        laggards: d[43],
        blocked: d[44] != 0,
    })
}

pub fn begin(order: &Order, currency: Currency) -> Vec<u8> {
    let mut d = order.unit_amount.0.to_be_bytes().to_vec();
    d.extend_from_slice(&order.max_units.0.to_be_bytes());
    d.extend_from_slice(&order.period_secs.to_be_bytes());
    d.extend_from_slice(&currency.numeric().to_be_bytes());
    apdu([0x80, 0x70, order.mode.p1(), 0x00], &d)
}

/// BEGIN's answer: the INITIALIZE data and the sealed begin context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Begun {
    pub init_data: Vec<u8>,
    pub ctx: Vec<u8>,
}

pub fn begun(d: &[u8]) -> Result<Begun, SamError> {
    need(d, 30 + 49)?;
    Ok(Begun {
        init_data: d[..30].to_vec(),
        ctx: d[30..].to_vec(),
    })
}

pub fn authorize(kv: KeyVersion, now: DateTime, init_resp: &[u8], begin_ctx: &[u8]) -> Vec<u8> {
    let d = [&[kv.0][..], &now.0.to_be_bytes(), init_resp, begin_ctx].concat();
    apdu([0x80, 0x72, 0x00, 0x00], &d)
}

/// AUTHORIZE's answer: the DEBIT data (`SAM_TxSeq || DateTime || S2`) and the context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorized {
    pub debit_data: Vec<u8>,
    pub sam_tx_seq: SamTxSeq,
    pub ctx: Vec<u8>,
}

pub fn authorized(d: &[u8]) -> Result<Authorized, SamError> {
    need(d, 16 + 119)?;
    Ok(Authorized {
        debit_data: d[..16].to_vec(),
        sam_tx_seq: SamTxSeq(be32(d)),
        ctx: d[16..].to_vec(),
    })
}

pub fn complete(answer: &[u8], ctx: &[u8]) -> Vec<u8> {
    let d = [&[answer.len() as u8][..], answer, ctx].concat();
    apdu([0x80, 0x74, 0x00, 0x00], &d)
}

pub fn tick(now: DateTime, ctx: &[u8]) -> Vec<u8> {
    apdu(
        [0x80, 0x76, 0x00, 0x00],
        &[&now.0.to_be_bytes()[..], ctx].concat(),
    )
}

/// TICK's answer: `k || S2k` for the card and the context with `k` in flight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticked {
    pub tick_data: Vec<u8>,
    pub ctx: Vec<u8>,
}

pub fn ticked(d: &[u8]) -> Result<Ticked, SamError> {
    need(d, 10 + 119)?;
    Ok(Ticked {
        tick_data: d[..10].to_vec(),
        ctx: d[10..].to_vec(),
    })
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

pub fn stop(how: StopHow, ctx: &[u8]) -> Vec<u8> {
    apdu([0x80, 0x78, how as u8, 0x00], ctx)
}

pub fn recovery_begin(ctx: &[u8]) -> Vec<u8> {
    apdu([0x80, 0x7A, 0x00, 0x00], ctx)
}

/// RECOVERY BEGIN's answer: the mode-00 INITIALIZE data and the recovery context.
pub fn recovery_begun(d: &[u8]) -> Result<Begun, SamError> {
    need(d, 30 + 135)?;
    Ok(Begun {
        init_data: d[..30].to_vec(),
        ctx: d[30..].to_vec(),
    })
}

pub fn recovery_end(init_resp: &[u8], proof: &[u8], rec_ctx: &[u8]) -> Vec<u8> {
    let d = [init_resp, &[proof.len() as u8], proof, rec_ctx].concat();
    apdu([0x80, 0x7A, 0x01, 0x00], &d)
}

/// A record the SAM counted: its period, `Rec = KV || CardID || R(NT)` and the tag the
/// close needs back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counted {
    pub period: CloseSeq,
    pub rec: Vec<u8>,
    pub tag: [u8; 8],
}

impl Counted {
    pub fn tx_record(&self) -> Result<TxRecord, SamError> {
        TxRecord::parse(&self.rec[9..])
            .map_err(|_| SamError::Malformed("the SAM's record does not parse".into()))
    }

    pub fn card_id(&self) -> CardId {
        let mut c = [0u8; 8];
        c.copy_from_slice(&self.rec[1..9]);
        CardId(c)
    }

    pub fn batch_tx(&self) -> Result<BatchTx, SamError> {
        let r = self.tx_record()?;
        Ok(BatchTx::from_record(
            KeyVersion(self.rec[0]),
            self.card_id(),
            &r,
        ))
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

pub fn outcome(d: &[u8]) -> Result<Outcome, SamError> {
    match d.first() {
        Some(&outcome::RUNNING) => {
            need(d, 1 + 119)?;
            Ok(Outcome::Running(d[1..].to_vec()))
        }
        Some(&outcome::COMPLETED) => {
            need(d, 73)?;
            let c = Counted {
                period: CloseSeq(be32(&d[1..])),
                rec: d[5..65].to_vec(),
                tag: {
                    let mut t = [0u8; 8];
                    t.copy_from_slice(&d[65..73]);
                    t
                },
            };
            c.tx_record()?;
            Ok(Outcome::Completed(c))
        }
        Some(&outcome::NOTHING) => Ok(Outcome::Nothing),
        Some(&outcome::PENDING) => Ok(Outcome::Pending),
        _ => Err(SamError::Malformed("unknown outcome".into())),
    }
}

/// CLOSE BEGIN: `again` streams the last closed period once more.
pub fn close_begin(again: bool, close_seq: CloseSeq) -> Vec<u8> {
    apdu(
        [0x80, 0x7C, u8::from(again), 0x00],
        &close_seq.0.to_be_bytes(),
    )
}

/// CLOSE BEGIN's answer: the period and its frozen totals.
pub fn close_begun(d: &[u8]) -> Result<(CloseSeq, u32, u64), SamError> {
    need(d, 16)?;
    Ok((CloseSeq(be32(d)), be32(&d[4..]), be64(&d[8..])))
}

/// Records per CLOSE RECORD: three fit a short APDU, which every reader takes.
pub const RECORDS_PER_APDU: usize = 3;

pub fn close_record(entries: &[Counted]) -> Vec<u8> {
    let data: Vec<u8> = entries.iter().flat_map(Counted::entry).collect();
    let mut a = vec![0x80, 0x7C, 0x02, 0x00, data.len() as u8];
    a.extend_from_slice(&data);
    a
}

pub const CLOSE_END: [u8; 5] = [0x80, 0x7C, 0x03, 0x00, 0x00];

/// CLOSE END's answer: `TR(50) || TRMAC(8)`.
pub fn close_signed(d: &[u8]) -> Result<Vec<u8>, SamError> {
    need(d, 58)?;
    Ok(d.to_vec())
}

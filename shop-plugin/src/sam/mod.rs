//! The security module the engine drives: the [`SecurityModule`] trait (the SAM applet's
//! commands, docs/sam-protocol.md, over one APDU exchange) and its two implementations:
//! the SAM card in its own PC/SC reader ([`pcsc`], production) and the same applet
//! called in process ([`in_process`], tests and benchmarks only). The command bytes and
//! answer parsing are in [`codec`]; the SAM keeps the keys, the engine only relays.

pub mod codec;
pub mod in_process;
pub mod pcsc;

use purse::sam::Order;
use purse::{CloseSeq, Currency, DateTime, KeyVersion, StatusWord};

pub use codec::{Authorized, Begun, Counted, Identity, Outcome, Status, StopHow, Ticked};

/// CLOSE BEGIN's frozen totals (`CloseSeq`, count, sum) and CLOSE END's `TR || TRMAC`.
pub type Closed = ((CloseSeq, u32, u64), Vec<u8>);

/// Why a SAM command gave no answer to use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SamError {
    /// The SAM is not reachable (reader empty, pcscd gone, another SAM in the reader):
    /// nothing is known about the command; payments wait until it is back.
    #[error("the SAM is not available: {0}")]
    Unavailable(String),
    /// The SAM refused the command with this status word.
    #[error("the SAM answered {0}")]
    Status(StatusWord),
    /// The SAM's answer is not what its command set says.
    #[error("the SAM's answer is malformed: {0}")]
    Malformed(String),
}

impl SamError {
    /// The refusal's status word, if the SAM refused.
    pub fn sw(&self) -> Option<u16> {
        match self {
            SamError::Status(sw) => Some(sw.0),
            _ => None,
        }
    }
}

/// A SAM applet the engine can drive. Implementors provide the APDU exchange with the
/// selected SAM application; the commands are provided on top of it.
pub trait SecurityModule: Send {
    /// One command APDU to the SAM application; the whole answer (data and SW).
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, SamError>;

    /// Who the SAM is (from its SELECT when it was connected).
    fn identity(&self) -> Identity;

    /// Where it is, for logs and `doctor` ("reader Virtual PCD 00 00", "in process").
    fn describe(&self) -> String;

    /// Whether its commands are computed in this process with no I/O (the applet with
    /// its state in memory): the engine then runs them on the async worker itself, as
    /// handing the worker off costs more than the few microseconds of the command.
    fn without_io(&self) -> bool {
        false
    }

    /// A command whose success is SW 9000: its data.
    fn command(&mut self, apdu: &[u8]) -> Result<Vec<u8>, SamError> {
        match codec::answer(&self.transmit(apdu)?)? {
            Ok(data) => Ok(data.to_vec()),
            Err(sw) => Err(SamError::Status(sw)),
        }
    }

    /// `apdu` framed as ISO 7816-4 says, and its data when SW is 9000.
    fn send(&mut self, apdu: codec::SamApdu) -> Result<Vec<u8>, SamError> {
        self.command(&apdu.to_bytes())
    }

    fn status(&mut self) -> Result<Status, SamError> {
        Ok(codec::status(&self.send(codec::get_status())?)?)
    }

    fn begin(&mut self, order: &Order, currency: Currency) -> Result<Begun, SamError> {
        Ok(codec::begun(&self.send(codec::begin(order, currency))?)?)
    }

    fn authorize(
        &mut self,
        kv: KeyVersion,
        now: DateTime,
        init_resp: &[u8],
        begin_ctx: &[u8],
    ) -> Result<Authorized, SamError> {
        Ok(codec::authorized(
            &self.send(codec::authorize(kv, now, init_resp, begin_ctx))?,
        )?)
    }

    /// COMPLETE with the card's whole answer (data and SW).
    fn complete(&mut self, answer: &[u8], ctx: &[u8]) -> Result<Outcome, SamError> {
        Ok(codec::outcome(&self.send(codec::complete(answer, ctx))?)?)
    }

    fn tick(&mut self, now: DateTime, ctx: &[u8]) -> Result<Ticked, SamError> {
        Ok(codec::ticked(&self.send(codec::tick(now, ctx))?)?)
    }

    fn stop(&mut self, how: StopHow, ctx: &[u8]) -> Result<Outcome, SamError> {
        Ok(codec::outcome(&self.send(codec::stop(how, ctx))?)?)
    }

    fn recovery_begin(&mut self, ctx: &[u8]) -> Result<Begun, SamError> {
        Ok(codec::recovery_begun(
            &self.send(codec::recovery_begin(ctx))?,
        )?)
    }

    fn recovery_end(
        &mut self,
        init_resp: &[u8],
        proof: &[u8],
        rec_ctx: &[u8],
    ) -> Result<Outcome, SamError> {
        Ok(codec::outcome(
            &self.send(codec::recovery_end(init_resp, proof, rec_ctx))?,
        )?)
    }

    /// A whole streamed close: CLOSE BEGIN (`again` for the last closed period), the
    /// records in `SAM_TxSeq` order, CLOSE END. Returns the frozen totals and
    /// `TR || TRMAC`.
    fn close(
        &mut self,
        again: bool,
        close_seq: CloseSeq,
        records: &[Counted],
    ) -> Result<Closed, SamError> {
        let begun = codec::close_begun(&self.send(codec::close_begin(again, close_seq))?)?;
        for chunk in records.chunks(codec::RECORDS_PER_APDU) {
            self.send(codec::close_record(chunk))?;
        }
        let signed = codec::close_signed(&self.send(codec::close_end())?)?;
        Ok((begun, signed))
    }
}

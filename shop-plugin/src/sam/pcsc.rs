//! The SAM card in its own reader, through PC/SC (pcscd): an exclusive connection (no
//! other process may interleave commands with ours), SELECT of the SAM application,
//! and a new connection on the first command after the SAM left and came back.

use std::ffi::CString;

use pcsc::{Context, Disposition, Protocols, Scope, ShareMode};

use super::{codec, Identity, SamError, SecurityModule};

/// A SAM card in a named PC/SC reader.
pub struct PcscSam {
    reader: String,
    name: CString,
    ctx: Option<Context>,
    card: Option<pcsc::Card>,
    identity: Identity,
}

impl PcscSam {
    /// Connects to the SAM in `reader` and SELECTs it.
    pub fn connect(reader: &str) -> Result<PcscSam, SamError> {
        let name = CString::new(reader)
            .map_err(|_| SamError::Unavailable(format!("bad reader name {reader:?}")))?;
        let mut sam = PcscSam {
            reader: reader.to_string(),
            name,
            ctx: None,
            card: None,
            identity: Identity {
                sam_id: purse::SamId([0; 8]),
                key_version: purse::KeyVersion(0),
                currency: purse::Currency::EUR,
            },
        };
        sam.identity = sam.open()?;
        Ok(sam)
    }

    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// A new connection and SELECT: the SAM's identity.
    fn open(&mut self) -> Result<Identity, SamError> {
        self.release();
        let ctx = match self.ctx.take() {
            Some(c) if c.is_valid().is_ok() => c,
            _ => Context::establish(Scope::User).map_err(unavailable)?,
        };
        let card = ctx
            .connect(&self.name, ShareMode::Exclusive, Protocols::ANY)
            .map_err(unavailable);
        self.ctx = Some(ctx);
        let card = card?;
        let r = transmit(&card, &codec::select().to_bytes());
        self.card = Some(card);
        let r = r?;
        match r.len().checked_sub(2) {
            Some(n) if r[n..] == [0x90, 0x00] => Ok(codec::identity(&r[..n])?),
            _ => Err(SamError::Unavailable(format!(
                "the card in '{}' has no SAM application",
                self.reader
            ))),
        }
    }

    /// A new connection after the SAM left (or pcscd restarted), and only to the same
    /// SAM: its contexts and records are of this SAM_ID.
    fn reconnect(&mut self) -> Result<(), SamError> {
        let id = self.open()?;
        if id.sam_id != self.identity.sam_id {
            self.release();
            return Err(SamError::Unavailable(format!(
                "reader '{}' holds SAM {}, not {}",
                self.reader,
                id.sam_id.to_hex(),
                self.identity.sam_id.to_hex()
            )));
        }
        tracing::info!("SAM {} is back in '{}'", id.sam_id.to_hex(), self.reader);
        Ok(())
    }

    /// Lets the connection go without a reset (dropping a `pcsc::Card` resets the card,
    /// which would cost the SAM its selection under whoever connects next).
    fn release(&mut self) {
        if let Some(card) = self.card.take() {
            if let Err((card, _)) = card.disconnect(Disposition::LeaveCard) {
                std::mem::forget(card);
            }
        }
    }
}

impl Drop for PcscSam {
    fn drop(&mut self) {
        self.release();
    }
}

fn unavailable(e: pcsc::Error) -> SamError {
    SamError::Unavailable(e.to_string())
}

fn transmit(card: &pcsc::Card, apdu: &[u8]) -> Result<Vec<u8>, SamError> {
    transmit_raw(card, apdu).map_err(unavailable)
}

fn transmit_raw(card: &pcsc::Card, apdu: &[u8]) -> Result<Vec<u8>, pcsc::Error> {
    let mut buf = [0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED];
    let r = card.transmit(apdu, &mut buf)?;
    if r.len() < 2 {
        return Err(pcsc::Error::ProtoMismatch);
    }
    Ok(r.to_vec())
}

impl SecurityModule for PcscSam {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, SamError> {
        if self.card.is_none() {
            self.reconnect()?;
        }
        let Some(card) = &self.card else {
            return Err(SamError::Unavailable("not connected".into()));
        };
        match transmit_raw(card, apdu) {
            Ok(r) => Ok(r),
            // A handle from before the SAM left and came back (or was reset): the
            // command never reached the SAM. Connect again and send it once more.
            Err(pcsc::Error::RemovedCard | pcsc::Error::ResetCard) => {
                self.reconnect()?;
                let Some(card) = &self.card else {
                    return Err(SamError::Unavailable("not connected".into()));
                };
                transmit(card, apdu).inspect_err(|e| {
                    tracing::warn!("SAM in '{}': {e}", self.reader);
                    self.release();
                })
            }
            Err(e) => {
                tracing::warn!("SAM in '{}': {e}", self.reader);
                self.release();
                Err(unavailable(e))
            }
        }
    }

    fn identity(&self) -> Identity {
        self.identity
    }

    fn describe(&self) -> String {
        format!("SAM card in reader '{}'", self.reader)
    }
}

/// The readers pcscd knows now.
pub fn list_readers() -> Result<Vec<String>, SamError> {
    let ctx = Context::establish(Scope::User).map_err(unavailable)?;
    let names = ctx.list_readers_owned().map_err(unavailable)?;
    Ok(names
        .into_iter()
        .map(|n| n.to_string_lossy().into_owned())
        .collect())
}

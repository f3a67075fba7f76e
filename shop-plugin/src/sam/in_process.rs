//! The SAM applet called in process, for tests and benchmarks only: the same applet
//! and command bytes as the SAM card, without the reader. Its keys are in this process's
//! memory (the risk the SAM card removes), so it is never the default and the binary
//! says so on stderr when it is used.

use purse::sam_applet::{SamApplet, SamState, SamStore, SamStoreError};
use purse::Rnd;
use rand::RngCore;

use super::{codec, Identity, SamError, SecurityModule};

/// Where the in-process SAM keeps its state: nowhere (tests), or a SAM card file
/// written atomically (0600) before each answer.
pub enum Keep {
    Memory,
    File(std::path::PathBuf),
}

impl SamStore for Keep {
    fn persist(&mut self, state: &SamState) -> Result<(), SamStoreError> {
        match self {
            Keep::Memory => Ok(()),
            Keep::File(path) => secure_files::write_atomic(path, state.to_json().as_bytes(), 0o600)
                .map_err(|e| SamStoreError(e.to_string())),
        }
    }
}

pub struct InProcessSam {
    applet: SamApplet,
    keep: Keep,
    identity: Identity,
}

impl InProcessSam {
    /// The applet with `state`, selected.
    pub fn new(state: SamState, keep: Keep) -> Result<InProcessSam, SamError> {
        let mut sam = InProcessSam {
            applet: SamApplet::new(state),
            keep,
            identity: Identity {
                sam_id: purse::SamId([0; 8]),
                key_version: purse::KeyVersion(0),
                currency: purse::Currency::EUR,
            },
        };
        let d = sam.send(codec::select())?;
        sam.identity = codec::identity(&d)?;
        Ok(sam)
    }

    /// The applet of a SAM card file (as `purse-issuer sam issue-card` writes it), kept
    /// in that file.
    pub fn from_file(path: &std::path::Path) -> Result<InProcessSam, SamError> {
        let text = secure_files::read_private(path)
            .map_err(|e| SamError::Unavailable(format!("{}: {e}", path.display())))?;
        let state = SamState::from_json(&text)
            .map_err(|e| SamError::Unavailable(format!("{}: {e}", path.display())))?;
        InProcessSam::new(state, Keep::File(path.to_path_buf()))
    }

    pub fn state(&self) -> &SamState {
        self.applet.state()
    }
}

impl SecurityModule for InProcessSam {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, SamError> {
        let mut r = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut r);
        Ok(self.applet.process(apdu, Rnd(r), &mut self.keep))
    }

    fn identity(&self) -> Identity {
        self.identity
    }

    fn describe(&self) -> String {
        "SAM applet in process (tests and benchmarks only)".into()
    }

    fn without_io(&self) -> bool {
        matches!(self.keep, Keep::Memory)
    }
}

//! The SAM applet's command set (docs/sam-protocol.md section 3) as the engine uses it:
//! the sans-IO codec of [`purse::sam_applet::host`], whose answer errors are
//! [`SamError::Malformed`] here.

pub use purse::sam_applet::host::*;

use super::SamError;

impl From<AnswerError> for SamError {
    fn from(e: AnswerError) -> SamError {
        SamError::Malformed(e.to_string())
    }
}

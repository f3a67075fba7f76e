//! Bearer credentials (RFC 6750): a SAM's upload credential `<sam_id>.<secret>` (stored as
//! its SHA-256) and the operators' tokens (their SHA-256 in the configuration). Hashes
//! are compared in constant time.

use hyper::header::AUTHORIZATION;
use hyper::HeaderMap;
use purse::SamId;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::App;
use crate::db::registry::SamRow;

pub const SAM_REALM: &str = "sam";
pub const OPERATOR_REALM: &str = "operator";

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Whether two hex hashes are equal, in constant time.
fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The bearer credential of a request: `None` when there is no Authorization header,
/// `Some(Err)` when there is one of another form.
fn bearer(headers: &HeaderMap) -> Option<Result<&str, ()>> {
    let v = headers.get(AUTHORIZATION)?;
    let s = v.to_str().map_err(|_| ()).ok()?;
    let (scheme, token) = s.split_once(' ').unwrap_or((s, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Some(Err(()));
    }
    Some(Ok(token.trim()))
}

/// A new SAM credential: the SAM's ID, a dot, 32 random bytes in hex.
pub fn new_sam_credential(sam: SamId) -> String {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    format!("{}.{}", sam.to_hex(), hex::encode(b))
}

/// The SAM a request's credential authenticates.
pub async fn sam(app: &App, headers: &HeaderMap) -> Result<SamRow, ApiError> {
    let token = match bearer(headers) {
        None => return Err(ApiError::unauthorized(SAM_REALM, false)),
        Some(Err(())) => return Err(ApiError::unauthorized(SAM_REALM, true)),
        Some(Ok(t)) => t,
    };
    let invalid = || ApiError::unauthorized(SAM_REALM, true);
    let (id, _) = token.split_once('.').ok_or_else(invalid)?;
    let sam_id = SamId::from_hex(id).map_err(|_| invalid())?;
    let row = app.db.sam(sam_id).await?.ok_or_else(invalid)?;
    if !same_hash(&sha256_hex(token), &row.credential_sha256) {
        return Err(invalid());
    }
    Ok(row)
}

/// Checks an operator's token.
pub fn operator(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = match bearer(headers) {
        None => return Err(ApiError::unauthorized(OPERATOR_REALM, false)),
        Some(Err(())) => return Err(ApiError::unauthorized(OPERATOR_REALM, true)),
        Some(Ok(t)) => t,
    };
    let h = sha256_hex(token);
    // Every hash is compared, so the time does not tell which one matched.
    let ok = app.operator_token_sha256.iter().fold(false, |ok, known| {
        ok | same_hash(&h, &known.to_ascii_lowercase())
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError::unauthorized(OPERATOR_REALM, true))
    }
}

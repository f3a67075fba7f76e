//! Webhook signatures. Each delivery carries
//!
//! ```text
//! Purse-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>
//! Purse-Event-Id: evt_…
//! ```
//!
//! The key is the whole secret as written in the secret file (`whsec_…`, surrounding
//! white space trimmed). The timestamp is signed with the body so that a captured
//! delivery cannot be replayed later: receivers refuse signatures older than a tolerance
//! (five minutes by default). More `v1=` entries may appear (several secrets during a
//! rotation); unknown keys are ignored, so later schemes can be added beside `v1`.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::files::{read_private, FileError};

pub const SIGNATURE_HEADER: &str = "purse-signature";
pub const EVENT_ID_HEADER: &str = "purse-event-id";
/// How far a signature's timestamp may be from the receiver's clock by default.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;
/// The shortest secret accepted.
const MIN_SECRET: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// The shop's webhook signing secret. Never printed.
#[derive(Clone)]
pub struct WebhookSecret(Zeroizing<Vec<u8>>);

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

#[derive(Debug, Error)]
pub enum SecretError {
    #[error("webhook secret: {0}")]
    File(#[from] FileError),
    #[error("the webhook secret in {0} is shorter than {MIN_SECRET} characters")]
    TooShort(String),
}

impl WebhookSecret {
    /// A secret from its text (trimmed).
    pub fn new(text: &str) -> Option<WebhookSecret> {
        let t = text.trim();
        (t.len() >= MIN_SECRET).then(|| WebhookSecret(Zeroizing::new(t.as_bytes().to_vec())))
    }

    /// Reads the secret file, refusing it unless it is private (mode 0600).
    pub fn load(path: &Path) -> Result<WebhookSecret, SecretError> {
        let text = Zeroizing::new(read_private(path)?);
        WebhookSecret::new(&text).ok_or_else(|| SecretError::TooShort(path.display().to_string()))
    }

    /// A fresh secret: `whsec_` and 32 random bytes in URL-safe base64.
    pub fn generate() -> Zeroizing<String> {
        let mut b = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut *b);
        Zeroizing::new(format!(
            "whsec_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(*b)
        ))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length: new_from_slice cannot fail.
    let mut m = <HmacSha256 as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The `Purse-Signature` header value of `body` sent at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(tag))
}

/// Why a webhook signature was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum VerifyError {
    #[error("the signature header is not t=<unix seconds>,v1=<hex>")]
    Malformed,
    #[error("the signature header has no v1 signature")]
    NoSignature,
    #[error("the signature's timestamp is {age} s away from now (tolerance {tolerance} s)")]
    Stale { age: i64, tolerance: i64 },
    #[error("no v1 signature matches the body and timestamp")]
    Mismatch,
}

/// Checks a delivery as a receiver must: the header's HMAC over `t.body` with the
/// secret (constant time), and `t` within `tolerance_secs` of `now`. Returns `t`.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<i64, VerifyError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (k, v) = part.trim().split_once('=').ok_or(VerifyError::Malformed)?;
        match k {
            "t" if timestamp.is_none() => {
                // Digits only: "+5" or " 5" would sign a different string than we check.
                if v.is_empty() || v.len() > 18 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(VerifyError::Malformed);
                }
                timestamp = v.parse::<i64>().ok();
            }
            "t" => return Err(VerifyError::Malformed),
            "v1" => signatures.push(hex::decode(v).map_err(|_| VerifyError::Malformed)?),
            _ => {}
        }
    }
    let t = timestamp.ok_or(VerifyError::Malformed)?;
    if signatures.is_empty() {
        return Err(VerifyError::NoSignature);
    }
    let age = (now - t).abs();
    if age > tolerance_secs {
        return Err(VerifyError::Stale {
            age,
            tolerance: tolerance_secs,
        });
    }
    let expected = mac(secret, t, body);
    // verify_slice compares in constant time.
    if signatures
        .iter()
        .any(|s| expected.clone().verify_slice(s).is_ok())
    {
        Ok(t)
    } else {
        Err(VerifyError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"whsec_test_0123456789abcdef";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"payment.succeeded"}"#;

    #[test]
    fn a_signature_verifies_and_any_change_is_refused() {
        let h = sign(SECRET, 1_795_000_000, BODY);
        assert!(h.starts_with("t=1795000000,v1="), "{h}");
        assert_eq!(
            verify(SECRET, &h, BODY, 1_795_000_100, 300),
            Ok(1_795_000_000)
        );

        let tampered_body = br#"{"id":"evt_1","type":"payment.failed"}"#;
        assert_eq!(
            verify(SECRET, &h, tampered_body, 1_795_000_000, 300),
            Err(VerifyError::Mismatch)
        );
        let tampered_t = h.replace("t=1795000000", "t=1795000001");
        assert_eq!(
            verify(SECRET, &tampered_t, BODY, 1_795_000_000, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(b"whsec_another_secret_000", &h, BODY, 1_795_000_000, 300),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, &h, BODY, 1_795_000_301, 300),
            Err(VerifyError::Stale {
                age: 301,
                tolerance: 300
            })
        );
    }

    #[test]
    fn rotation_and_unknown_schemes_are_accepted_malformed_headers_are_not() {
        let good = sign(SECRET, 10, BODY);
        let v1 = good.split_once(",v1=").expect("v1").1;
        let rotated = format!("t=10,v1={},v0=zz,v1={v1}", "00".repeat(32));
        assert_eq!(verify(SECRET, &rotated, BODY, 10, 300), Ok(10));
        for bad in [
            "",
            "t=10",
            "v1=00",
            "t=+10,v1=00",
            "t=10,t=10,v1=00",
            "t=10,v1=xyz",
            "garbage",
        ] {
            assert!(verify(SECRET, bad, BODY, 10, 300).is_err(), "{bad:?}");
        }
        assert_eq!(
            verify(SECRET, "t=10", BODY, 10, 300),
            Err(VerifyError::NoSignature)
        );
    }

    #[test]
    fn secrets_are_long_enough_and_never_printed() {
        assert!(WebhookSecret::new("short").is_none());
        let g = WebhookSecret::generate();
        assert!(g.starts_with("whsec_") && g.len() == 6 + 43, "{}", g.len());
        let s = WebhookSecret::new(&format!("  {}\n", &*g)).expect("secret");
        assert_eq!(s.as_bytes(), g.as_bytes(), "trimmed");
        assert_eq!(format!("{s:?}"), "WebhookSecret(..)");
    }
}

//! The office's secrets: the issuer's master keys (`purse-issuer-keys/1`, for `MK_TAC`
//! and `MK_SAM`) and the Ed25519 key that signs the hotlist. Both files must be 0600
//! (refused otherwise); their text is zeroized after parsing and never logged.

use std::path::Path;

use anyhow::{Context, Result};
use ed25519_dalek::SigningKey;
use purse::keys::IssuerKeys;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

/// Reads the issuer key file.
pub fn load_issuer_keys(path: &Path) -> Result<IssuerKeys> {
    let text = Zeroizing::new(secure_files::read_private(path)?);
    IssuerKeys::from_json(&text)
        .with_context(|| format!("{} is not a usable issuer key file", path.display()))
}

/// Reads the hotlist signing key: 64 hex digits, the Ed25519 secret key.
pub fn load_hotlist_key(path: &Path) -> Result<SigningKey> {
    let text = Zeroizing::new(secure_files::read_private(path)?);
    let mut seed = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), seed.as_mut()).map_err(|_| {
        anyhow::anyhow!(
            "{} is not a hotlist key (64 hex digits of an Ed25519 secret key)",
            path.display()
        )
    })?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Creates a new hotlist key file (0600, never replacing one) and returns the public
/// key in hex, which shops configure to verify the hotlist.
pub fn create_hotlist_key(path: &Path) -> Result<String> {
    let key = SigningKey::generate(&mut OsRng);
    let text = Zeroizing::new(hex::encode(key.to_bytes()) + "\n");
    secure_files::create_private(path, text.as_bytes())?;
    Ok(hex::encode(key.verifying_key().to_bytes()))
}

//! The issuer's master key file (`purse-issuer-keys/1`: `MK_PUR`, `MK_TAC`, `MK_SAM` per
//! key version) and what is derived from it for a shop: a SAM key file
//! (`purse-sam-keys/1`) or a personalised SAM card (`purse-sam-card/1`, for the SAM
//! emulator).
//!
//! Key versions are only ever added: cards and SAMs personalised under a version depend
//! on its keys for as long as they are in use, so replacing one would strand them.

use std::path::Path;

use anyhow::{bail, ensure, Context, Result};
use purse::keys::{IssuerKeys, MasterKeys, SamKeys};
use purse::sam_applet::SamState;
use purse::{Currency, Key, KeyVersion, SamId};
use rand::rngs::OsRng;
use rand::RngCore;
use zeroize::Zeroizing;

use super::lockfile::{create_private, exists, lock};
use crate::files::{read_private, write_atomic};

/// Reads the issuer key file, refusing it when group or others may access it.
pub fn load_issuer_keys(path: &Path) -> Result<IssuerKeys> {
    let text = Zeroizing::new(read_private(path)?);
    IssuerKeys::from_json(&text)
        .with_context(|| format!("{} is not a usable issuer key file", path.display()))
}

/// A fresh AES-128 key from the operating system's generator.
fn random_key() -> Result<Key> {
    let mut b = Zeroizing::new([0u8; 16]);
    OsRng
        .try_fill_bytes(b.as_mut())
        .context("the operating system's random generator failed")?;
    Ok(Key::from_bytes(*b))
}

/// Generates `MK_PUR`, `MK_TAC` and `MK_SAM` of key version `kv` and adds them to the
/// key file at `path`, creating it when absent. Refuses a key version the file already
/// holds. Returns every key version the file now holds.
pub fn add_key_version(path: &Path, kv: KeyVersion) -> Result<Vec<KeyVersion>> {
    let _lock = lock(path)?;
    let mut keys = if exists(path)? {
        load_issuer_keys(path)?
    } else {
        IssuerKeys::default()
    };
    if keys.versions.contains_key(&kv) {
        bail!(
            "{} already holds key version {kv}; a key version is never replaced \
             (choose another one)",
            path.display()
        );
    }
    keys.versions.insert(
        kv,
        MasterKeys {
            mk_pur: random_key()?,
            mk_tac: random_key()?,
            mk_sam: random_key()?,
        },
    );
    let json = Zeroizing::new(keys.to_json()?);
    // Read back what is about to replace the file: a serialization slip must not cost
    // the issuer the keys of the versions already in use.
    let back = IssuerKeys::from_json(&json).context("the new key file does not read back")?;
    ensure!(
        back.versions.keys().eq(keys.versions.keys()),
        "the new key file does not read back with the same key versions"
    );
    write_atomic(path, json.as_bytes(), 0o600)?;
    Ok(keys.versions.keys().copied().collect())
}

/// The key versions an issuer key file holds.
pub fn list_key_versions(path: &Path) -> Result<Vec<KeyVersion>> {
    Ok(load_issuer_keys(path)?.versions.keys().copied().collect())
}

/// What a SAM key file is made from.
#[derive(Clone, Debug)]
pub struct NewSam {
    pub sam_id: SamId,
    pub currency: Currency,
    /// The key version of the `MK_SAM` that derives the SAM's `K_SAM`.
    pub key_version: KeyVersion,
    /// The card key versions the SAM accepts: it gets `MK_PUR` of each.
    pub accepts: Vec<KeyVersion>,
}

/// Derives a SAM's keys from the issuer key file.
fn derive_sam_keys(keys_path: &Path, sam: &NewSam) -> Result<SamKeys> {
    ensure!(
        !sam.accepts.is_empty(),
        "a SAM must accept at least one card key version"
    );
    let issuer = load_issuer_keys(keys_path)?;
    SamKeys::issue(
        &issuer,
        sam.sam_id,
        sam.currency,
        sam.key_version,
        &sam.accepts,
    )
    .with_context(|| format!("issuing SAM keys from {}", keys_path.display()))
}

/// Derives a SAM's keys from the issuer key file and writes them to `out` (mode 0600),
/// refusing to replace an existing file unless `force`.
pub fn issue_sam_keys(keys_path: &Path, out: &Path, sam: &NewSam, force: bool) -> Result<SamKeys> {
    let keys = derive_sam_keys(keys_path, sam)?;
    let json = Zeroizing::new(keys.to_json()?);
    create_private(out, json.as_bytes(), force)?;
    Ok(keys)
}

/// Personalises a SAM card: the SAM's keys from the issuer key file, `K_CTX` drawn from
/// the OS generator here (as a SAM chip draws it inside at personalisation; it is never
/// shown), `SAM_TxSeq` from 1, no period closed. Writes the `purse-sam-card/1` file to
/// `out` (mode 0600), refusing to replace an existing file unless `force`.
pub fn issue_sam_card(keys_path: &Path, out: &Path, sam: &NewSam, force: bool) -> Result<SamState> {
    let keys = derive_sam_keys(keys_path, sam)?;
    let state = SamState::personalise(keys, random_key()?);
    let json = Zeroizing::new(state.to_json());
    SamState::from_json(&json).context("the new SAM card does not read back")?;
    create_private(out, json.as_bytes(), force)?;
    Ok(state)
}

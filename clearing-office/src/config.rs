//! The office's configuration file (TOML). Secrets are not in it: the operator token
//! appears only as its SHA-256 hash; the issuer's master keys and the hotlist signing key
//! live in their own 0600 files.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the HTTP API listens.
    pub listen: SocketAddr,
    /// `sqlite:PATH` (one file, WAL) or `postgres://…`.
    pub database: String,
    /// The issuer key file (`purse-issuer-keys/1`, mode 0600): `MK_TAC` and `MK_SAM`.
    pub issuer_keys: PathBuf,
    /// The Ed25519 key that signs the hotlist (mode 0600; `clearing-office hotlist-key`).
    pub hotlist_key: PathBuf,
    /// SHA-256 (hex) of each operator token.
    pub operator_token_sha256: Vec<String>,
    /// Where uploads are spooled while they are verified (default: the system's temp dir).
    #[serde(default)]
    pub spool_dir: Option<PathBuf>,
    /// The largest batch accepted, in bytes (a 1,000,000-record batch is about 330 MB).
    #[serde(default = "default_max_batch")]
    pub max_batch_bytes: u64,
    #[serde(default)]
    pub tls: Option<Tls>,
    /// Serve plain HTTP: allowed only on a loopback address (tests, a TLS proxy in front).
    #[serde(default)]
    pub plain_http: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key (mode 0600).
    pub key: PathBuf,
}

fn default_max_batch() -> u64 {
    512 * 1024 * 1024
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut c: Config =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        // Relative paths are the config file's neighbours.
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [&mut c.issuer_keys, &mut c.hotlist_key] {
            *p = base.join(&*p);
        }
        if let Some(t) = &mut c.tls {
            t.cert = base.join(&t.cert);
            t.key = base.join(&t.key);
        }
        if let Some(rest) = c.database.strip_prefix("sqlite:") {
            let p = base.join(rest.trim_start_matches("//"));
            c.database = format!("sqlite:{}", p.display());
        }
        c.check()?;
        Ok(c)
    }

    fn check(&self) -> Result<()> {
        match (&self.tls, self.plain_http) {
            (Some(_), true) => bail!("tls and plain_http are both set: choose one"),
            (None, false) => {
                bail!("no [tls] section: set cert and key (or plain_http = true on loopback)")
            }
            (None, true) if !self.listen.ip().is_loopback() => {
                bail!(
                    "plain_http is allowed only on a loopback address, not {}",
                    self.listen
                )
            }
            _ => {}
        }
        if self.operator_token_sha256.is_empty() {
            bail!("operator_token_sha256 is empty: no operator could sign in");
        }
        for h in &self.operator_token_sha256 {
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!("operator_token_sha256 entries are 64 hex digits (SHA-256 of the token)");
            }
        }
        if !(self.database.starts_with("sqlite:")
            || self.database.starts_with("postgres://")
            || self.database.starts_with("postgresql://"))
        {
            bail!("database is sqlite:PATH or postgres://…");
        }
        Ok(())
    }
}

//! The plugin's configuration file (TOML). Secrets are not in it: API keys appear only
//! as SHA-256 hashes; the SAM keys and the webhook secret live in their own 0600 files.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the HTTP API listens.
    pub listen: SocketAddr,
    /// The SQLite database file.
    pub database: PathBuf,
    /// The SAM key file (purse-sam-keys/1, mode 0600), from the issuer.
    pub sam_keys: PathBuf,
    /// Origins (`https://shop.example`) whose pages may call the shopper API.
    pub allowed_origins: Vec<String>,
    /// How long a client secret lets a shopper start paying (seconds).
    #[serde(default = "default_ttl")]
    pub client_secret_ttl_secs: i64,
    pub merchant: Merchant,
    pub webhooks: Webhooks,
    pub settlement: Settlement,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Merchant {
    /// SHA-256 (hex) of each API key the shop's server may use.
    pub api_key_sha256: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhooks {
    /// The file holding the shop's webhook signing secret (mode 0600).
    pub secret_file: PathBuf,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settlement {
    /// Where `settle` writes each batch file.
    pub outbox: PathBuf,
    /// The clearing office's URL to POST batches to (optional).
    #[serde(default)]
    pub clearing_url: Option<String>,
}

fn default_ttl() -> i64 {
    30 * 60
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let mut c: Config =
            toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))?;
        // Relative paths are relative to the config file.
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            &mut c.database,
            &mut c.sam_keys,
            &mut c.webhooks.secret_file,
            &mut c.settlement.outbox,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(c)
    }
}

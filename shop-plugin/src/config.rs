//! The plugin's configuration file (TOML). Secrets are not in it: API keys appear only
//! as SHA-256 hashes; the webhook secret lives in its own 0600 file. The SAM is a card
//! in its own reader (`[sam] readers`): no purse key is on the shop's disk.

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
    /// The SAM card(s) the plugin drives through PC/SC.
    pub sam: Sam,
    /// Origins (`https://shop.example`) whose pages may call the shopper API.
    pub allowed_origins: Vec<String>,
    /// How long a client secret lets a shopper start paying (seconds).
    #[serde(default = "default_ttl")]
    pub client_secret_ttl_secs: i64,
    pub merchant: Merchant,
    pub webhooks: Webhooks,
    pub settlement: Settlement,
    /// Extra CA certificates (PEM) trusted for outbound HTTPS (notify URLs, the clearing
    /// office) besides the public web roots: for a private CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<PathBuf>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sam {
    /// PC/SC reader names ("Virtual PCD 00 00"), each holding a SAM card. The first
    /// whose SAM answers is used (a pool of several comes later).
    #[serde(default)]
    pub readers: Vec<String>,
    /// TESTS AND BENCHMARKS ONLY: run the SAM applet in this process over this SAM card
    /// file instead of a SAM card (its keys are then in the plugin's memory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_process_card: Option<PathBuf>,
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
    /// The retry schedule after a failed delivery: the first delay, doubling up to
    /// `retry_max_delay_secs`, until `retry_give_up_secs` of delays have passed; then the
    /// event is kept as failed (`shop-plugin events list --failed`, `events retry`).
    #[serde(default = "default_retry_first")]
    pub retry_first_secs: i64,
    #[serde(default = "default_retry_max_delay")]
    pub retry_max_delay_secs: i64,
    #[serde(default = "default_retry_give_up")]
    pub retry_give_up_secs: i64,
    /// How long one delivery may take (connect, send, the receiver's answer).
    #[serde(default = "default_http_timeout")]
    pub timeout_secs: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settlement {
    /// Where `settle` writes each batch file.
    pub outbox: PathBuf,
    /// The clearing office's base URL (`https://clearing.example`): batches go to
    /// `POST <url>/v1/batches`, the hotlist comes from `GET <url>/v1/hotlist`. Optional:
    /// without it batches are only written to the outbox.
    #[serde(default)]
    pub clearing_url: Option<String>,
    /// The file (mode 0600) holding the SAM's upload credential that the office issued
    /// when it registered the SAM (`<sam_id>.<64 hex>`). Required with `clearing_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clearing_credential_file: Option<PathBuf>,
    /// The office's hotlist public key (Ed25519, 64 hex digits): with it, the plugin
    /// fetches the signed hotlist at `serve`/`settle` start and refuses its cards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hotlist_public_key: Option<String>,
    /// How often the running `serve` fetches the hotlist again (it also does at start,
    /// and `settle` at each run).
    #[serde(default = "default_hotlist_refresh")]
    pub hotlist_refresh_secs: u64,
    /// How long one upload to the clearing office may take.
    #[serde(default = "default_http_timeout")]
    pub timeout_secs: u64,
    /// Tries per batch and run when the office does not answer with its decision (5xx,
    /// timeout, a captive portal's page); the delay doubles from `upload_retry_first_ms`.
    #[serde(default = "default_upload_attempts")]
    pub upload_attempts: u32,
    #[serde(default = "default_upload_retry_first_ms")]
    pub upload_retry_first_ms: u64,
    /// Policy: when the office rejects a batch naming only records it cannot verify,
    /// `settle` closes the period again without them and uploads the corrected batch
    /// (what `shop-plugin batches correct <close_seq>` does by hand).
    #[serde(default)]
    pub auto_correct: bool,
}

fn default_hotlist_refresh() -> u64 {
    3600
}

fn default_upload_attempts() -> u32 {
    3
}

fn default_upload_retry_first_ms() -> u64 {
    1000
}

fn default_ttl() -> i64 {
    30 * 60
}

fn default_retry_first() -> i64 {
    crate::webhooks::Backoff::DEFAULT.first_secs
}

fn default_retry_max_delay() -> i64 {
    crate::webhooks::Backoff::DEFAULT.max_delay_secs
}

fn default_retry_give_up() -> i64 {
    crate::webhooks::Backoff::DEFAULT.give_up_secs
}

fn default_http_timeout() -> u64 {
    10
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let raw: toml::Table =
            toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))?;
        if raw.contains_key("sam_keys") {
            anyhow::bail!(
                "config {}: `sam_keys` (a SAM key file read into the web server) is no longer \
                 supported: personalise a SAM card (`purse-issuer sam issue-card`), put it in its \
                 own reader and name it under [sam] readers = [\"<reader>\"]",
                path.display()
            );
        }
        if !raw.contains_key("sam") {
            anyhow::bail!(
                "config {}: no SAM: add [sam] readers = [\"<PC/SC reader of the SAM card>\"]",
                path.display()
            );
        }
        let mut c: Config =
            toml::from_str(&text).with_context(|| format!("parsing config {}", path.display()))?;
        // Relative paths are relative to the config file.
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            &mut c.database,
            &mut c.webhooks.secret_file,
            &mut c.settlement.outbox,
        ]
        .into_iter()
        .chain(c.sam.in_process_card.as_mut())
        .chain(c.tls_ca_file.as_mut())
        .chain(c.settlement.clearing_credential_file.as_mut())
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        anyhow::ensure!(
            !c.sam.readers.is_empty() || c.sam.in_process_card.is_some(),
            "config {}: [sam] readers names no reader",
            path.display()
        );
        anyhow::ensure!(
            c.settlement.clearing_url.is_none() || c.settlement.clearing_credential_file.is_some(),
            "config {}: settlement.clearing_url needs settlement.clearing_credential_file \
             (the SAM's upload credential from the clearing office)",
            path.display()
        );
        anyhow::ensure!(
            c.settlement.hotlist_public_key.is_none() || c.settlement.clearing_url.is_some(),
            "config {}: settlement.hotlist_public_key needs settlement.clearing_url (where \
             the hotlist comes from)",
            path.display()
        );
        anyhow::ensure!(
            c.settlement.hotlist_refresh_secs > 0,
            "config {}: settlement.hotlist_refresh_secs must be at least 1",
            path.display()
        );
        Ok(c)
    }

    /// The instance lock: the process that runs the SAM (`serve`, or `settle` when no
    /// server runs) holds an exclusive [`crate::files::FileLock`] on it for its whole
    /// life, so at most one process runs the SAM of a database. The kernel drops it when
    /// the process ends, however it ends (kill -9 included): it never goes stale.
    pub fn lock_path(&self) -> PathBuf {
        sibling(&self.database, "lock")
    }

    /// The admin socket of the running `serve` (mode 0600), beside the database.
    pub fn admin_socket(&self) -> PathBuf {
        sibling(&self.database, "admin.sock")
    }

    pub fn backoff(&self) -> crate::webhooks::Backoff {
        crate::webhooks::Backoff {
            first_secs: self.webhooks.retry_first_secs,
            max_delay_secs: self.webhooks.retry_max_delay_secs,
            give_up_secs: self.webhooks.retry_give_up_secs,
        }
    }
}

/// `<path>.<suffix>`: `shop.db` -> `shop.db.lock`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

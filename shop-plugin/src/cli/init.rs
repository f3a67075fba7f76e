//! `init`: a new configuration naming the PC/SC reader(s) of the shop's SAM card(s). It
//! generates the webhook signing secret (a
//! 0600 file) and one API key, printed once: the configuration keeps only its SHA-256.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use clap::Args;
use rand::RngCore;
use shop_plugin::config::{Config, Merchant, Settlement, Webhooks};
use shop_plugin::engine::sha256_hex;
use shop_plugin::files::create_private;
use shop_plugin::webhooks::{Backoff, WebhookSecret};

#[derive(Args)]
pub struct InitArgs {
    /// The PC/SC reader holding the shop's SAM card (`purse-issuer sam issue-card`);
    /// repeat for more. Its SAM must answer now.
    #[arg(long = "sam-reader", value_name = "NAME", required = true)]
    sam_reader: Vec<String>,
    /// Where the HTTP API listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// An origin (https://shop.example) whose pages may call the shopper API; repeat for
    /// more.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    allowed_origins: Vec<String>,
    /// The clearing office's base URL: `settle` uploads each batch to `URL/v1/batches`.
    #[arg(long, value_name = "URL", requires = "clearing_credential_file")]
    clearing_url: Option<String>,
    /// The file (0600) with the SAM's upload credential the office issued.
    #[arg(long, value_name = "FILE")]
    clearing_credential_file: Option<PathBuf>,
    /// The office's hotlist public key (64 hex digits).
    #[arg(long, value_name = "HEX")]
    hotlist_public_key: Option<String>,
}

const SECRET_FILE: &str = "webhook-secret";

pub fn run(config_path: &Path, args: &InitArgs) -> Result<()> {
    if config_path.exists() {
        bail!(
            "{} already exists; refusing to replace a configuration (its API key hashes and \
             paths would be lost)",
            config_path.display()
        );
    }
    // Every SAM must answer before anything is written.
    let mut lines = Vec::new();
    for reader in &args.sam_reader {
        let sam = shop_plugin::sam::pcsc::PcscSam::connect(reader)
            .map_err(|e| anyhow::anyhow!("SAM reader '{reader}': {e}"))?;
        let id = shop_plugin::sam::SecurityModule::identity(&sam);
        lines.push(format!(
            "SAM {} ({}) in reader '{reader}'",
            id.sam_id.to_hex(),
            id.currency
        ));
    }
    let sam_line = lines.join("\n");
    let sam = shop_plugin::config::Sam {
        readers: args.sam_reader.clone(),
        in_process_card: None,
    };
    for o in &args.allowed_origins {
        if !(o.starts_with("https://") || o.starts_with("http://")) || o.ends_with('/') {
            bail!("allowed origin {o:?} is not scheme://host[:port] (no path, no final /)");
        }
    }
    let dir = match config_path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;

    let secret_path = dir.join(SECRET_FILE);
    let secret_note = if secret_path.exists() {
        WebhookSecret::load(&secret_path)?;
        "kept the existing webhook secret"
    } else {
        let secret = WebhookSecret::generate();
        create_private(&secret_path, format!("{}\n", &*secret).as_bytes())?;
        "webhook signing secret written to"
    };

    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(&mut *key);
    let api_key = zeroize::Zeroizing::new(format!(
        "sk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(*key)
    ));

    let backoff = Backoff::DEFAULT;
    let config = Config {
        listen: args.listen,
        database: "shop-plugin.db".into(),
        sam,
        allowed_origins: args.allowed_origins.clone(),
        client_secret_ttl_secs: 30 * 60,
        merchant: Merchant {
            api_key_sha256: vec![sha256_hex(api_key.as_bytes())],
        },
        webhooks: Webhooks {
            secret_file: SECRET_FILE.into(),
            retry_first_secs: backoff.first_secs,
            retry_max_delay_secs: backoff.max_delay_secs,
            retry_give_up_secs: backoff.give_up_secs,
            timeout_secs: 10,
        },
        settlement: Settlement {
            outbox: "settlement-outbox".into(),
            clearing_url: args.clearing_url.clone(),
            clearing_credential_file: args.clearing_credential_file.clone(),
            hotlist_public_key: args.hotlist_public_key.clone(),
            hotlist_refresh_secs: 3600,
            timeout_secs: 10,
            upload_attempts: 3,
            upload_retry_first_ms: 1000,
            auto_correct: false,
        },
        tls_ca_file: None,
    };
    let text = format!(
        "# shop-plugin configuration (written by `shop-plugin init`). Relative paths are\n\
         # relative to this file. No secrets here: API keys appear as SHA-256 hashes.\n{}",
        toml::to_string(&config).context("writing the configuration")?
    );
    create_private(config_path, text.as_bytes())?;

    println!("wrote {}", config_path.display());
    println!("{sam_line}");
    println!("{secret_note} {}", secret_path.display());
    if args.allowed_origins.is_empty() {
        println!(
            "note: no allowed origin yet: the shopper API refuses every page until you add one"
        );
    }
    println!("API key for the shop's server (shown once; only its SHA-256 is kept):");
    println!("{}", &*api_key);
    Ok(())
}

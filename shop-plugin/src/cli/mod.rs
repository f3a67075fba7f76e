//! The subcommands, one module each, and what several of them open: the configuration,
//! the engine with its SAM (only in the process holding the instance lock), the store.

pub mod batches;
pub mod doctor;
pub mod events;
pub mod init;
pub mod report;
pub mod serve;
pub mod settle;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use shop_plugin::config::Config;
use shop_plugin::engine::{Clock, Engine, Pool, Settings};
use shop_plugin::files::read_private;
use shop_plugin::http::App;
use shop_plugin::outbound::Outbound;
use shop_plugin::sam::in_process::InProcessSam;
use shop_plugin::sam::pcsc::PcscSam;
use shop_plugin::sam::SecurityModule;
use shop_plugin::settlement::office::OfficeLink;
use shop_plugin::settlement::Settler;
use shop_plugin::store::Store;

/// How long a start waits for configured SAMs that do not answer before it serves
/// without them (they join once they answer).
const SAM_WAIT: Duration = Duration::from_secs(3);

/// The SAM cards of the configuration, one per reader (or, for tests and benchmarks
/// only, the applet in process, said on stderr). A configured reader whose SAM does not
/// answer now (still held by a process that just died, a reader not yet there) is
/// reported, and its SAM joins once it answers: its payments wait for it, the others
/// take new ones.
pub fn open_sams(sam: &shop_plugin::config::Sam) -> Result<Pool> {
    let mut present: Vec<(String, Box<dyn SecurityModule>)> = Vec::new();
    if let Some(file) = &sam.in_process_card {
        eprintln!(
            "shop-plugin: WARNING: the SAM applet runs IN PROCESS from {} (tests and \
             benchmarks only: its keys are in this process's memory, not in a SAM card)",
            file.display()
        );
        let s = InProcessSam::from_file(file).map_err(|e| anyhow::anyhow!("{e}"))?;
        present.push((file.display().to_string(), Box::new(s)));
    }
    let deadline = std::time::Instant::now() + SAM_WAIT;
    let mut waiting: Vec<String> = sam.readers.clone();
    let mut failures = Vec::new();
    loop {
        failures.clear();
        let mut still = Vec::new();
        for reader in waiting {
            match PcscSam::connect(&reader) {
                Ok(s) => {
                    let id = s.identity();
                    tracing::info!(
                        "SAM {} ({}) in reader '{reader}'",
                        id.sam_id.to_hex(),
                        id.currency
                    );
                    present.push((reader, Box::new(s)));
                }
                Err(e) => {
                    failures.push(format!("'{reader}': {e}"));
                    still.push(reader);
                }
            }
        }
        waiting = still;
        if waiting.is_empty() || std::time::Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for f in &failures {
        tracing::warn!(
            "SAM reader {f}: serving without it until it answers (`shop-plugin doctor` \
             lists the readers)"
        );
    }
    let connect: shop_plugin::engine::Connector = Box::new(|reader: &str| {
        PcscSam::connect(reader).map(|s| Box::new(s) as Box<dyn SecurityModule>)
    });
    Ok(Pool::with_readers(present, waiting, connect)?)
}

/// The engine and the HTTP app over the configured database and SAM. Only the holder
/// of the instance lock may call this: it drives the SAM.
pub fn open_app(config: &Config, clock: Arc<dyn Clock>) -> Result<Arc<App>> {
    let settings = Settings {
        secret_ttl_secs: config.client_secret_ttl_secs,
    };
    let sams = open_sams(&config.sam)?;
    let engine = Engine::open(Store::open(&config.database)?, sams, clock, settings)?;
    let client = Outbound::new(
        config.tls_ca_file.as_deref(),
        Duration::from_secs(config.settlement.timeout_secs),
    )?;
    if let Some(source) = shop_plugin::hotlist::Source::from_config(config, client)? {
        engine.set_hotlist_source(source);
    }
    Ok(Arc::new(App {
        engine,
        api_key_hashes: config.merchant.api_key_sha256.clone(),
        allowed_origins: config.allowed_origins.clone(),
        checkout_js: shop_plugin::CHECKOUT_JS,
    }))
}

/// The database of a plugin that has run before (the operator's read commands must not
/// create an empty one by a typo in the configuration).
pub fn open_store(config: &Config) -> Result<Store> {
    anyhow::ensure!(
        config.database.exists(),
        "no database at {} (has `shop-plugin serve` run with this configuration?)",
        config.database.display()
    );
    Ok(Store::open(&config.database)?)
}

pub fn load_config(path: &Path) -> Result<Config> {
    Config::load(path)
}

/// Where and how batches go.
pub fn settler(config: &Config) -> Result<Settler> {
    let client = Outbound::new(
        config.tls_ca_file.as_deref(),
        Duration::from_secs(config.settlement.timeout_secs),
    )?;
    let s = &config.settlement;
    let office = match (&s.clearing_url, &s.clearing_credential_file) {
        (Some(url), Some(file)) => {
            // One credential per line, one per SAM (each names its SAM).
            let text = zeroize::Zeroizing::new(read_private(file)?);
            let credentials: Vec<_> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| zeroize::Zeroizing::new(l.to_string()))
                .collect();
            anyhow::ensure!(
                !credentials.is_empty()
                    && credentials.iter().all(|c| c
                        .split_once('.')
                        .is_some_and(|(sam, _)| sam.len() == 16)
                        && !c.contains(char::is_whitespace)),
                "{} does not hold upload credentials, one per line (<sam_id>.<secret>)",
                file.display()
            );
            Some(OfficeLink {
                url: url.trim_end_matches('/').to_string(),
                credentials,
                attempts: s.upload_attempts.max(1),
                first_delay: Duration::from_millis(s.upload_retry_first_ms),
            })
        }
        _ => None,
    };
    Ok(Settler {
        outbox: s.outbox.clone(),
        office,
        client,
        auto_correct: s.auto_correct,
    })
}

/// Unix seconds as RFC 3339 UTC.
pub fn time(t: i64) -> String {
    purse::settlement::rfc3339(u64::try_from(t).unwrap_or(0))
}

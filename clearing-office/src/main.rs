//! `clearing-office`: `serve` the API, `import` a `purse-issuer clear` state file,
//! create the `hotlist-key`, `hash-token` for the configuration, print a day's
//! reconciliation `report` (CSV or JSON).

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use clearing_office::config::Config;
use clearing_office::db::Db;

#[derive(Parser)]
#[command(
    name = "clearing-office",
    version,
    about = "The purse scheme's clearing office"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve {
        #[arg(long)]
        config: PathBuf,
    },
    /// Import the state file of `purse-issuer clear` (purse-clearing-state/1).
    Import {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        state: PathBuf,
    },
    /// Print a UTC day's reconciliation report: one line per transaction, the payouts.
    Report {
        #[arg(long)]
        config: PathBuf,
        /// YYYY-MM-DD (UTC)
        #[arg(long, value_parser = parse_day)]
        day: String,
        /// One merchant's (all merchants' when absent).
        #[arg(long)]
        merchant: Option<String>,
        #[arg(long, value_enum, default_value = "csv")]
        format: Format,
    },
    /// Create the hotlist signing key (0600) and print its public key.
    HotlistKey {
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the SHA-256 of a token read from standard input (for operator_token_sha256).
    HashToken,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Csv,
    Json,
}

fn parse_day(s: &str) -> Result<String, String> {
    clearing_office::db::reports::is_day(s)
        .then(|| s.to_string())
        .ok_or_else(|| "the day is YYYY-MM-DD (UTC)".to_string())
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "clearing_office=info".into()),
        )
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Serve { config } => {
            rt.block_on(clearing_office::service::serve(Config::load(&config)?))
        }
        Command::Import { config, state } => rt.block_on(async {
            let config = Config::load(&config)?;
            let db = Db::open(&config.database).await?;
            let (batches, sams, pairs) = clearing_office::import::import(&db, &state).await?;
            println!("imported {batches} batch(es) of {sams} SAM(s), {pairs} settled (card, nt)");
            Ok(())
        }),
        Command::Report {
            config,
            day,
            merchant,
            format,
        } => rt.block_on(async {
            let config = Config::load(&config)?;
            let db = Db::open(&config.database).await?;
            let report = db
                .day_report(&day, merchant.as_deref())
                .await
                .context("reading the report")?;
            let text = match format {
                Format::Csv => clearing_office::csv_report::day_report(&report),
                Format::Json => serde_json::to_string_pretty(&report)? + "\n",
            };
            std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes())?;
            Ok(())
        }),
        Command::HotlistKey { out } => {
            println!("{}", clearing_office::keys::create_hotlist_key(&out)?);
            Ok(())
        }
        Command::HashToken => {
            let mut token = String::new();
            std::io::stdin().read_line(&mut token)?;
            println!("{}", clearing_office::http::auth::sha256_hex(token.trim()));
            Ok(())
        }
    }
}

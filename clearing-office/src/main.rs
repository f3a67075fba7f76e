//! `clearing-office`: `serve` the API, `import` a `purse-issuer clear` state file,
//! create the `hotlist-key`, `hash-token` for the configuration.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;
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
    /// Create the hotlist signing key (0600) and print its public key.
    HotlistKey {
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the SHA-256 of a token read from standard input (for operator_token_sha256).
    HashToken,
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

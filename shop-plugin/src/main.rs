//! `shop-plugin`: the payment service a shop runs beside its checkout.
//!
//! `serve` runs the HTTP API, the webhook worker and the admin socket; `settle` is the
//! daily job; `init`, `payments`, `totals` and `events` are the operator's. Exit status:
//! 0 success, 1 an error, 2 `settle` closed and wrote its batch but could not upload it.

mod cli;

/// mimalloc rather than glibc's malloc: a request allocates and frees many small
/// buffers on two threads at once, and glibc's consolidation of freed chunks was a tenth
/// of the service's CPU in `shop-bench` (docs/performance.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use shop_plugin::payment::Status;

#[derive(Parser)]
#[command(version, about = "The purse payment service beside a shop's checkout")]
struct Cli {
    /// The configuration file.
    #[arg(long, short, global = true, default_value = "shop-plugin.toml")]
    config: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write a new configuration: a webhook secret file (0600) and an API key, printed
    /// once (the configuration keeps only its SHA-256).
    Init(cli::init::InitArgs),
    /// Serve the merchant and shopper API, send webhooks, answer the admin socket.
    Serve,
    /// Which SAM readers are present, their SAM_IDs and counters.
    Doctor,
    /// Close the day's period into a batch file and upload it (the daily job). At most
    /// one period closes per UTC day; running again only completes missing files and
    /// uploads. Works beside a running `serve` (through its admin socket).
    Settle {
        /// Close another period even though one was closed today.
        #[arg(long)]
        force: bool,
    },
    /// Settlement batches and the clearing office's decisions.
    #[command(subcommand)]
    Batches(BatchesCmd),
    /// Payments.
    #[command(subcommand)]
    Payments(PaymentsCmd),
    /// The open period: transactions not yet in a batch, per state, and the unresolved.
    Totals {
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Webhook events: deliveries, failures, re-queueing.
    #[command(subcommand)]
    Events(EventsCmd),
}

#[derive(Subcommand)]
enum BatchesCmd {
    /// Every batch: accepted, rejected (with the office's problems), not yet sent.
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Close a rejected period again without the records the office refused (their
    /// payments fail with `clearing_refused`), then upload (in the running server when
    /// one holds the SAMs).
    Correct {
        close_seq: u32,
        /// The SAM whose batch it is (hex SAM_ID), when several SAMs have `close_seq`.
        #[arg(long = "sam", value_name = "SAM_ID")]
        sam_id: Option<String>,
    },
}

#[derive(Subcommand)]
enum PaymentsCmd {
    /// The newest payments first.
    List {
        /// Only payments in this status (created, authorized, running, succeeded,
        /// failed, canceled, expired).
        #[arg(long, value_parser = parse_status)]
        status: Option<Status>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// One JSON object per line (the merchant API's view) instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum EventsCmd {
    /// The newest events first.
    List {
        /// Only the events kept as failed after their retries.
        #[arg(long)]
        failed: bool,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Send events again now, with a fresh retry schedule.
    Retry {
        /// Event ids (evt_…).
        #[arg(required_unless_present = "all_failed")]
        ids: Vec<String>,
        /// Every event kept as failed.
        #[arg(long, conflicts_with = "ids")]
        all_failed: bool,
    },
}

fn parse_status(s: &str) -> Result<Status, String> {
    Status::parse(s).ok_or_else(|| {
        format!("unknown status '{s}' (created, authorized, running, succeeded, failed, canceled, expired)")
    })
}

fn main() -> ExitCode {
    shop_plugin::init_logging();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let config = cli.config;
    rt.block_on(async move {
        match cli.cmd {
            Cmd::Init(args) => cli::init::run(&config, &args).map(|()| ExitCode::SUCCESS),
            Cmd::Serve => cli::serve::run(&config).await.map(|()| ExitCode::SUCCESS),
            Cmd::Doctor => cli::doctor::run(&config),
            Cmd::Settle { force } => cli::settle::run(&config, force).await,
            Cmd::Batches(BatchesCmd::List { json }) => cli::batches::list(&config, json).await,
            Cmd::Batches(BatchesCmd::Correct { close_seq, sam_id }) => {
                cli::batches::correct(&config, close_seq, sam_id).await
            }
            Cmd::Payments(PaymentsCmd::List {
                status,
                limit,
                json,
            }) => cli::report::payments(&config, status, limit, json).await,
            Cmd::Totals { json } => cli::report::totals(&config, json).await,
            Cmd::Events(EventsCmd::List {
                failed,
                limit,
                json,
            }) => cli::events::list(&config, failed, limit, json).await,
            Cmd::Events(EventsCmd::Retry { ids, all_failed }) => {
                cli::events::retry(&config, ids, all_failed).await
            }
        }
    })
}

//! `card-emulator`: a purse card in pcscd's vpcd virtual reader, for development and
//! tests. Its state lives in a `purse-card-state/1` file (mode 0600) that every debit
//! rewrites atomically before the card answers.

use std::path::PathBuf;
use std::sync::mpsc;

use anyhow::{Context, Result};
use card_emulators::{control, run, store::FileStore, wake};
use clap::Parser;
use purse::card::Card;
use purse::Rnd;
use rand::RngCore;

/// A purse card for vsmartcard's vpcd: connects to pcscd's vpcd driver as the card.
#[derive(Parser, Debug)]
#[command(name = "card-emulator", version)]
struct Args {
    /// The card state file (purse-card-state/1, mode 0600); updated on every debit.
    #[arg(long, value_name = "FILE")]
    card: PathBuf,
    /// Host of pcscd's vpcd driver.
    #[arg(long, default_value = "127.0.0.1")]
    vpcd_host: String,
    /// vpcd port: 35963 is reader "Virtual PCD 00 00", 35964 "Virtual PCD 00 01".
    #[arg(long, default_value_t = 35963)]
    vpcd_port: u16,
    /// Unix socket for test control: remove, insert, pull-after INS, pull-before INS,
    /// status (one reply line per command line).
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,
    /// Start with the card removed (wait for `insert` or SIGUSR2).
    #[arg(long)]
    removed: bool,
    /// Log every APDU's INS and status word.
    #[arg(long, short)]
    verbose: bool,
    /// Be a card without the purse application (tests of "unsupported card").
    #[arg(long)]
    without_purse: bool,
    /// Be a T=0 card: answers with data come as 61xx and need GET RESPONSE; a GET
    /// RESPONSE with a wrong Le gets 6Cxx.
    #[arg(long)]
    t0: bool,
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("card-emulator: error: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let args = Args::parse();
    let store = FileStore::new(&args.card);
    let state = store.load().context("loading the card state")?;
    eprintln!(
        "card-emulator: card {} loaded from {}: balance {} {}, NT_last {}",
        state.card_id,
        args.card.display(),
        state.balance,
        state.currency.numeric(),
        state.nt_last
    );
    let card = Card::new(state, Box::new(os_random));

    let (waker, wake_rx) = wake::channel().context("creating the wake-up socket")?;
    wake::install_signal_handlers(&waker).context("installing signal handlers")?;
    let (req_tx, req_rx) = mpsc::channel();
    let _socket_file = match &args.control {
        Some(path) => {
            let guard = control::serve(path, req_tx, waker.clone())?;
            // Tests wait for this line before they connect.
            eprintln!(
                "card-emulator: control socket listening on {}",
                path.display()
            );
            Some(guard)
        }
        None => None,
    };

    let opts = run::Options {
        host: args.vpcd_host,
        port: args.vpcd_port,
        inserted: !args.removed,
        verbose: args.verbose,
        without_purse: args.without_purse,
        t0: args.t0,
    };
    run::Emulator::new(card, store, opts, req_rx, wake_rx).run()
}

/// RND_C from the OS. A card that cannot draw randomness must not answer at all.
fn os_random() -> Rnd {
    let mut b = [0u8; 16];
    if let Err(e) = rand::rngs::OsRng.try_fill_bytes(&mut b) {
        eprintln!("card-emulator: error: the OS random generator failed: {e}");
        std::process::exit(70);
    }
    Rnd(b)
}

//! `card-emulator`: a purse card in pcscd's vpcd virtual reader, for development and
//! tests. Its state lives in a `purse-card-state/1` file (mode 0600) that every debit
//! rewrites atomically before the card answers.

use std::path::PathBuf;

use anyhow::{Context, Result};
use card_emulators::{applet::os_rnd, cli::Plumbing, purse_card::PurseCard, run, store::FileStore};
use clap::Parser;
use purse::card::Card;
use purse::Rnd;

/// A purse card for vsmartcard's vpcd: connects to pcscd's vpcd driver as the card.
#[derive(Parser, Debug)]
#[command(name = "card-emulator", version)]
struct Args {
    /// The card state file (purse-card-state/1, mode 0600); updated on every debit.
    #[arg(long, value_name = "FILE")]
    card: PathBuf,
    #[command(flatten)]
    plumbing: Plumbing,
    /// Be a card without the purse application (tests of "unsupported card").
    #[arg(long)]
    without_purse: bool,
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
    let card = Card::new(state, Box::new(random));
    let applet = PurseCard::new(card, store, args.without_purse);
    run::run_binary(
        applet,
        args.plumbing.options(),
        args.plumbing.control.as_deref(),
    )
}

/// RND_C from the OS.
fn random() -> Rnd {
    os_rnd("card-emulator")
}

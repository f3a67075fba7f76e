//! `sam-emulator`: the shop's SAM card in pcscd's vpcd virtual reader (its own slot),
//! running the SAM applet of docs/sam-protocol.md. Its keys, counters, windows and period
//! totals live in a `purse-sam-card/1` file (mode 0600, from `purse-issuer sam
//! issue-card`) and its journal `<file>.journal`, to which every state change is
//! appended durably before the SAM answers.

use std::path::PathBuf;

use anyhow::{Context, Result};
use card_emulators::{cli::Plumbing, run, sam_card::SamCard, sam_store::SamFileStore};
use clap::Parser;

/// A SAM card for vsmartcard's vpcd: connects to pcscd's vpcd driver as the card.
#[derive(Parser, Debug)]
#[command(name = "sam-emulator", version)]
struct Args {
    /// The SAM card file (purse-sam-card/1, mode 0600); its journal (FILE.journal)
    /// takes every change before the answer, the file itself now and then.
    #[arg(long, value_name = "FILE")]
    card: PathBuf,
    #[command(flatten)]
    plumbing: Plumbing,
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("sam-emulator: error: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let args = Args::parse();
    let (state, store) = SamFileStore::open(&args.card).context("loading the SAM card")?;
    eprintln!(
        "sam-emulator: SAM {} loaded from {}: next SAM_TxSeq {}, last close {}, open \
         period {} completions{}",
        state.keys.sam_id.to_hex(),
        args.card.display(),
        state.next_tx_seq,
        state.last_close_seq,
        state.period.count,
        if state.blocked { ", BLOCKED" } else { "" }
    );
    run::run_binary(
        SamCard::new(state, store),
        args.plumbing.options(),
        args.plumbing.control.as_deref(),
    )
}

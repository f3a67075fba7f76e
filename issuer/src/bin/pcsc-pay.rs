//! `pcsc-pay`: the shop's SAM paying with the purse card in a PC/SC reader, step by step.
//!
//! The README's main job runs it against the card emulator: a single purchase, a
//! time-cycle with ticks up to the cap, a purchase whose DEBIT answer is lost (the card
//! is pulled) and then recovered, and the close of the period into a settlement batch.
//! Every APDU is printed with its status word and round-trip time. The SAM is a SAM card
//! in its own reader (`--sam-reader`, the SAM applet's commands through
//! `purse_issuer::sam_terminal`), or LEGACY a SAM key file read into this process.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::Parser;
use purse::apdu::Response;
use purse::commands::INS_DEBIT;
use purse::keys::SamKeys;
use purse::sam::{Completion, Durable, Order, Sam};
use purse::settlement::rfc3339;
use purse::surrogate::{CardLink, Journal, JournalError, LinkError, Surrogate};
use purse::{Amount, Currency, DateTime, Rnd, SamTxSeq, Units};
use purse_issuer::files::{read_private, write_atomic};
use purse_issuer::pcsc_link::{establish, wait_for_card, PcscLink, VPCD_READER};
use rand::RngCore;

#[path = "pcsc-pay/sam_card.rs"]
mod sam_card;

#[derive(Parser)]
#[command(
    version,
    about = "Pay with the purse card in a PC/SC reader, printing every step"
)]
#[command(group(clap::ArgGroup::new("sam").required(true).args(["sam_reader", "sam_keys"])))]
struct Args {
    /// The PC/SC reader holding the SAM card (`purse-issuer sam issue-card`, run by
    /// sam-emulator).
    #[arg(long, value_name = "NAME")]
    sam_reader: Option<String>,
    /// LEGACY: a SAM key file (purse-sam-keys/1, mode 0600) read into this process.
    #[arg(long, value_name = "FILE")]
    sam_keys: Option<PathBuf>,
    /// The PC/SC reader holding the card.
    #[arg(long, default_value = VPCD_READER)]
    reader: String,
    /// The card emulator's control socket: enables the lost-answer and recovery step.
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,
    /// Where the SAM's journal goes (JSON lines, fsynced before each command leaves);
    /// with --sam-keys only (a SAM card journals in its own file).
    #[arg(long, value_name = "FILE", required_unless_present = "sam_reader")]
    journal: Option<PathBuf>,
    /// Where the settlement batch of the closed period goes.
    #[arg(long, value_name = "FILE")]
    batch_out: PathBuf,
    /// Price of the single purchase, in minor units.
    #[arg(long, default_value_t = 1250)]
    amount: u32,
}

/// Prints each APDU and its answer with the round-trip time.
struct Traced {
    inner: PcscLink,
}

fn name(apdu: &[u8]) -> &'static str {
    match apdu.get(1) {
        Some(0xA4) => "SELECT",
        Some(0x50) if apdu.get(2) == Some(&0) => "INITIALIZE (status only)",
        Some(0x50) => "INITIALIZE FOR PURCHASE",
        Some(0x54) => "DEBIT FOR PURCHASE",
        Some(0x56) => "DEBIT TICK",
        Some(0x5A) => "GET TRANSACTION PROOF",
        Some(0x70) => "SAM BEGIN",
        Some(0x72) => "SAM AUTHORIZE",
        Some(0x74) => "SAM COMPLETE",
        Some(0x76) => "SAM TICK",
        Some(0x78) => "SAM STOP",
        Some(0x7A) => "SAM RECOVERY",
        Some(0x7C) => "SAM CLOSE",
        Some(0x7E) => "SAM GET STATUS",
        _ => "?",
    }
}

impl CardLink for Traced {
    fn transmit(&mut self, apdu: &[u8]) -> Result<Vec<u8>, LinkError> {
        let t = Instant::now();
        let r = self.inner.transmit(apdu);
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        println!("    → {:<26} {}", name(apdu), hex::encode(apdu));
        match &r {
            Ok(b) => match Response::parse(b) {
                Ok(resp) => println!(
                    "    ← {:<26} {} ({ms:.2} ms)",
                    resp.sw.to_string(),
                    hex::encode(&resp.data)
                ),
                Err(_) => println!("    ← malformed answer {}", hex::encode(b)),
            },
            Err(e) => println!("    ✗ {e} ({ms:.2} ms)"),
        }
        r
    }
}

/// The SAM's journal as JSON lines, each record fsynced before the call returns.
struct FileJournal {
    path: PathBuf,
}

impl Journal for FileJournal {
    fn store(&mut self, records: &[Durable]) -> Result<(), JournalError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut lines = String::new();
        for d in records {
            let line = serde_json::json!({"next_tx_seq": d.next_tx_seq, "tx": d.tx});
            lines.push_str(&line.to_string());
            lines.push('\n');
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| JournalError(format!("{}: {e}", self.path.display())))?;
        f.write_all(lines.as_bytes())
            .and_then(|()| f.sync_data())
            .map_err(|e| JournalError(format!("{}: {e}", self.path.display())))
    }
}

fn control(socket: &Path, line: &str) -> Result<String> {
    let mut s = UnixStream::connect(socket)
        .with_context(|| format!("connecting to {}", socket.display()))?;
    writeln!(s, "{line}")?;
    let mut reply = String::new();
    BufReader::new(&s).read_line(&mut reply)?;
    let reply = reply.trim().to_string();
    if reply.starts_with("error") {
        bail!("card emulator refused '{line}': {reply}");
    }
    Ok(reply)
}

fn rnd() -> Rnd {
    let mut r = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut r);
    Rnd(r)
}

fn fmt(c: Currency, a: Amount) -> String {
    c.format(a)
}

/// The clock the SAM is told (seconds since 1970).
fn now() -> DateTime {
    DateTime(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32),
    )
}

fn connect(reader: &str) -> Result<Traced> {
    let ctx = establish()?;
    wait_for_card(&ctx, reader, true, Duration::from_secs(10))?;
    Ok(Traced {
        inner: PcscLink::connect(&ctx, reader)
            .with_context(|| format!("connecting to the card in '{reader}'"))?,
    })
}

fn describe(c: &Completion, cur: Currency) -> String {
    match c {
        Completion::Confirmed {
            units,
            total,
            balance_after,
            ..
        } => format!(
            "confirmed: {} unit(s), {} charged, {} left on the card",
            units.0,
            fmt(cur, *total),
            fmt(cur, *balance_after)
        ),
        Completion::Voided { kept_units } => format!("voided (units kept: {})", kept_units.0),
        Completion::Lost => "answer lost: the transaction stays pending until recovery".into(),
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(reader) = &args.sam_reader {
        return sam_card::run(&args, reader);
    }
    let (Some(sam_keys), Some(journal)) = (&args.sam_keys, &args.journal) else {
        bail!("--sam-keys needs --journal");
    };
    let keys = SamKeys::from_json(&read_private(sam_keys)?)
        .with_context(|| format!("reading SAM keys {}", sam_keys.display()))?;
    let cur = keys.currency;
    println!(
        "SAM {} ({cur}), waiting for a card in '{}'",
        keys.sam_id, args.reader
    );
    let mut sam = Sam::new(keys);
    let mut journal = FileJournal {
        path: journal.clone(),
    };
    let mut link = connect(&args.reader)?;

    println!("\n1. Single purchase of {}", fmt(cur, Amount(args.amount)));
    let t = Instant::now();
    let mut s = Surrogate {
        sam: &mut sam,
        journal: &mut journal,
    };
    let p = s.purchase(&mut link, Order::single(Amount(args.amount)), rnd(), now())?;
    println!(
        "   card {} had {}; SAM_TxSeq {}",
        p.card.card_id,
        fmt(cur, p.card.balance),
        p.sam_tx_seq.0
    );
    println!(
        "   {} in {:.1} ms",
        describe(&p.completion, cur),
        t.elapsed().as_secs_f64() * 1000.0
    );
    if !matches!(p.completion, Completion::Confirmed { .. }) {
        bail!("the single purchase did not complete");
    }

    println!(
        "\n2. Time-cycle: {} per minute, at most 3 units",
        fmt(cur, Amount(200))
    );
    let start = now();
    let p = s.purchase(
        &mut link,
        Order::time_cycle(Amount(200), Units(3), 60),
        rnd(),
        start,
    )?;
    println!("   unit 1 {}", describe(&p.completion, cur));
    for k in 2..=3u32 {
        // The shop's clock decides when a unit is due; the demo advances it a minute.
        let clock = DateTime(start.0 + (k - 1) * 60);
        println!("   shop clock +{} s: unit {k} is due", (k - 1) * 60);
        let c = s.tick(&mut link, p.sam_tx_seq, clock)?;
        println!("   unit {k} {}", describe(&c, cur));
    }

    if let Some(sock) = &args.control {
        println!(
            "\n3. A purchase whose DEBIT answer is lost: the card is pulled right after debiting"
        );
        control(sock, &format!("pull-after {INS_DEBIT:02x}"))?;
        let p = s.purchase(&mut link, Order::single(Amount(300)), rnd(), now())?;
        println!("   {}", describe(&p.completion, cur));
        let ctx = establish()?;
        wait_for_card(&ctx, &args.reader, false, Duration::from_secs(10))?;
        println!("   the card left the reader; putting it back");
        control(sock, "insert")?;
        let mut again = connect(&args.reader)?;
        let outcomes = s.recover(&mut again, rnd())?;
        for (seq, o) in &outcomes {
            println!("   recovery of SAM_TxSeq {}: {o:?}", seq.0);
        }
        if outcomes != vec![(p.sam_tx_seq, purse::sam::Outcome::Completed)] {
            bail!("recovery did not complete the lost purchase: {outcomes:?}");
        }
    }

    println!("\n4. Close of the period");
    let close = sam.close_period(rfc3339(u64::from(now().0)));
    journal.store(&close.durable)?;
    let json = serde_json::to_string_pretty(&close.batch)?;
    write_atomic(&args.batch_out, json.as_bytes(), 0o644)?;
    let seqs: Vec<SamTxSeq> = close
        .batch
        .transactions
        .iter()
        .map(|t| t.sam_tx_seq)
        .collect();
    println!(
        "   batch close_seq {}: {} transactions {:?}, sum {}, TRMAC {} → {}",
        close.batch.close_seq.0,
        close.batch.totals.count,
        seqs.iter().map(|s| s.0).collect::<Vec<_>>(),
        cur.format_minor(close.batch.totals.sum.0),
        close.batch.totals.mac,
        args.batch_out.display()
    );
    Ok(())
}

//! `purse-issuer`: the issuer and clearing-office tool. It creates master keys per key
//! version, SAM key files and card state files, loads value onto cards, shows cards, and
//! clears settlement batches. Argument parsing and printing only; the work is in
//! `purse_issuer::office`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use purse::keys::SamKeys;
use purse::{Amount, CardId, Currency, KeyVersion, SamId};
use purse_issuer::office::cards::{self, NewCard};
use purse_issuer::office::clearing::{self, ClearOutcome};
use purse_issuer::office::keys::{self, NewSam};

/// Exit status of a batch the clearing office refused (any other failure is 2).
const EXIT_REJECTED: u8 = 1;
const EXIT_ERROR: u8 = 2;

#[derive(Parser)]
#[command(
    name = "purse-issuer",
    version,
    about = "Issuer and clearing-office tool of the purse protocol v1",
    long_about = "Issuer and clearing-office tool of the purse protocol v1.\n\n\
        Key, SAM, card and clearing-state files are written atomically with mode 0600 and \
        refused when group or others may access them. Keys are never printed.",
    after_help = "Exit status: 0 success; 1 the batch was rejected (clear); 2 any other error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Manage the issuer's master key file (MK_PUR, MK_TAC, MK_SAM per key version).
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Create SAM key files.
    #[command(subcommand)]
    Sam(SamCmd),
    /// Issue, load and show card state files.
    #[command(subcommand)]
    Card(CardCmd),
    /// Verify a settlement batch and, if it is acceptable, record it in the clearing state.
    ///
    /// On acceptance prints one summary line. On rejection prints each problem on its own
    /// line as `CODE: message`, leaves the clearing state untouched and exits with 1.
    Clear {
        /// The issuer key file.
        #[arg(long, value_name = "FILE")]
        keys: PathBuf,
        /// The clearing-state file (purse-clearing-state/1); created when absent.
        #[arg(long, value_name = "FILE")]
        state: PathBuf,
        /// Only verify: record nothing.
        #[arg(long)]
        dry_run: bool,
        /// The settlement batch file (purse-settlement/1).
        #[arg(value_name = "BATCH")]
        batch: PathBuf,
    },
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Generate the master keys of a new key version and add them to the key file
    /// (created when absent). An existing key version is never replaced.
    Add {
        /// The issuer key file (purse-issuer-keys/1).
        #[arg(long, value_name = "FILE")]
        keys: PathBuf,
        /// The new key version, 0-255.
        #[arg(long, value_name = "KV")]
        kv: u8,
    },
    /// List the key versions of the key file (never the keys).
    List {
        #[arg(long, value_name = "FILE")]
        keys: PathBuf,
    },
}

#[derive(Subcommand)]
enum SamCmd {
    /// Derive a SAM's key file (K_SAM and MK_PUR of each accepted card key version).
    Issue {
        #[command(flatten)]
        sam: SamArgs,
        /// Where to write the SAM key file (purse-sam-keys/1).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Personalise a SAM card for sam-emulator: its keys (K_SAM, MK_PUR of each accepted
    /// card key version), K_CTX drawn from the OS generator, SAM_TxSeq from 1.
    IssueCard {
        #[command(flatten)]
        sam: SamArgs,
        /// Where to write the SAM card file (purse-sam-card/1, mode 0600).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Replace an existing file (the old SAM's counter and totals are lost).
        #[arg(long)]
        force: bool,
    },
}

/// What a SAM is personalised with.
#[derive(Args)]
struct SamArgs {
    /// The issuer key file.
    #[arg(long, value_name = "FILE")]
    keys: PathBuf,
    /// The SAM's 8-byte ID, 16 hex digits.
    #[arg(long, value_name = "HEX", value_parser = parse_sam_id)]
    sam_id: SamId,
    /// The one currency the SAM serves: alphabetic (EUR) or numeric (978).
    #[arg(long, value_parser = parse_currency)]
    currency: Currency,
    /// The key version of the MK_SAM that derives K_SAM.
    #[arg(long, value_name = "KV")]
    key_version: u8,
    /// Card key versions the SAM accepts (repeat or comma-separate).
    #[arg(
        long = "accept",
        value_name = "KV",
        required = true,
        value_delimiter = ','
    )]
    accepts: Vec<u8>,
}

impl SamArgs {
    fn new_sam(&self) -> NewSam {
        NewSam {
            sam_id: self.sam_id,
            currency: self.currency,
            key_version: KeyVersion(self.key_version),
            accepts: self.accepts.iter().copied().map(KeyVersion).collect(),
        }
    }
}

#[derive(Subcommand)]
enum CardCmd {
    /// Personalise a new card: derive K_PUR and K_TAC and write its state file.
    Issue {
        /// The issuer key file.
        #[arg(long, value_name = "FILE")]
        keys: PathBuf,
        /// The card's 8-byte ID, 16 hex digits.
        #[arg(long, value_name = "HEX", value_parser = parse_card_id)]
        card_id: CardId,
        /// The card's key version.
        #[arg(long, value_name = "KV")]
        kv: u8,
        /// The purse currency: alphabetic (EUR) or numeric (978).
        #[arg(long, value_parser = parse_currency)]
        currency: Currency,
        /// The initial balance in minor units (cents).
        #[arg(long, value_name = "MINOR_UNITS", default_value_t = 0)]
        balance: u32,
        /// Where to write the card state file (purse-card-state/1).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Replace an existing card file (its balance and log are lost).
        #[arg(long)]
        force: bool,
    },
    /// Add value to a card's balance. Stop any card emulator using the file first.
    Load {
        /// The card state file.
        #[arg(long, value_name = "FILE")]
        card: PathBuf,
        /// The amount to add, in minor units (cents).
        #[arg(long, value_name = "MINOR_UNITS")]
        amount: u32,
    },
    /// Show a card's state and transaction log (never its keys).
    Show {
        /// The card state file.
        #[arg(long, value_name = "FILE")]
        card: PathBuf,
    },
}

fn parse_sam_id(s: &str) -> Result<SamId, String> {
    SamId::from_hex(s).map_err(|e| e.to_string())
}

fn parse_card_id(s: &str) -> Result<CardId, String> {
    CardId::from_hex(s).map_err(|e| e.to_string())
}

fn parse_currency(s: &str) -> Result<Currency, String> {
    Currency::parse(s).map_err(|e| e.to_string())
}

/// `<SAM_ID> (<currency>, SAM key version <kv>, accepts card key versions <kvs>)`.
fn describe_sam(k: &SamKeys) -> String {
    let accepted: Vec<KeyVersion> = k.mk_pur.keys().copied().collect();
    format!(
        "{} ({}, SAM key version {}, accepts card key versions {})",
        k.sam_id,
        k.currency,
        k.key_version,
        versions(&accepted)
    )
}

fn versions(list: &[KeyVersion]) -> String {
    let v: Vec<String> = list.iter().map(ToString::to_string).collect();
    v.join(", ")
}

fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Keys(KeysCmd::Add { keys: path, kv }) => {
            let all = keys::add_key_version(&path, KeyVersion(kv))?;
            println!(
                "added key version {kv} to {} (key versions: {})",
                path.display(),
                versions(&all)
            );
        }
        Command::Keys(KeysCmd::List { keys: path }) => {
            println!("{}", versions(&keys::list_key_versions(&path)?));
        }
        Command::Sam(SamCmd::Issue { sam, out, force }) => {
            let k = keys::issue_sam_keys(&sam.keys, &out, &sam.new_sam(), force)?;
            println!("wrote SAM {} to {}", describe_sam(&k), out.display());
        }
        Command::Sam(SamCmd::IssueCard { sam, out, force }) => {
            let s = keys::issue_sam_card(&sam.keys, &out, &sam.new_sam(), force)?;
            println!(
                "wrote SAM card {}, SAM_TxSeq from {}, to {}",
                describe_sam(&s.keys),
                s.next_tx_seq,
                out.display()
            );
        }
        Command::Card(CardCmd::Issue {
            keys: path,
            card_id,
            kv,
            currency,
            balance,
            out,
            force,
        }) => {
            let card = NewCard {
                card_id,
                kv: KeyVersion(kv),
                currency,
                balance: Amount(balance),
            };
            let s = cards::issue_card(&path, &out, &card, force)?;
            println!(
                "issued card {} (key version {}, balance {}) to {}",
                s.card_id,
                s.kv,
                s.currency.format(s.balance),
                out.display()
            );
        }
        Command::Card(CardCmd::Load { card, amount }) => {
            let l = cards::load_value(&card, Amount(amount))?;
            println!(
                "loaded {} onto card {}: balance {} -> {}",
                l.currency.format(l.amount),
                l.card_id,
                l.currency.format(l.before),
                l.currency.format(l.after)
            );
        }
        Command::Card(CardCmd::Show { card }) => {
            print!("{}", cards::describe(&cards::read_card(&card)?));
        }
        Command::Clear {
            keys: path,
            state,
            dry_run,
            batch,
        } => match clearing::clear(&path, &state, &batch, !dry_run)? {
            ClearOutcome::Accepted(summary) => println!("{summary}"),
            ClearOutcome::Rejected(r) => {
                for (code, message) in &r.problems {
                    println!("{code}: {message}");
                }
                eprintln!(
                    "rejected {}: {} problem(s); the clearing state is unchanged",
                    r.subject,
                    r.problems.len()
                );
                return Ok(EXIT_REJECTED);
            }
        },
    }
    Ok(0)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("purse-issuer: error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

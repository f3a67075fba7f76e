//! `pcsc-pay --sam-reader`: the same four steps with the SAM a card in its own reader.
//! The terminal relays between the SAM card and the purse card; every APDU to either is
//! printed. The batch comes from the SAM's CLOSE END.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use purse::commands::INS_DEBIT;
use purse::sam::Order;
use purse::sam_applet::host::Outcome;
use purse::settlement::rfc3339;
use purse::{Amount, Currency, Units};
use purse_issuer::files::write_atomic;
use purse_issuer::pcsc_link::{establish, wait_for_card};
use purse_issuer::sam_terminal::{Debited, SamTerminal};

use super::{connect, control, now, Args, Traced};

fn describe(o: &Outcome, cur: Currency) -> String {
    match o {
        Outcome::Completed(c) => match c.tx_record() {
            Ok(r) => format!(
                "counted by the SAM: SAM_TxSeq {}, {} unit(s), {} charged",
                r.sam_tx_seq.0,
                r.units.0,
                cur.format(r.total)
            ),
            Err(e) => format!("counted, but its record does not parse: {e}"),
        },
        Outcome::Running(_) => "confirmed; the time-cycle runs on".into(),
        Outcome::Nothing => "final, nothing to settle".into(),
        Outcome::Pending => "pending: recovery could not decide".into(),
    }
}

pub fn run(args: &Args, reader: &str) -> Result<()> {
    let mut sam = SamTerminal::select(connect(reader)?)?;
    let cur = sam.identity.currency;
    println!(
        "SAM card {} ({cur}) in '{reader}', waiting for a card in '{}'",
        sam.identity.sam_id, args.reader
    );
    let mut card = connect(&args.reader)?;

    println!(
        "\n1. Single purchase of {}",
        cur.format(Amount(args.amount))
    );
    let t = Instant::now();
    let o = match sam.purchase(&mut card, &Order::single(Amount(args.amount)), now())? {
        Debited::Answered(o) => o,
        Debited::Lost { .. } => bail!("the card's DEBIT answer was lost"),
    };
    println!(
        "   {} in {:.1} ms",
        describe(&o, cur),
        t.elapsed().as_secs_f64() * 1000.0
    );
    if !matches!(o, Outcome::Completed(_)) {
        bail!("the single purchase did not complete");
    }

    println!(
        "\n2. Time-cycle: {} per minute, at most 3 units",
        cur.format(Amount(200))
    );
    let start = now();
    let order = Order::time_cycle(Amount(200), Units(3), 60);
    let mut o = match sam.purchase(&mut card, &order, start)? {
        Debited::Answered(o) => o,
        Debited::Lost { .. } => bail!("the card's DEBIT answer was lost"),
    };
    println!("   unit 1 {}", describe(&o, cur));
    for k in 2..=3u32 {
        let Outcome::Running(ctx) = &o else { break };
        // The shop's clock decides when a unit is due; the demo advances it a minute.
        println!("   shop clock +{} s: unit {k} is due", (k - 1) * 60);
        o = sam.tick(&mut card, ctx, purse::DateTime(start.0 + (k - 1) * 60))?;
        println!("   unit {k} {}", describe(&o, cur));
    }
    if let Outcome::Running(ctx) = &o {
        o = sam.stop(ctx)?;
        println!("   stopped at the cap: {}", describe(&o, cur));
    }

    if let Some(sock) = &args.control {
        println!(
            "\n3. A purchase whose DEBIT answer is lost: the card is pulled right after debiting"
        );
        control(sock, &format!("pull-after {INS_DEBIT:02x}"))?;
        let (ctx, nt) = match sam.purchase(&mut card, &Order::single(Amount(300)), now())? {
            Debited::Lost { ctx, nt } => (ctx, nt),
            Debited::Answered(o) => bail!("the answer was not lost: {}", describe(&o, cur)),
        };
        println!("   answer lost: the SAM's sealed context waits for recovery");
        let ctx_pcsc = establish()?;
        wait_for_card(&ctx_pcsc, &args.reader, false, Duration::from_secs(10))?;
        println!("   the card left the reader; putting it back");
        control(sock, "insert")?;
        let mut again: Traced = connect(&args.reader)?;
        let o = sam.recover(&mut again, &ctx, nt)?;
        println!("   recovery: {}", describe(&o, cur));
        if !matches!(o, Outcome::Completed(_)) {
            bail!("recovery did not complete the lost purchase");
        }
        card = again;
    }
    drop(card);

    println!("\n4. Close of the period");
    let batch = sam.close(&rfc3339(u64::from(now().0)))?;
    let json = serde_json::to_string_pretty(&batch)?;
    write_atomic(&args.batch_out, json.as_bytes(), 0o644)?;
    println!(
        "   batch close_seq {}: {} transactions {:?}, sum {}, TRMAC {} → {}",
        batch.close_seq.0,
        batch.totals.count,
        batch
            .transactions
            .iter()
            .map(|t| t.sam_tx_seq.0)
            .collect::<Vec<_>>(),
        cur.format_minor(batch.totals.sum.0),
        batch.totals.mac,
        args.batch_out.display()
    );
    Ok(())
}

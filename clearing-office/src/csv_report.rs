//! The day's reconciliation report as CSV, for the CLI (`clearing-office report`), shaped
//! like an acquirer's settlement details (Adyen) / balance-transaction export (Stripe):
//! a header, one line per transaction (`payment`, `adjustment`) with gross, fee and net
//! and the payout it goes into, then one `payout` line per payout. Amounts in minor
//! units; times in RFC 3339 UTC; fields quoted as RFC 4180 says when they need it.

use std::fmt::Write;

use purse::settlement::rfc3339;

use crate::db::reports::DayReport;

pub const HEADER: &str =
    "type,id,payout_id,merchant_id,batch_id,sam_id,card_id,nt,sam_tx_seq,created,currency,gross,fee,net,transaction_count";

/// The report as CSV text, lines ending in CRLF (RFC 4180).
pub fn day_report(r: &DayReport) -> String {
    let mut out = String::new();
    row(&mut out, HEADER.split(','));
    for l in &r.balance_transactions {
        let merchant = r
            .payouts
            .iter()
            .find(|p| p.id == l.payout_id)
            .map_or("", |p| p.merchant_id.as_str());
        row(
            &mut out,
            [
                l.kind,
                &l.id,
                &l.payout_id,
                merchant,
                &l.batch_id.to_string(),
                &l.sam_id,
                &l.card_id,
                &l.nt.to_string(),
                &l.sam_tx_seq.to_string(),
                &time(l.created),
                &l.currency,
                &l.amount.to_string(),
                &l.fee.to_string(),
                &l.net.to_string(),
                "1",
            ],
        );
    }
    for p in &r.payouts {
        row(
            &mut out,
            [
                "payout",
                &p.id,
                &p.id,
                &p.merchant_id,
                &p.batch_id.to_string(),
                "",
                "",
                "",
                "",
                &time(p.created),
                &p.currency,
                &p.amount.to_string(),
                &p.fee.to_string(),
                &(p.amount - p.fee).to_string(),
                &p.transaction_count.to_string(),
            ],
        );
    }
    out
}

fn time(secs: i64) -> String {
    rfc3339(secs.max(0) as u64)
}

fn row<'a>(out: &mut String, fields: impl IntoIterator<Item = &'a str>) {
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        if f.contains([',', '"', '\r', '\n']) {
            let _ = write!(out, "\"{}\"", f.replace('"', "\"\""));
        } else {
            out.push_str(f);
        }
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_that_need_it_are_quoted() {
        let mut s = String::new();
        row(&mut s, ["a", "b,c", "say \"hi\"", ""]);
        assert_eq!(s, "a,\"b,c\",\"say \"\"hi\"\"\",\r\n");
    }
}

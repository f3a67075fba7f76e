//! Reconciliation reports: the day's JSON from the API and the CSV from the CLI
//! (`clearing-office report`) list the same transactions and payouts, and an unresolved
//! transaction the operator decides `debited` is paid out (and one decided
//! `not_debited` is not).

mod common;

use std::process::Command;

use common::{issuer_keys, make_batch, Office};
use purse::settlement::UnresolvedTx;
use purse::{Amount, CardId, KeyVersion, Nt, SamId, SamTxSeq};
use serde_json::json;

const SAM: &str = "5a000000000000c1";

fn report_cli(office: &Office, day: &str, merchant: &str, format: &str) -> String {
    let out = Command::new(common::bin())
        .args(["report", "--config"])
        .arg(&office.config)
        .args(["--day", day, "--merchant", merchant, "--format", format])
        .output()
        .expect("report");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[tokio::test]
async fn day_report_as_csv_and_json_with_a_debited_unresolved_transaction() {
    let office = Office::start("reports", 1 << 20).await;
    let cred = office.register("m1", SAM, 978, 1).await;
    let sam = SamId::from_hex(SAM).expect("sam");
    let mut batch = make_batch(&issuer_keys(), sam, 1, 0x7000, 1, 3);
    let unresolved = |seq: u32, card: u64, amount: u32| UnresolvedTx {
        kv: KeyVersion(1),
        card_id: CardId(card.to_be_bytes()),
        nt: Nt(4),
        sam_tx_seq: SamTxSeq(seq),
        unit_amount: Amount(amount),
    };
    batch.unresolved = vec![unresolved(10, 0x9001, 250), unresolved(11, 0x9002, 70)];
    let r = office
        .upload(&cred, &serde_json::to_vec(&batch).expect("json"))
        .await;
    assert_eq!(r.json["decision"], "accepted", "{r:?}");
    let batch_id = r.json["batch_id"].as_i64().expect("id");
    for (seq, decision) in [(10, "debited"), (11, "not_debited")] {
        let d = office
            .op(
                "POST",
                &format!("/v1/unresolved/{SAM}/{seq}/decision"),
                Some(json!({ "decision": decision })),
            )
            .await;
        assert!(d.status < 300, "{d:?}");
    }
    let day = r.json["received_at"].as_str().expect("date")[..10].to_string();

    // JSON from the API: 3 payments and 1 adjustment, the batch's payout and the debited one.
    let api = office
        .op(
            "GET",
            &format!("/v1/reports/days/{day}?merchant_id=m1"),
            None,
        )
        .await;
    assert_eq!(api.status, 200, "{api:?}");
    let kinds: Vec<&str> = api.json["balance_transactions"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| l["type"].as_str().expect("type"))
        .collect();
    assert_eq!(kinds, ["payment", "payment", "payment", "adjustment"]);
    let payouts = api.json["payouts"].as_array().expect("payouts");
    assert_eq!(payouts.len(), 2, "{payouts:?}");
    assert_eq!(payouts[0]["amount"], 300);
    assert_eq!(payouts[0]["id"], format!("po_{batch_id}"));
    assert_eq!(payouts[1]["amount"], 250);
    assert_eq!(payouts[1]["type"], "unresolved_debited");
    let listed = office.op("GET", "/v1/merchants/m1/payouts", None).await;
    let mut amounts: Vec<i64> = listed.json["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|p| p["amount"].as_i64().expect("amount"))
        .collect();
    amounts.sort();
    assert_eq!(amounts, [250, 300]);

    // CSV from the CLI: the same lines, each payment tied to its payout, sums that match.
    let csv = report_cli(&office, &day, "m1", "csv");
    let rows: Vec<Vec<&str>> = csv
        .split_terminator("\r\n")
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows[0].join(","), clearing_office::csv_report::HEADER);
    let col = |name: &str| rows[0].iter().position(|c| *c == name).expect(name);
    let (kind, gross, net, payout) = (col("type"), col("gross"), col("net"), col("payout_id"));
    assert_eq!(rows.len(), 1 + 4 + 2, "{csv}");
    for r in &rows[1..] {
        assert_eq!(r.len(), rows[0].len(), "{r:?}");
    }
    let sum = |po: &str, k: &str| -> i64 {
        rows[1..]
            .iter()
            .filter(|r| r[payout] == po && r[kind] == k)
            .map(|r| r[gross].parse::<i64>().expect("gross"))
            .sum()
    };
    let po = format!("po_{batch_id}");
    assert_eq!(sum(&po, "payment"), 300);
    assert_eq!(sum(&po, "payout"), 300);
    let po_unres = format!("po_unresolved_{SAM}_10");
    assert_eq!(sum(&po_unres, "adjustment"), 250);
    assert_eq!(sum(&po_unres, "payout"), 250);
    assert!(
        rows[1..].iter().all(|r| r[gross] == r[net]),
        "no fee: {csv}"
    );
    assert!(!csv.contains("_11"), "not_debited is not paid out: {csv}");

    // The CLI's JSON is the API's report.
    let cli_json: serde_json::Value =
        serde_json::from_str(&report_cli(&office, &day, "m1", "json")).expect("json");
    assert_eq!(cli_json, api.json);

    // Another merchant's report is empty but for the header; a malformed day is refused.
    assert_eq!(
        report_cli(&office, &day, "m2", "csv"),
        format!("{}\r\n", clearing_office::csv_report::HEADER)
    );
    let bad = Command::new(common::bin())
        .args(["report", "--config"])
        .arg(&office.config)
        .args(["--day", "2026-1-01"])
        .output()
        .expect("report");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("YYYY-MM-DD"));
}

//! The office over real HTTP on loopback, on SQLite (default) or the PostgreSQL server
//! of `CLEARING_TEST_PG_URL` (`scripts/test-clearing-pg`): uploads and their decisions,
//! idempotency, corrections, every section-7 rejection of the vectors, credentials,
//! limits, concurrent shops, a kill mid-upload, clone flags and the signed hotlist.

mod common;

use std::io::Write;
use std::net::TcpStream;

use common::{codes, issuer_keys, make_batch, vectors, Office};
use purse::SamId;
use serde_json::{json, Value};

const SAM_A: &str = "5a00000000000001";
const SAM_B: &str = "5a00000000000002";

fn sam(hex: &str) -> SamId {
    SamId::from_hex(hex).expect("sam id")
}

fn body(b: &purse::settlement::Batch) -> Vec<u8> {
    serde_json::to_vec(b).expect("batch json")
}

#[tokio::test]
async fn accept_resend_conflict_and_correction() {
    let office = Office::start("accept", 1 << 20).await;
    eprintln!("backend: {}", common::backend());
    let cred = office.register("m1", SAM_A, 978, 1).await;
    let keys = issuer_keys();
    let good = make_batch(&keys, sam(SAM_A), 1, 0x1000, 1, 5);

    // A forged TAC: rejected with E_TAC naming the record; nothing recorded of it.
    let mut forged = good.clone();
    forged.transactions[2].tac.0[0] ^= 1;
    let r = office.upload(&cred, &body(&forged)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["decision"], "rejected");
    // The TAC is part of each journal link, so J breaks with it.
    assert_eq!(
        codes(&r.json),
        ["E_JOURNAL".to_string(), "E_TAC".to_string()].into()
    );
    assert_eq!(r.json["problems"][0]["index"], 2);
    assert!(r.json.get("payout").is_none());
    // The same rejected body again: the same decision.
    let again = office.upload(&cred, &body(&forged)).await;
    assert_eq!(again.body, r.body);

    // The correction under the same close_seq is accepted, with the payout line.
    let r = office.upload(&cred, &body(&good)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["decision"], "accepted", "{}", r.json);
    assert_eq!(r.json["transaction_count"], 5);
    assert_eq!(
        r.json["payout"],
        json!({"merchant_id": "m1", "currency": "EUR", "gross": 500, "fee": 0, "net": 500})
    );

    // The answer was lost: the same batch again gets the same decision, byte for byte.
    let resent = office.upload(&cred, &body(&good)).await;
    assert_eq!(resent.status, 200);
    assert_eq!(resent.body, r.body);

    // Another body for the accepted close_seq: a conflict, whatever it differs in.
    let mut other = good.clone();
    other.created_at = "2026-11-25T00:00:00Z".into();
    let c = office.upload(&cred, &body(&other)).await;
    assert_eq!(c.status, 409, "{c:?}");
    assert_eq!(c.json["error"]["code"], "close_seq_conflict");

    // Operators see both decisions, the payout and the reconciliation report.
    let list = office.op("GET", "/v1/batches", None).await;
    let decisions: Vec<&str> = list.json["batches"]
        .as_array()
        .expect("list")
        .iter()
        .map(|b| b["decision"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(decisions, ["accepted", "rejected"]);
    let id = r.json["batch_id"].as_i64().expect("id");
    let report = office
        .op("GET", &format!("/v1/reports/batches/{id}"), None)
        .await;
    assert_eq!(report.status, 200, "{report:?}");
    assert_eq!(
        report.json["balance_transactions"].as_array().map(Vec::len),
        Some(5)
    );
    assert_eq!(report.json["payout"]["amount"], 500);
    let payouts = office.op("GET", "/v1/merchants/m1/payouts", None).await;
    assert_eq!(payouts.json["data"][0]["amount"], 500);
    let day = r.json["received_at"].as_str().expect("date")[..10].to_string();
    let daily = office
        .op(
            "GET",
            &format!("/v1/reports/days/{day}?merchant_id=m1"),
            None,
        )
        .await;
    assert_eq!(
        daily.json["payouts"].as_array().map(Vec::len),
        Some(1),
        "{daily:?}"
    );
    let problems = office
        .op(
            "GET",
            &format!("/v1/batches/{}", forged_id(&office).await),
            None,
        )
        .await;
    assert_eq!(problems.json["decision"]["problems"][0]["code"], "E_TAC");

    // Batch 2 follows.
    let next = make_batch(&keys, sam(SAM_A), 2, 0x1000, 2, 3);
    let r = office.upload(&cred, &body(&next)).await;
    assert_eq!(r.json["decision"], "accepted", "{}", r.json);
}

async fn forged_id(office: &Office) -> i64 {
    let list = office
        .op("GET", "/v1/batches?decision=rejected", None)
        .await;
    list.json["batches"][0]["batch_id"]
        .as_i64()
        .expect("rejected batch")
}

#[tokio::test]
async fn every_clearing_vector_case_through_the_api() {
    let v = vectors();
    for (i, case) in v["clearing"]["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .enumerate()
    {
        let office = Office::start("vectors", 1 << 20).await;
        office.import(&case["accepted_state"]);
        let b = &case["batch"];
        let sam_hex = b["sam_id"].as_str().expect("sam");
        let cred = office
            .register(
                "m",
                sam_hex,
                b["currency"].as_u64().expect("cur") as u16,
                b["key_version"].as_u64().expect("kv") as u8,
            )
            .await;
        let r = office.upload(&cred, b.to_string().as_bytes()).await;
        // A close_seq the imported state accepted already, with a body the office never
        // saw: a conflict (spec 7's E_CLOSE_SEQ, refused before any check).
        let imported_last = case["accepted_state"]["last_close_seq"][sam_hex]
            .as_u64()
            .unwrap_or(0);
        if imported_last >= b["close_seq"].as_u64().expect("close_seq") {
            assert_eq!(r.status, 409, "case {i}: {r:?}");
            continue;
        }
        assert_eq!(r.status, 200, "case {i}: {r:?}");
        let expected: std::collections::BTreeSet<String> = case["reference_problem_codes"]
            .as_array()
            .expect("codes")
            .iter()
            .map(|c| c.as_str().expect("code").to_string())
            .collect();
        assert_eq!(
            codes(&r.json),
            expected,
            "case {i}: {}",
            case["description"]
        );
        let decision = if expected.is_empty() {
            "accepted"
        } else {
            "rejected"
        };
        assert_eq!(r.json["decision"], decision, "case {i}");
    }
}

#[tokio::test]
async fn credentials_methods_and_paths() {
    let office = Office::start("auth", 1 << 20).await;
    let cred_a = office.register("m1", SAM_A, 978, 1).await;
    let cred_b = office.register("m2", SAM_B, 978, 1).await;
    let batch = body(&make_batch(&issuer_keys(), sam(SAM_A), 1, 0x2000, 1, 2));

    let missing = office
        .call("POST", "/v1/batches", None, Some(batch.clone()))
        .await;
    assert_eq!(missing.status, 401);
    assert_eq!(missing.headers["www-authenticate"], "Bearer realm=\"sam\"");
    assert_eq!(missing.json["error"]["code"], "credential_required");
    for wrong in [
        format!("{SAM_A}.{}", "0".repeat(64)),
        "garbage".to_string(),
        cred_a.replace(SAM_A, SAM_B),
    ] {
        let r = office.upload(&wrong, &batch).await;
        assert_eq!(r.status, 401, "{wrong}");
        assert_eq!(
            r.headers["www-authenticate"],
            "Bearer realm=\"sam\", error=\"invalid_token\""
        );
    }
    // An operator token is no SAM credential, and a SAM credential no operator token.
    assert_eq!(
        office.upload(common::OPERATOR_TOKEN, &batch).await.status,
        401
    );
    let r = office.call("GET", "/v1/batches", Some(&cred_a), None).await;
    assert_eq!(r.status, 401);
    assert!(r.headers["www-authenticate"]
        .to_str()
        .unwrap_or("")
        .contains("operator"));

    // SAM B's credential with SAM A's batch: forbidden, nothing recorded.
    let r = office.upload(&cred_b, &batch).await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.json["error"]["code"], "other_sam");
    let list = office.op("GET", "/v1/batches", None).await;
    assert_eq!(list.json["batches"], json!([]));

    // 405 with Allow, 404 in the error shape, strict operator bodies and queries.
    let r = office
        .call("DELETE", "/v1/batches", Some(&cred_a), None)
        .await;
    assert_eq!(r.status, 405);
    let allow = r.headers["allow"].to_str().unwrap_or("").to_string();
    assert!(allow.contains("POST") && allow.contains("GET"), "{allow}");
    assert_eq!(r.json["error"]["code"], "method_not_allowed");
    let r = office.call("GET", "/v1/nothing", None, None).await;
    assert_eq!(
        (r.status, r.json["error"]["code"].clone()),
        (404, json!("not_found"))
    );
    let r = office
        .op(
            "POST",
            "/v1/merchants",
            Some(json!({"id": "x", "name": "X", "extra": 1})),
        )
        .await;
    assert_eq!(
        (r.status, r.json["error"]["code"].clone()),
        (400, json!("invalid_request"))
    );
    let r = office.op("GET", "/v1/batches?bogus=1", None).await;
    assert_eq!(
        (r.status, r.json["error"]["code"].clone()),
        (400, json!("invalid_query"))
    );
    let r = office.op("POST", "/v1/sams", Some(json!({"sam_id": SAM_A, "merchant_id": "m1", "currency": 978, "key_version": 1, "card_key_versions": [1]}))).await;
    assert_eq!(r.status, 409);
    let r = office.op("POST", "/v1/sams", Some(json!({"sam_id": "5a00000000000009", "merchant_id": "m1", "currency": 978, "key_version": 7, "card_key_versions": [1]}))).await;
    assert_eq!(
        (r.status, r.json["error"]["code"].clone()),
        (400, json!("unknown_key_version"))
    );

    // The right credential works.
    let r = office.upload(&cred_a, &batch).await;
    assert_eq!(r.json["decision"], "accepted", "{r:?}");
}

#[tokio::test]
async fn malformed_and_oversized_bodies() {
    let office = Office::start("malformed", 4096).await;
    let cred = office.register("m1", SAM_A, 978, 1).await;
    let good = body(&make_batch(&issuer_keys(), sam(SAM_A), 1, 0x3000, 1, 2));
    let text = String::from_utf8(good.clone()).expect("utf8");
    for bad in [
        b"".to_vec(),
        b"not json".to_vec(),
        b"[]".to_vec(),
        text.as_bytes()[..text.len() - 1].to_vec(),
        format!("{text} trailing").into_bytes(),
        text.replace("\"close_seq\":1", "\"close_seq\":1,\"close_seq\":2")
            .into_bytes(),
        text.replace("\"close_seq\":1", "\"close_seq\":1.5")
            .into_bytes(),
        text.replace("\"nt\":1", "\"nt\":-1").into_bytes(),
        text.replace("\"nt\":1", "\"nt\":99999999999").into_bytes(),
    ] {
        let r = office.upload(&cred, &bad).await;
        assert_eq!(r.status, 400, "{}: {r:?}", String::from_utf8_lossy(&bad));
        assert_eq!(r.json["error"]["code"], "invalid_batch");
    }
    // A sum beyond 2^53 is the verifier's E_INT_RANGE.
    let big = text.replace("\"sum\":200", "\"sum\":9007199254740992");
    let r = office.upload(&cred, big.as_bytes()).await;
    assert!(codes(&r.json).contains("E_INT_RANGE"), "{r:?}");
    let huge = vec![b' '; 5000];
    let r = office.upload(&cred, &huge).await;
    assert_eq!(
        (r.status, r.json["error"]["code"].clone()),
        (413, json!("body_too_large"))
    );
    // Nothing of these was recorded but the E_INT_RANGE rejection; the batch still goes.
    let r = office.upload(&cred, &good).await;
    assert_eq!(r.json["decision"], "accepted", "{r:?}");
}

#[tokio::test]
async fn two_shops_upload_at_once() {
    let office = Office::start("concurrent", 64 << 20).await;
    let cred_a = office.register("m1", SAM_A, 978, 1).await;
    let cred_b = office.register("m2", SAM_B, 978, 1).await;
    let keys = issuer_keys();
    let a = body(&make_batch(&keys, sam(SAM_A), 1, 0x10_0000, 1, 3000));
    let b = body(&make_batch(&keys, sam(SAM_B), 1, 0x20_0000, 1, 3000));
    let (ra, rb) = tokio::join!(office.upload(&cred_a, &a), office.upload(&cred_b, &b));
    assert_eq!(ra.json["decision"], "accepted", "{ra:?}");
    assert_eq!(rb.json["decision"], "accepted", "{rb:?}");
    let day = ra.json["received_at"].as_str().expect("date")[..10].to_string();
    let daily = office
        .op("GET", &format!("/v1/reports/days/{day}"), None)
        .await;
    assert_eq!(
        daily.json["balance_transactions"].as_array().map(Vec::len),
        Some(6000)
    );
}

#[tokio::test]
async fn killed_mid_upload_records_nothing_half() {
    let mut office = Office::start("restart", 256 << 20).await;
    let cred = office.register("m1", SAM_A, 978, 1).await;
    let batch = body(&make_batch(
        &issuer_keys(),
        sam(SAM_A),
        1,
        0x30_0000,
        1,
        20_000,
    ));
    // Half the body sent, then the office is killed.
    let addr = office.url.trim_start_matches("http://").to_string();
    let mut s = TcpStream::connect(&addr).expect("connect");
    write!(
        s,
        "POST /v1/batches HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {cred}\r\ncontent-length: {}\r\n\r\n",
        batch.len()
    )
    .expect("head");
    s.write_all(&batch[..batch.len() / 2]).expect("half");
    // Wait until the office holds the upload in its spool (the condition, not a delay).
    let spool = office.dir.join("spool");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the upload never reached the spool"
        );
        std::thread::yield_now();
    }
    office.kill_and_restart();
    drop(s);
    assert_eq!(
        std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(9),
        0,
        "spool left-overs removed"
    );
    let list = office.op("GET", "/v1/batches", None).await;
    assert_eq!(list.json["batches"], json!([]), "nothing recorded");

    // Killed while the whole batch is being verified and stored: the old state or the
    // new one, never half of it.
    let upload = {
        let url = office.url.clone();
        let cred = cred.clone();
        let batch = batch.clone();
        tokio::spawn(async move {
            common::call(&url, "POST", "/v1/batches", Some(&cred), Some(batch)).await
        })
    };
    while std::fs::read_dir(&spool).map(|d| d.count()).unwrap_or(0) == 0 {
        tokio::task::yield_now().await;
    }
    office.kill_and_restart();
    let _ = upload.await;
    let list = office.op("GET", "/v1/batches", None).await;
    let n = list.json["batches"].as_array().map(Vec::len).unwrap_or(0);
    if n == 1 {
        assert_eq!(
            list.json["batches"][0]["transaction_count"], 20_000,
            "all or nothing"
        );
    } else {
        assert_eq!(n, 0);
    }
    let r = office.upload(&cred, &batch).await;
    assert_eq!(r.json["decision"], "accepted", "{r:?}");
    let report = office
        .op(
            "GET",
            &format!("/v1/reports/batches/{}", r.json["batch_id"]),
            None,
        )
        .await;
    assert_eq!(
        report.json["balance_transactions"].as_array().map(Vec::len),
        Some(20_000)
    );
}

#[tokio::test]
async fn clones_are_flagged_and_the_hotlist_is_signed() {
    let office = Office::start("clones", 1 << 20).await;
    let cred_a = office.register("m1", SAM_A, 978, 1).await;
    let cred_b = office.register("m2", SAM_B, 978, 1).await;
    let keys = issuer_keys();
    // Cards 0x4000.. spend NT 1 at SAM A (balance 9900 after).
    let a1 = make_batch(&keys, sam(SAM_A), 1, 0x4000, 1, 3);
    assert_eq!(
        office.upload(&cred_a, &body(&a1)).await.json["decision"],
        "accepted"
    );
    // Card 0x4000 (restored from an old state) claims NT 1 again at SAM B: rejected,
    // and the card flagged.
    let b1 = make_batch(&keys, sam(SAM_B), 1, 0x4000, 1, 1);
    let r = office.upload(&cred_b, &body(&b1)).await;
    assert_eq!(codes(&r.json), ["E_DUPLICATE".to_string()].into(), "{r:?}");
    // Card 0x4001's NT 2 at SAM B says balance 9850 where 9900 - 100 = 9800: a break.
    let mut b2 = make_batch(&keys, sam(SAM_B), 1, 0x4001, 2, 1);
    b2.transactions[0].balance_after = purse::Amount(9850);
    let b2 = resealed(&keys, b2);
    assert_eq!(
        office.upload(&cred_b, &body(&b2)).await.json["decision"],
        "accepted"
    );

    let flags = office.op("GET", "/v1/flags", None).await;
    let reasons: Vec<(String, String)> = flags.json["flags"]
        .as_array()
        .expect("flags")
        .iter()
        .map(|f| {
            (
                f["card_id"].as_str().unwrap_or("").into(),
                f["reason"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        [
            (
                "0000000000004000".to_string(),
                "nt_claimed_twice".to_string()
            ),
            ("0000000000004001".to_string(), "balance_break".to_string())
        ]
    );
    let r = office.call("GET", "/v1/hotlist", None, None).await;
    assert_eq!(r.status, 200);
    let list: clearing_office::hotlist::Hotlist =
        serde_json::from_value(r.json.clone()).expect("hotlist");
    assert_eq!(list.cards, ["0000000000004000", "0000000000004001"]);
    assert!(clearing_office::hotlist::verify(&office.public_key, &list));
    let mut altered = list.clone();
    altered.cards.pop();
    assert!(!clearing_office::hotlist::verify(
        &office.public_key,
        &altered
    ));
}

/// Recomputes a test batch's TACs and seal after an edit.
fn resealed(
    keys: &purse::keys::IssuerKeys,
    b: purse::settlement::Batch,
) -> purse::settlement::Batch {
    let mk = keys.get(purse::KeyVersion(1)).expect("kv");
    let txs = b
        .transactions
        .into_iter()
        .map(|mut t| {
            let kt = purse::macs::proof_key(&mk.k_tac(t.card_id), t.card_id, t.nt);
            t.tac = purse::macs::TacInput::of_record(t.card_id, &t.record(b.sam_id), b.currency)
                .mac(&kt);
            t
        })
        .collect();
    purse::settlement::seal(purse::settlement::CloseInput {
        sam_id: b.sam_id,
        key_version: b.key_version,
        k_sam: &mk.k_sam(b.sam_id),
        close_seq: b.close_seq,
        currency: b.currency,
        created_at: b.created_at,
        transactions: txs,
        unresolved: b.unresolved,
    })
}

#[tokio::test]
async fn sqlite_is_one_wal_file_with_full_sync() {
    let dir = common::temp_dir("pragmas");
    let db = clearing_office::db::Db::open(&format!("sqlite:{}", dir.join("o.db").display()))
        .await
        .expect("open");
    assert_eq!(
        db.sqlite_settings().await.expect("pragmas"),
        ("wal".to_string(), 2)
    );
    drop(db);
    // Migrations run again at every start, idempotently.
    clearing_office::db::Db::open(&format!("sqlite:{}", dir.join("o.db").display()))
        .await
        .expect("reopen");
    let _ = std::fs::remove_dir_all(dir);
    let _: Value = json!(null);
}

//! Daily settlement in process, on the test clock: the batch file `settle` writes is
//! spec section 6 exactly (the JSON Schema and the clearing office's own checks accept
//! it), unresolved payments are listed and not summed, a second run the same day closes
//! nothing and leaves the file intact, and an answer that is not the clearing office's
//! decision (a 5xx, a captive portal's 200) delivers nothing: the batch is tried again,
//! in order. (Uploads to the real office: `clearing_upload.rs`.)

mod support;

use std::path::PathBuf;
use std::time::Duration;

use purse::clearing::{parse_batch, ClearingState};
use purse::settlement::Batch;
use serde_json::{json, Value};
use shop_plugin::outbound::Outbound;
use shop_plugin::settlement::batches;
use shop_plugin::settlement::office::OfficeLink;
use shop_plugin::settlement::Settler;
use support::receiver::Receiver;
use support::{issuer, Plugin, TestCard, T0};

const DAY: i64 = 86_400;

fn settler(p: &Plugin, clearing_url: Option<String>) -> Settler {
    Settler {
        outbox: p.dir.join("outbox"),
        office: clearing_url.map(|url| OfficeLink {
            url,
            credentials: vec!["5a00000000000007.00".to_string().into()],
            attempts: 2,
            first_delay: Duration::from_millis(10),
        }),
        client: Outbound::new(None, Duration::from_secs(5)).expect("client"),
        auto_correct: false,
    }
}

fn schema() -> jsonschema::Validator {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schema/settlement.schema.json");
    let text = std::fs::read_to_string(&path).expect("the schema file");
    let schema: Value = serde_json::from_str(&text).expect("schema JSON");
    jsonschema::draft202012::new(&schema).expect("a valid 2020-12 schema")
}

async fn stored_batches(p: &Plugin) -> Vec<batches::BatchRow> {
    p.app
        .engine
        .store()
        .read(batches::list)
        .await
        .expect("stored batches")
}

fn read_batch(path: &str) -> (Vec<u8>, Batch) {
    let bytes = std::fs::read(path).expect("the batch file");
    let batch = parse_batch(std::str::from_utf8(&bytes).expect("utf-8")).expect("a batch");
    (bytes, batch)
}

#[tokio::test]
async fn the_batch_file_is_spec_6_and_the_clearing_office_accepts_it() {
    let p = Plugin::start("settle-clear").await;
    let mut alice = TestCard::new(31, 10_000);
    let mut bob = TestCard::new(32, 10_000);
    p.pay(&mut alice, 1250).await;
    p.pay(&mut bob, 480).await;
    // A DEBIT whose answer is lost: in flight at the close.
    let mut carol = TestCard::new(33, 10_000);
    let (lost, secret, debit) = p.authorize(&mut carol, 999).await;
    carol.run(&debit);
    let (s, v) = p.answer(&lost, &secret, None).await;
    assert_eq!(s, 200, "{v}");
    let lost_seq = p.payment(&lost).await["sam_tx_seq"].clone();

    let mut report = settler(&p, None)
        .run(&p.app.engine, false)
        .await
        .expect("settle");
    let closed = report.closed.pop().expect("a period closed");
    assert_eq!(
        (
            closed.close_seq,
            closed.count,
            closed.sum,
            closed.unresolved
        ),
        (1, 2, 1730, 1)
    );
    assert!(
        closed
            .file
            .ends_with("outbox/batch-5a00000000000007-1.json"),
        "{}",
        closed.file
    );

    let (bytes, batch) = read_batch(&closed.file);
    // The file is the batch the engine stored with the close, as serde writes it.
    let stored = stored_batches(&p).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].file.as_deref(), Some(closed.file.as_str()));
    let from_db: Batch = serde_json::from_str(&stored[0].body).expect("stored batch");
    assert_eq!(batch, from_db);
    assert_eq!(bytes, batches::file_bytes(&from_db).expect("bytes"));

    assert_eq!(batch.unresolved.len(), 1);
    assert_eq!(json!(batch.unresolved[0].sam_tx_seq.0), lost_seq);
    assert!(
        batch
            .transactions
            .iter()
            .all(|t| json!(t.sam_tx_seq.0) != lost_seq),
        "the unresolved one is listed, not summed"
    );

    let doc: Value = serde_json::from_slice(&bytes).expect("JSON");
    let v = schema();
    if let Err(e) = v.validate(&doc) {
        panic!("the schema refuses a real batch: {e}");
    }

    let mut office = ClearingState::default();
    office
        .clear(&batch, &issuer())
        .unwrap_or_else(|p| panic!("the clearing office refused the batch: {p:?}"));
    assert_eq!(office.last_close_seq(batch.sam_id).0, 1);
}

#[tokio::test]
async fn the_schema_refuses_what_spec_6_forbids() {
    let p = Plugin::start("settle-schema").await;
    p.pay(&mut TestCard::new(34, 5000), 300).await;
    let closed = settler(&p, None)
        .run(&p.app.engine, false)
        .await
        .expect("settle")
        .closed
        .pop()
        .expect("closed");
    let doc: Value =
        serde_json::from_slice(&std::fs::read(&closed.file).expect("file")).expect("JSON");
    let v = schema();
    assert!(v.is_valid(&doc));
    // (what, the field as a JSON pointer, its new value or None to remove it)
    let broken = [
        ("upper-case hex", "/sam_id", Some(json!("5A00000000000007"))),
        ("a short MAC", "/totals/mac", Some(json!("00"))),
        (
            "a sum of 2^53",
            "/totals/sum",
            Some(json!(9_007_199_254_740_992u64)),
        ),
        (
            "a negative amount",
            "/transactions/0/total",
            Some(json!(-1)),
        ),
        (
            "a fraction",
            "/transactions/0/unit_amount",
            Some(json!(1.5)),
        ),
        ("mode 3", "/transactions/0/mode", Some(json!(3))),
        ("close_seq 0", "/close_seq", Some(json!(0))),
        (
            "another format",
            "/format",
            Some(json!("purse-settlement/2")),
        ),
        ("an unknown field", "/extra", Some(json!(true))),
        ("no totals", "/totals", None),
    ];
    for (what, pointer, value) in broken {
        let mut d = doc.clone();
        let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
        let obj = d
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .expect("an object");
        match value {
            Some(new) => obj.insert(key.to_string(), new),
            None => obj.remove(key),
        };
        assert!(!v.is_valid(&d), "the schema accepts a batch with {what}");
    }
}

#[tokio::test]
async fn settling_twice_a_day_closes_once_and_keeps_the_file_intact() {
    let p = Plugin::start("settle-twice").await;
    let s = settler(&p, None);
    p.pay(&mut TestCard::new(35, 10_000), 100).await;
    p.set_time(T0 + 3600);
    let first = s
        .run(&p.app.engine, false)
        .await
        .expect("settle")
        .closed
        .pop()
        .expect("closed");
    let (bytes, batch1) = read_batch(&first.file);

    // Later the same UTC day: nothing closes, the file is untouched.
    p.pay(&mut TestCard::new(36, 10_000), 200).await;
    p.set_time(T0 + 7200);
    let again = s.run(&p.app.engine, false).await.expect("settle again");
    assert!(again.closed.is_empty());
    assert!(
        again
            .not_closed
            .as_deref()
            .unwrap_or("")
            .contains("period 1"),
        "{again:?}"
    );
    assert!(again.rewritten.is_empty());
    assert_eq!(std::fs::read(&first.file).expect("file"), bytes, "intact");
    let rows = stored_batches(&p).await;
    assert_eq!(rows.len(), 1, "no second period");

    // A lost file is written again, identical; still nothing closes.
    std::fs::remove_file(&first.file).expect("rm");
    let healed = s.run(&p.app.engine, false).await.expect("settle");
    assert_eq!(
        (healed.closed.is_empty(), healed.rewritten),
        (true, vec![first.file.clone()])
    );
    assert_eq!(std::fs::read(&first.file).expect("file"), bytes);

    // The next day closes period 2 with what was paid since; --force a third today.
    p.set_time(T0 + DAY);
    let second = s
        .run(&p.app.engine, false)
        .await
        .expect("settle")
        .closed
        .pop()
        .expect("closed");
    let forced = s
        .run(&p.app.engine, true)
        .await
        .expect("settle")
        .closed
        .pop()
        .expect("forced");
    assert_eq!(
        (second.close_seq, second.sum, forced.close_seq, forced.count),
        (2, 200, 3, 0)
    );

    // No period skipped or repeated: the office takes 1, 2, 3 in order.
    let mut office = ClearingState::default();
    for f in [&first.file, &second.file, &forced.file] {
        let (_, b) = read_batch(f);
        office
            .clear(&b, &issuer())
            .unwrap_or_else(|e| panic!("refused {f}: {e:?}"));
    }
    assert_eq!(batch1.close_seq.0, 1);
}

#[tokio::test]
async fn an_answer_that_is_not_the_offices_decision_delivers_nothing() {
    let p = Plugin::start("settle-post").await;
    // A 503, then 200s with `{}` (what a captive portal or a proxy may answer).
    let mut office = Receiver::start(&[503]).await;
    let s = settler(&p, Some(office.url("")));
    p.pay(&mut TestCard::new(37, 10_000), 100).await;

    let r1 = s.run(&p.app.engine, false).await.expect("settle");
    let c1 = r1.closed.clone().pop().expect("closed");
    assert!(r1.posted.is_empty());
    let err = r1.post_error.expect("not delivered");
    assert!(
        err.starts_with("batch 1 of SAM 5a00000000000007: HTTP 200 but not the office's decision"),
        "{err}"
    );
    // Two tries within the run, with the credential, the batch file's bytes.
    for _ in 0..2 {
        let got = office.next().await;
        assert_eq!(got.path, "/v1/batches");
        assert_eq!(got.header("authorization"), "Bearer 5a00000000000007.00");
        assert_eq!(got.body.as_ref(), std::fs::read(&c1.file).expect("file"));
    }
    assert!(office.try_next().is_none());

    // The next day: batch 1 again first (still not delivered), and batch 2 waits.
    p.set_time(T0 + DAY);
    let r2 = s.run(&p.app.engine, false).await.expect("settle");
    assert!(r2.posted.is_empty() && r2.post_error.is_some());
    for _ in 0..2 {
        assert_eq!(office.next().await.json()["close_seq"], 1);
    }
    let rows = stored_batches(&p).await;
    assert_eq!(rows.len(), 2);
    assert!(rows
        .iter()
        .all(|r| r.posted_at.is_none() && r.decision.is_none()));
    assert_eq!((rows[0].attempts, rows[1].attempts), (4, 0));
}

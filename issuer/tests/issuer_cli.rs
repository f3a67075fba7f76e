//! The `purse-issuer` binary end to end, in a temporary directory: key, SAM key, SAM card
//! and card files with their modes, loads, `card show` without keys, and `clear` on the vectors'
//! settlement_close_1 batch (accepted once, then rejected; a tampered copy rejected).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use purse::card::CardState;
use purse::keys::{IssuerKeys, SamKeys};
use purse::sam_applet::SamState;
use purse::KeyVersion;
use serde_json::{json, Value};

/// A fresh directory under the system temp dir, removed when the test passes.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("purse-issuer-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

fn run(dir: &TempDir, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_purse-issuer"))
        .current_dir(&dir.0)
        .args(args)
        .output()
        .expect("run purse-issuer")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(dir: &TempDir, args: &[&str]) -> String {
    let o = run(dir, args);
    assert!(o.status.success(), "{args:?}: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn fails(dir: &TempDir, args: &[&str]) -> (i32, String) {
    let o = run(dir, args);
    assert!(!o.status.success(), "{args:?} succeeded: {}", text(&o));
    (o.status.code().unwrap_or(-1), text(&o))
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../purse/tests/data/purse-v1.json"
    );
    serde_json::from_str(&fs::read_to_string(path).expect("vectors")).expect("vectors JSON")
}

fn write_private(p: &Path, s: &str) {
    fs::write(p, s).expect("write");
    fs::set_permissions(p, fs::Permissions::from_mode(0o600)).expect("chmod");
}

#[test]
fn keys_sam_and_cards() {
    let d = TempDir::new("keys");
    let keys = d.path("issuer-keys.json");
    ok(
        &d,
        &["keys", "add", "--keys", "issuer-keys.json", "--kv", "1"],
    );
    assert_eq!(mode(&keys), 0o600);
    let v1 = fs::read_to_string(&keys).expect("keys");

    // An existing key version is never replaced; another one is added beside it.
    let (_, e) = fails(
        &d,
        &["keys", "add", "--keys", "issuer-keys.json", "--kv", "1"],
    );
    assert!(e.contains("already holds key version 1"), "{e}");
    assert_eq!(fs::read_to_string(&keys).expect("keys"), v1);
    ok(
        &d,
        &["keys", "add", "--keys", "issuer-keys.json", "--kv", "2"],
    );
    let before = IssuerKeys::from_json(&v1).expect("v1 file");
    let after = IssuerKeys::from_json(&fs::read_to_string(&keys).expect("keys")).expect("keys");
    assert_eq!(after.versions.len(), 2);
    let (b1, a1) = (
        before.get(KeyVersion(1)).expect("kv1"),
        after.get(KeyVersion(1)).expect("kv1"),
    );
    assert!(b1.mk_pur == a1.mk_pur && b1.mk_tac == a1.mk_tac && b1.mk_sam == a1.mk_sam);
    let a2 = after.get(KeyVersion(2)).expect("kv2");
    assert!(a2.mk_pur != a1.mk_pur && a2.mk_tac != a2.mk_sam);
    assert_eq!(
        ok(&d, &["keys", "list", "--keys", "issuer-keys.json"]).trim(),
        "1, 2"
    );

    let sam_args = [
        "sam",
        "issue",
        "--keys",
        "issuer-keys.json",
        "--sam-id",
        "5a00000000000001",
        "--currency",
        "EUR",
        "--key-version",
        "1",
        "--accept",
        "1,2",
        "--out",
        "sam.json",
    ];
    ok(&d, &sam_args);
    assert_eq!(mode(&d.path("sam.json")), 0o600);
    let sam = SamKeys::from_json(&fs::read_to_string(d.path("sam.json")).expect("sam"))
        .expect("sam keys");
    assert_eq!(sam.k_sam, a1.k_sam(sam.sam_id));
    assert_eq!(sam.mk_pur.len(), 2);
    fails(&d, &sam_args);

    // A SAM card: the same keys, its own K_CTX, fresh counters; never replaced silently.
    let mut card_of_sam = sam_args.to_vec();
    card_of_sam[1] = "issue-card";
    *card_of_sam.last_mut().expect("--out value") = "sam-card.json";
    let out = ok(&d, &card_of_sam);
    assert!(out.contains("wrote SAM card 5a00000000000001"), "{out}");
    assert_eq!(mode(&d.path("sam-card.json")), 0o600);
    let sam_card = SamState::from_json(&fs::read_to_string(d.path("sam-card.json")).expect("card"))
        .expect("SAM card");
    assert_eq!(sam_card.keys.k_sam, sam.k_sam);
    assert_eq!(sam_card.keys.mk_pur, sam.mk_pur);
    assert_eq!((sam_card.next_tx_seq.0, sam_card.blocked), (1, false));
    let (_, e) = fails(&d, &card_of_sam);
    assert!(e.contains("--force"), "{e}");
    card_of_sam.push("--force");
    ok(&d, &card_of_sam);
    let again = SamState::from_json(&fs::read_to_string(d.path("sam-card.json")).expect("card"))
        .expect("SAM card");
    assert!(again.k_ctx != sam_card.k_ctx, "K_CTX is drawn afresh");
    for k in [&sam_card.k_ctx, &sam.k_sam] {
        assert!(!out.contains(&k.expose_hex()), "issue-card printed a key");
    }

    let card_args = [
        "card",
        "issue",
        "--keys",
        "issuer-keys.json",
        "--card-id",
        "1000000000000001",
        "--kv",
        "2",
        "--currency",
        "978",
        "--balance",
        "10000",
        "--out",
        "card.json",
    ];
    ok(&d, &card_args);
    let card = d.path("card.json");
    assert_eq!(mode(&card), 0o600);
    let state = CardState::from_json(&fs::read_to_string(&card).expect("card")).expect("card");
    assert_eq!(state.k_tac, a2.k_tac(state.card_id));
    assert_eq!(state.balance.0, 10000);
    let (_, e) = fails(&d, &card_args);
    assert!(e.contains("--force"), "{e}");
    let mut forced = card_args.to_vec();
    forced.push("--force");
    ok(&d, &forced);

    // Loads: checked against the card's 4-byte balance, nothing changes on refusal.
    let out = ok(
        &d,
        &["card", "load", "--card", "card.json", "--amount", "250"],
    );
    assert!(out.contains("100.00 EUR -> 102.50 EUR"), "{out}");
    let (_, e) = fails(
        &d,
        &[
            "card",
            "load",
            "--card",
            "card.json",
            "--amount",
            "4294967295",
        ],
    );
    assert!(e.contains("nothing was loaded"), "{e}");
    fails(
        &d,
        &[
            "card",
            "load",
            "--card",
            "card.json",
            "--amount",
            "4294967296",
        ],
    );
    let state = CardState::from_json(&fs::read_to_string(&card).expect("card")).expect("card");
    assert_eq!(state.balance.0, 10250);
    assert_eq!(mode(&card), 0o600);

    let shown = ok(&d, &["card", "show", "--card", "card.json"]);
    assert!(shown.contains("102.50 EUR"), "{shown}");
    for k in [&state.k_pur, &state.k_tac, &a2.mk_pur, &a2.mk_tac] {
        assert!(!shown.contains(&k.expose_hex()), "show printed a key");
    }

    // A key file others can read is refused, naming the fix.
    fs::set_permissions(&keys, fs::Permissions::from_mode(0o644)).expect("chmod");
    let (code, e) = fails(&d, &["keys", "list", "--keys", "issuer-keys.json"]);
    assert_eq!(code, 2);
    assert!(
        e.contains("accessible by group or others") && e.contains("chmod 600"),
        "{e}"
    );
    let (_, e) = fails(&d, &forced);
    assert!(e.contains("chmod 600"), "{e}");
    fs::set_permissions(&card, fs::Permissions::from_mode(0o644)).expect("chmod");
    fails(&d, &["card", "show", "--card", "card.json"]);
}

#[test]
fn show_decodes_the_log_of_a_vector_card() {
    let v = vectors();
    let d = TempDir::new("show");
    let case = v["scenario"]["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["name"] == "time_cycle_3_ticks")
        .expect("case");
    let after = &case["card_after"];
    write_private(&d.path("a.json"), &after.to_string());
    let shown = ok(&d, &["card", "show", "--card", "a.json"]);
    assert!(shown.contains("79.50 EUR"), "{shown}");
    assert!(shown.contains("2 record(s)"), "{shown}");
    // NT 2: time-cycle at SAM_TxSeq 2, 4 units of 2.00 EUR, balance after 79.50 EUR.
    let line = shown
        .lines()
        .find(|l| l.contains("time-cycle"))
        .expect("time-cycle line");
    for part in [
        "5a00000000000001",
        "2026-",
        "2.00 EUR",
        "8.00 EUR",
        "79.50 EUR",
    ] {
        assert!(line.contains(part), "{part} missing: {line}");
    }
    for k in ["k_pur", "k_tac"] {
        let hex = after[k].as_str().expect("key hex");
        assert!(!shown.contains(hex), "show printed {k}");
    }
}

#[test]
fn clear_accepts_batch_1_once_and_rejects_tampering() {
    let v = vectors();
    let d = TempDir::new("clear");
    let keys = json!({
        "format": "purse-issuer-keys/1",
        "key_versions": v["clearing"]["issuer_keys"],
    });
    write_private(&d.path("keys.json"), &keys.to_string());
    let batch = v["scenario"]["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["name"] == "settlement_close_1")
        .expect("settlement_close_1")["batch"]
        .clone();
    fs::write(d.path("batch1.json"), batch.to_string()).expect("batch");
    let clear = |state: &str, file: &str| {
        run(
            &d,
            &["clear", "--keys", "keys.json", "--state", state, file],
        )
    };

    let o = clear("state.json", "batch1.json");
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.starts_with("accepted: SAM 5a00000000000001 close_seq 1: 5 transaction(s), 29.00 EUR"),
        "{out}"
    );
    let state = d.path("state.json");
    assert_eq!(mode(&state), 0o600);
    let recorded = fs::read(&state).expect("state");

    // The same batch again: close_seq does not follow, and every record is a duplicate.
    let o = clear("state.json", "batch1.json");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.lines().any(|l| l.starts_with("E_CLOSE_SEQ: ")), "{out}");
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("E_DUPLICATE: "))
            .count(),
        5,
        "{out}"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("rejected"));
    assert_eq!(fs::read(&state).expect("state"), recorded, "state changed");

    // A tampered copy on a fresh office: rejected, with every problem, state not created.
    let mut tampered = batch.clone();
    tampered["transactions"][0]["total"] = json!(125);
    fs::write(d.path("tampered.json"), tampered.to_string()).expect("batch");
    let o = clear("fresh.json", "tampered.json");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for code in ["E_JOURNAL", "E_SUM", "E_TAC", "E_TOTAL"] {
        assert!(
            out.lines().any(|l| l.starts_with(code)),
            "{code} missing: {out}"
        );
    }
    assert!(
        out.contains("transactions[0] (sam_tx_seq 1, card 1000000000000001, nt 1)"),
        "{out}"
    );
    assert!(!d.path("fresh.json").exists());

    // A sum that JSON cannot hold exactly is refused before anything else.
    let mut huge = batch.clone();
    huge["totals"]["sum"] = json!(1u64 << 53);
    fs::write(d.path("huge.json"), huge.to_string()).expect("batch");
    let o = clear("fresh.json", "huge.json");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("E_INT_RANGE: totals.sum"));

    // A dry run of batch 1 on a fresh office records nothing.
    let o = run(
        &d,
        &[
            "clear",
            "--keys",
            "keys.json",
            "--state",
            "fresh.json",
            "--dry-run",
            "batch1.json",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(!d.path("fresh.json").exists());
}

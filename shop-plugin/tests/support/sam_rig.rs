//! A shop on a SAM card in its reader, for fault tests: the `sam-emulator` in vpcd slot
//! "Virtual PCD 00 00" (killed, pulled, respawned, its card file restored), the real
//! `shop-plugin serve` over it as a child process, purse cards in process personalised
//! from the same test issuer keys as the SAM, and the close checked end to end by
//! `shop-plugin settle` and the issuer's `purse-issuer clear`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use purse::clearing::parse_batch;
use purse::settlement::Batch;
use purse::{Amount, CardId, SamId};
use serde_json::{json, Value};
use testkit::{
    new_card_state, new_sam_card_state, pcsc_context, test_issuer_keys, wait_absent, wait_present,
    write_sam_card, Emulator, SlotLock, TestDir, SLOT_0,
};

use super::server::{run, write_config, write_private, Server};
use super::{emulator_bin, Http, TestCard};

/// What every card of these tests holds at the start.
pub const START: u32 = 10_000;

/// The test SAM `5a0000000000fa<n>`.
pub fn sam_id(n: u8) -> SamId {
    SamId([0x5A, 0, 0, 0, 0, 0, 0xFA, n])
}

/// The SAM card's file in the shop's directory (the emulator's chip memory).
const SAM_FILE: &str = "sam-card.json";

/// How long a supervisor goes on restarting a service that exits at once after a crash.
const RESTART_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

/// A shop directory whose SAM card sits in slot 0, and that SAM's emulator.
pub struct SamRig {
    /// `None` while the SAM is killed or its process not yet respawned.
    pub sam: Option<Emulator>,
    pub dir: TestDir,
    _lock: SlotLock,
}

impl SamRig {
    /// Takes slot 0, personalises a SAM card `sam_id` from the test issuer keys, plugs
    /// it in, and lays out a plugin directory whose config names that reader.
    pub fn new(name: &str, sam_id: SamId) -> SamRig {
        let lock = SlotLock::acquire(SLOT_0);
        let dir = TestDir::new(name);
        write_sam_card(&dir.join(SAM_FILE), &new_sam_card_state(sam_id));
        // The shared layout, then the SAM named by its reader instead of in process.
        let config = write_config(dir.path());
        let text = std::fs::read_to_string(&config).expect("config");
        let text = text.replace(
            &format!("in_process_card = \"{SAM_FILE}\""),
            &format!("readers = [\"{}\"]", SLOT_0.reader),
        );
        assert!(text.contains("readers = ["), "{text}");
        std::fs::write(&config, text).expect("config");
        let mut rig = SamRig {
            sam: None,
            dir,
            _lock: lock,
        };
        rig.spawn_sam();
        rig
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join("shop-plugin.toml")
    }

    pub fn sam_file(&self) -> PathBuf {
        self.dir.join(SAM_FILE)
    }

    /// Starts the SAM emulator over its card file and waits for pcscd to see it.
    pub fn spawn_sam(&mut self) {
        assert!(self.sam.is_none(), "a SAM emulator is already running");
        let emu = Emulator::spawn(&emulator_bin("sam-emulator"), &self._lock, &self.sam_file());
        wait_present(&pcsc_context(), SLOT_0.reader);
        self.sam = Some(emu);
    }

    /// `kill -9` of the SAM emulator (its card leaves the reader as with a power cut).
    pub fn kill_sam(&mut self) {
        self.sam.take().expect("a running SAM emulator").kill();
    }

    fn emu(&self) -> &Emulator {
        self.sam.as_ref().expect("a running SAM emulator")
    }

    /// Takes the SAM card out of its reader (the process keeps running).
    pub fn remove_sam(&self) {
        self.emu().control("remove");
        wait_absent(&pcsc_context(), SLOT_0.reader);
    }

    /// Puts the SAM card back (after [`SamRig::remove_sam`] or a pull).
    pub fn insert_sam(&self) {
        // A pulled card may still be registered as present: wait for pcscd to see it go.
        wait_absent(&pcsc_context(), SLOT_0.reader);
        self.emu().control("insert");
        wait_present(&pcsc_context(), SLOT_0.reader);
    }

    /// On the SAM's next command with `ins`: leave the reader, before (`after = false`)
    /// or after processing it (its state persisted, its answer lost).
    pub fn pull_sam(&self, ins: u8, after: bool) {
        let what = if after { "pull-after" } else { "pull-before" };
        self.emu().control(&format!("{what} {ins:02X}"));
    }

    /// One number of the SAM emulator's `status` (e.g. `next_tx_seq`, `period_sum`).
    pub fn sam_status(&self, key: &str) -> u64 {
        let v = self.emu().status_value(key);
        v.parse()
            .unwrap_or_else(|_| panic!("{key}={v} is not a number"))
    }

    /// One word of the SAM emulator's `status`, as it is (e.g. `blocked`).
    pub fn emu_status_word(&self, key: &str) -> String {
        self.emu().status_value(key)
    }

    /// Copies the SAM card's persistent state (card file and journal) aside.
    pub fn backup_sam(&self, tag: &str) {
        for (from, to) in self.sam_files(tag) {
            if from.exists() {
                std::fs::copy(&from, &to).expect("backup of the SAM card");
            }
        }
    }

    /// Puts a backup made by [`SamRig::backup_sam`] back (the SAM must be killed).
    pub fn restore_sam(&self, tag: &str) {
        assert!(self.sam.is_none(), "kill the SAM emulator before restoring");
        for (live, saved) in self.sam_files(tag) {
            let _ = std::fs::remove_file(&live);
            if saved.exists() {
                std::fs::copy(&saved, &live).expect("restore of the SAM card");
            }
        }
    }

    /// (live file, backup) of the card file and of its journal.
    fn sam_files(&self, tag: &str) -> [(PathBuf, PathBuf); 2] {
        let card = self.sam_file();
        // The emulator's journal: `<card file>.journal` beside it.
        let mut journal = card.clone().into_os_string();
        journal.push(".journal");
        let journal = PathBuf::from(journal);
        let saved = |p: &Path| {
            let mut name = p.file_name().expect("name").to_os_string();
            name.push(format!(".{tag}"));
            p.with_file_name(name)
        };
        let (sc, sj) = (saved(&card), saved(&journal));
        [(card, sc), (journal, sj)]
    }

    pub fn start_plugin(&self) -> Server {
        Server::start(self.path())
    }

    /// Starts the plugin again after a `kill -9`, as a supervisor restarting a failed
    /// service would: pcscd may not have released the dead process's exclusive handle on
    /// the SAM yet (SCARD_E_SHARING_VIOLATION), and `serve` then exits at once; it is
    /// started again until [`RESTART_WINDOW`] has passed. Returns the server and how
    /// many starts failed (see `a_restart_right_after_kill_9_finds_its_sam` in
    /// sam_faults_found.rs).
    pub fn restart_plugin(&self) -> (Server, u32) {
        let dir = self.path().to_path_buf();
        let deadline = std::time::Instant::now() + RESTART_WINDOW;
        let mut failed = 0;
        while std::time::Instant::now() < deadline {
            match std::panic::catch_unwind(|| Server::start(&dir)) {
                Ok(server) => return (server, failed),
                Err(_) => failed += 1,
            }
        }
        panic!("shop-plugin serve did not come back within {RESTART_WINDOW:?} ({failed} starts)");
    }

    /// `shop-plugin settle --force` (through the running server's admin socket when one
    /// runs): its output.
    pub async fn try_settle(&self) -> std::process::Output {
        run(&self.config(), &["settle", "--force"]).await
    }

    /// A settle that must succeed: the batch it closed.
    pub async fn settle(&self) -> (PathBuf, Batch) {
        closed_batch(&self.try_settle().await)
    }

    /// `purse-issuer clear` of a batch file with the test issuer keys and a clearing
    /// state kept in the shop's directory: (accepted, its output).
    pub fn clear(&self, batch: &Path) -> (bool, String) {
        let keys = self.dir.join("issuer-keys.json");
        if !keys.exists() {
            write_private(&keys, &test_issuer_keys().to_json().expect("keys JSON"));
        }
        let out = std::process::Command::new(emulator_bin("purse-issuer"))
            .arg("clear")
            .arg("--keys")
            .arg(&keys)
            .arg("--state")
            .arg(self.dir.join("clearing-state.json"))
            .arg(batch)
            .output()
            .expect("run purse-issuer");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

/// The batch file a successful `settle` names, read back.
pub fn closed_batch(out: &std::process::Output) -> (PathBuf, Batch) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "settle: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = stdout
        .lines()
        .find(|l| l.starts_with("closed period "))
        .and_then(|l| l.rsplit(" -> ").next())
        .unwrap_or_else(|| panic!("settle closed no period: {stdout}"));
    let text = std::fs::read_to_string(file).expect("the batch file");
    (PathBuf::from(file), parse_batch(&text).expect("a batch"))
}

/// A purse card in process, personalised from the test issuer keys (those of the SAM).
pub fn sam_card(id: u8, balance: u32) -> TestCard {
    let state = new_card_state(CardId([0x10, 0, 0, 0, 0, 0, 0xD0, id]), Amount(balance));
    TestCard::from_state(state, id)
}

/// A time-cycle order: `unit` per period of one second, at most `max` units.
pub fn time_cycle(unit: u32, max: u32) -> Value {
    json!({"currency": "EUR", "mode": "time_cycle",
        "time_cycle": {"unit_amount": unit, "period_seconds": 1, "max_units": max}})
}

impl Http {
    /// Creates a payment from `order` through the merchant API: (id, secret, payment).
    pub async fn create(&self, order: &Value) -> (String, String, Value) {
        let (s, v) = self.merchant("POST", "/v1/payments", Some(order)).await;
        assert_eq!(s, 201, "{v}");
        let (id, secret) = super::steps::id_and_secret(&v);
        (id, secret, v)
    }

    /// The TICK of a running time-cycle once it is due on the plugin's (wall) clock: the
    /// test waits for the due time the payment states, then asks.
    pub async fn tick_when_due(&self, id: &str, secret: &str) -> (u16, Value) {
        let due = self.payment(id).await["next_due_at"]
            .as_i64()
            .expect("next_due_at");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_millis() as i64;
        let wait = (due * 1000 - now).max(0) as u64;
        tokio::time::sleep(std::time::Duration::from_millis(wait + 20)).await;
        self.shopper(
            &format!("/v1/checkout/payments/{id}/tick"),
            &json!({ "client_secret": secret }),
        )
        .await
    }

    /// Stop of a time-cycle, with the card's last TICK answer if there is one.
    pub async fn stop(&self, id: &str, secret: &str, answer: Option<&str>) -> (u16, Value) {
        let mut body = json!({ "client_secret": secret });
        if let Some(a) = answer {
            body["answer"] = json!({ "response": a });
        }
        self.shopper(&format!("/v1/checkout/payments/{id}/stop"), &body)
            .await
    }
}

/// Every payment of the merchant API, by id.
pub async fn payments(http: &Http) -> BTreeMap<String, Value> {
    http.all_payments()
        .await
        .into_iter()
        .map(|p| (p["id"].as_str().expect("id").to_string(), p))
        .collect()
}

/// Every cent that left a card belongs to one succeeded payment of that card, nothing
/// else succeeded, and nothing is left undecided. Returns the succeeded payments'
/// (count, sum).
pub async fn assert_money_conserved(http: &Http, cards: &[&TestCard]) -> (u32, u64) {
    let all = payments(http).await;
    for p in all.values() {
        assert!(
            ["succeeded", "failed", "canceled", "expired"]
                .contains(&p["status"].as_str().unwrap_or("")),
            "a payment left undecided: {p}"
        );
    }
    let mut total = 0;
    for card in cards {
        total += super::assert_card_charged(all.values(), card, START);
    }
    let count = all.values().filter(|p| p["status"] == "succeeded").count();
    (count as u32, total)
}

/// The close: `shop-plugin settle` writes a batch whose records are the succeeded
/// payments and whose SAM totals are their sum, and `purse-issuer clear` accepts it.
pub async fn settle_and_clear(rig: &SamRig, succeeded: (u32, u64)) -> Batch {
    check_and_clear(rig, rig.settle().await, succeeded)
}

/// The checks of [`settle_and_clear`] on a batch already closed.
pub fn check_and_clear(
    rig: &SamRig,
    (file, batch): (PathBuf, Batch),
    succeeded: (u32, u64),
) -> Batch {
    assert!(
        batch.unresolved.is_empty(),
        "unresolved: {:?}",
        batch.unresolved
    );
    let records: u64 = batch
        .transactions
        .iter()
        .map(|t| u64::from(t.total.0))
        .sum();
    assert_eq!(
        (batch.transactions.len() as u32, records),
        succeeded,
        "the batch's records are the succeeded payments"
    );
    assert_eq!(
        (batch.totals.count, batch.totals.sum.0),
        succeeded,
        "the SAM's totals are the payments' sum"
    );
    let (accepted, out) = rig.clear(&file);
    assert!(accepted && out.starts_with("accepted: "), "clear: {out}");
    batch
}

pub async fn status_of(http: &Http, id: &str) -> Value {
    http.payment(id).await["status"].clone()
}

/// INITIALIZE of a created payment with `card`: authorized, or told to start again
/// (`payment_retry`: the SAM's session of the payment is gone) and then authorized on
/// the payment's fresh INITIALIZE. Returns the DEBIT.
pub async fn authorize_created(
    http: &Http,
    card: &mut TestCard,
    id: &str,
    secret: &str,
    created: &Value,
) -> String {
    let (kv, init) = card.initialize(created);
    let (s, step) = http.initialize(id, secret, kv, &init).await;
    let step = if s == 409 && step["error"]["code"] == "payment_retry" {
        let (s, fresh) = http.shopper_get(id, secret).await;
        assert_eq!((s, &fresh["status"]), (200, &json!("created")), "{fresh}");
        let (kv, init) = card.initialize(&fresh);
        let (s, step) = http.initialize(id, secret, kv, &init).await;
        assert_eq!(s, 200, "{step}");
        step
    } else {
        assert_eq!(s, 200, "{step}");
        step
    };
    assert_eq!(step["status"], json!("authorized"), "{step}");
    step["command"].as_str().expect("DEBIT").to_string()
}

/// The plugin's answer while its SAM is away: 503 `sam_unavailable`, never a 500.
pub fn assert_sam_unavailable(s: u16, e: &Value) {
    assert_eq!(
        (s, &e["error"]["code"]),
        (503, &json!("sam_unavailable")),
        "{e}"
    );
}

/// A request made once the SAM is back in its reader. The plugin's first command may
/// meet its stale PC/SC handle (SCARD_W_REMOVED_CARD: the command never reached the SAM)
/// and answer 503 once; that one 503 is tolerated here (and logged), see
/// `the_first_request_after_the_sam_is_back_is_served` (sam_faults_found.rs) for the
/// strict check.
pub async fn once_back<F, Fut>(mut req: F) -> (u16, Value)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (u16, Value)>,
{
    let (s, v) = req().await;
    if s == 503 && v["error"]["code"] == "sam_unavailable" {
        eprintln!("503 sam_unavailable once the SAM was back: asked again");
        return req().await;
    }
    (s, v)
}

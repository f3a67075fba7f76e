//! SAM-card mode end to end on the real PC/SC stack: the plugin drives the SAM emulator
//! (`sam-emulator`, reader "Virtual PCD 00 00") through pcscd; the purse card emulator
//! sits in "Virtual PCD 00 01" and the test relays its commands as the shopper's browser
//! does. A single purchase, a time-cycle with a tick and a stop, a lost DEBIT answer
//! recovered, the SAM pulled mid-payment (the payment waits, then completes), and the
//! settle whose batch the clearing checks accept with the SAM's totals.
//!
//! Needs pcscd with vpcd, and the emulator binaries (`cargo build -p card-emulators`).

mod support;

use std::ffi::CString;

use pcsc::{Disposition, Protocols, ShareMode};
use purse::clearing::{verify, ClearingState};
use purse::{Amount, CardId, SamId};
use serde_json::{json, Value};
use shop_plugin::http;
use shop_plugin::sam::pcsc::PcscSam;
use shop_plugin::sam::SecurityModule;
use support::{emulator_bin, Plugin, T0};
use testkit::*;

const SAM_ID: SamId = SamId([0x5A, 0, 0, 0, 0, 0, 0, 0x61]);

/// The purse card in its reader, as the shopper's browser reaches it.
struct Shopper {
    _ctx: pcsc::Context,
    card: Option<pcsc::Card>,
}

impl Shopper {
    fn connect() -> Shopper {
        let ctx = pcsc_context();
        wait_present(&ctx, SLOT_1.reader);
        let name = CString::new(SLOT_1.reader).expect("name");
        let card = ctx
            .connect(&name, ShareMode::Shared, Protocols::ANY)
            .expect("connect to the purse card");
        Shopper {
            _ctx: ctx,
            card: Some(card),
        }
    }

    fn run(&self, apdu_hex: &str) -> String {
        let apdu = hex::decode(apdu_hex).expect("hex");
        let card = self.card.as_ref().expect("card");
        hex::encode(transmit(card, &apdu).expect("card answer"))
    }

    fn select(&self) -> purse::commands::SelectInfo {
        select_purse(self.card.as_ref().expect("card"))
    }
}

impl Drop for Shopper {
    fn drop(&mut self) {
        if let Some(c) = self.card.take() {
            let _ = c.disconnect(Disposition::LeaveCard);
        }
    }
}

struct Rig {
    plugin: Plugin,
    shopper: Shopper,
    sam_emu: Emulator,
    _card_emu: Emulator,
    _dir: TestDir,
    _card_lock: SlotLock,
    _sam_lock: SlotLock,
}

async fn rig(name: &str, balance: u32) -> Rig {
    let sam_lock = SlotLock::acquire(SLOT_0);
    let card_lock = SlotLock::acquire(SLOT_1);
    let dir = TestDir::new(name);
    write_sam_card(&dir.join("sam.json"), &new_sam_card_state(SAM_ID));
    write_card_state(
        &dir.join("card.json"),
        &new_card_state(CardId([0x10, 0, 0, 0, 0, 0, 0x61, 1]), Amount(balance)),
    );
    let sam_emu = Emulator::spawn(
        &emulator_bin("sam-emulator"),
        &sam_lock,
        &dir.join("sam.json"),
    );
    let card_emu = Emulator::spawn(
        &emulator_bin("card-emulator"),
        &card_lock,
        &dir.join("card.json"),
    );
    wait_present(&pcsc_context(), SLOT_0.reader);
    let sam = PcscSam::connect(SLOT_0.reader).expect("the SAM answers");
    assert_eq!(sam.identity().sam_id, SAM_ID);
    let plugin = Plugin::start_on(
        dir.path().to_path_buf(),
        vec![Box::new(sam)],
        http::Limits::default(),
    )
    .await;
    Rig {
        plugin,
        shopper: Shopper::connect(),
        sam_emu,
        _card_emu: card_emu,
        _dir: dir,
        _card_lock: card_lock,
        _sam_lock: sam_lock,
    }
}

impl Rig {
    fn set_time(&self, t: i64) {
        self.plugin.set_time(t);
    }

    async fn create(&self, body: Value) -> (String, String, Value) {
        let (s, v) = self
            .plugin
            .merchant("POST", "/v1/payments", Some(&body))
            .await;
        assert_eq!(s, 201, "{v}");
        let (id, secret) = support::steps::id_and_secret(&v);
        (id, secret, v)
    }

    /// INITIALIZE on the card, its answer to the plugin: the DEBIT.
    async fn authorize(&self, body: Value) -> (String, String, String) {
        let (id, secret, created) = self.create(body).await;
        let kv = self.shopper.select().kv.0;
        let apdu = created["initialize"]
            .as_array()
            .and_then(|a| a.iter().find(|i| i["kv"] == kv))
            .and_then(|i| i["apdu"].as_str())
            .expect("an INITIALIZE for the card's KV")
            .to_string();
        let init = self.shopper.run(&apdu);
        let (s, step) = self.plugin.initialize(&id, &secret, kv, &init).await;
        assert_eq!((s, &step["status"]), (200, &json!("authorized")), "{step}");
        (
            id,
            secret,
            step["command"].as_str().expect("DEBIT").to_string(),
        )
    }

    async fn recover(&self, secret: &str) -> Value {
        let info = self.shopper.select();
        let (s, mut reply) = self
            .plugin
            .shopper(
                "/v1/checkout/recoveries",
                &json!({"card_id": info.card_id.to_hex(), "kv": info.kv.0, "client_secret": secret}),
            )
            .await;
        assert_eq!(s, 200, "{reply}");
        let id = reply["id"].as_str().expect("id").to_string();
        for _ in 0..4 {
            let answer = self
                .shopper
                .run(reply["command"].as_str().expect("command"));
            let (s, r) = self
                .plugin
                .shopper(
                    &format!("/v1/checkout/recoveries/{id}"),
                    &json!({ "response": answer }),
                )
                .await;
            assert_eq!(s, 200, "{r}");
            if r["done"] == json!(true) {
                return r;
            }
            reply = r;
        }
        panic!("recovery did not end: {reply}");
    }
}

fn single(amount: u32) -> Value {
    json!({"amount": amount, "currency": "EUR", "order_reference": "o", "description": "Tea"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_through_the_sam_card_and_the_close_it_signs() {
    let r = rig("sam-card-pay", 10_000).await;

    // A single purchase.
    let (id1, secret, debit) = r.authorize(single(250)).await;
    let answer = r.shopper.run(&debit);
    let (s, done) = r.plugin.answer(&id1, &secret, Some(&answer)).await;
    assert_eq!((s, &done["status"]), (200, &json!("succeeded")), "{done}");
    // The same answer again: the same result, counted once.
    let (s, again) = r.plugin.answer(&id1, &secret, Some(&answer)).await;
    assert_eq!((s, &again["status"]), (200, &json!("succeeded")), "{again}");

    // A time-cycle: the first unit on DEBIT, a tick when due, then Stop.
    let (id2, secret2, debit) = r
        .authorize(json!({"currency": "EUR", "mode": "time_cycle",
            "time_cycle": {"unit_amount": 30, "period_seconds": 60, "max_units": 5}}))
        .await;
    let (s, running) = r
        .plugin
        .answer(&id2, &secret2, Some(&r.shopper.run(&debit)))
        .await;
    assert_eq!(
        (s, &running["status"]),
        (200, &json!("running")),
        "{running}"
    );
    let tick = format!("/v1/checkout/payments/{id2}/tick");
    r.set_time(T0 + 30);
    let (s, early) = r
        .plugin
        .shopper(&tick, &json!({"client_secret": secret2}))
        .await;
    assert_eq!(
        (s, &early["command"]),
        (200, &Value::Null),
        "not due: {early}"
    );
    r.set_time(T0 + 60);
    let (s, t) = r
        .plugin
        .shopper(&tick, &json!({"client_secret": secret2}))
        .await;
    assert_eq!(s, 200, "{t}");
    let a2 = r.shopper.run(t["command"].as_str().expect("TICK due"));
    let (s, stopped) = r
        .plugin
        .shopper(
            &format!("/v1/checkout/payments/{id2}/stop"),
            &json!({"client_secret": secret2, "answer": {"response": a2}}),
        )
        .await;
    assert_eq!(
        (s, &stopped["status"]),
        (200, &json!("succeeded")),
        "{stopped}"
    );
    assert_eq!(r.plugin.payment(&id2).await["charged"]["total"], json!(60));

    // A lost DEBIT answer: the card debited, the answer never came; recovery decides.
    let (id3, secret3, debit) = r.authorize(single(120)).await;
    let _lost = r.shopper.run(&debit);
    let (s, pending) = r.plugin.answer(&id3, &secret3, None).await;
    assert_eq!(
        (s, &pending["status"]),
        (200, &json!("authorized")),
        "{pending}"
    );
    let rec = r.recover(&secret3).await;
    assert_eq!(rec["outcomes"][0]["outcome"], json!("completed"), "{rec}");
    assert_eq!(r.plugin.payment(&id3).await["status"], json!("succeeded"));

    // The SAM pulled mid-payment: the payment waits (503), nothing changes; back in its
    // reader, the same answer completes it.
    let (id4, secret4, debit) = r.authorize(single(40)).await;
    let answer = r.shopper.run(&debit);
    // (`control` directly: the testkit's insert/status read a purse card's status.)
    r.sam_emu.control("remove");
    wait_absent(&pcsc_context(), SLOT_0.reader);
    let (s, e) = r.plugin.answer(&id4, &secret4, Some(&answer)).await;
    assert_eq!(
        (s, &e["error"]["code"]),
        (503, &json!("sam_unavailable")),
        "{e}"
    );
    assert_eq!(r.plugin.payment(&id4).await["status"], json!("authorized"));
    r.sam_emu.control("insert");
    wait_present(&pcsc_context(), SLOT_0.reader);
    let (s, done) = r.plugin.answer(&id4, &secret4, Some(&answer)).await;
    assert_eq!((s, &done["status"]), (200, &json!("succeeded")), "{done}");

    // The close: the batch is what the SAM signed, and the clearing checks accept it.
    let batch = r.plugin.close().await;
    assert_eq!(batch.transactions.len(), 4);
    assert_eq!(batch.totals.count, 4);
    assert_eq!(batch.totals.sum.0, 250 + 60 + 120 + 40);
    let problems = verify(&batch, &test_issuer_keys(), &ClearingState::default());
    assert!(problems.is_empty(), "clearing problems: {problems:?}");
    assert_eq!(batch.close_seq.0, 1);
    // Nothing left: the next close is empty and in sequence.
    let next = r.plugin.close().await;
    assert_eq!((next.close_seq.0, next.totals.count), (2, 0));
}

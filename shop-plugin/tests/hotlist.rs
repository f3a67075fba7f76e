//! The clearing office's hotlist end to end: the real `clearing-office` binary flags a
//! card that two SAMs both claim at the same NT (the plugin's SAM, then a second SAM in
//! process paid by the same card restored from its older state), the plugin fetches the
//! signed hotlist with its configured public key, and the card is refused at INITIALIZE
//! with `card_blocked` before the SAM authorises anything. A tampered list and an older
//! (genuinely signed) one, served from a local server in place of the office, are
//! refused and the last good list kept.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Method;
use purse::card::{Card, MemoryStore};
use purse::keys::SamKeys;
use purse::sam::{Order, Sam};
use purse::surrogate::{LocalCard, MemoryJournal, Surrogate};
use purse::{Amount, CardId, Currency, DateTime, KeyVersion, Rnd, SamId};
use serde_json::{json, Value};
use shop_plugin::config::Config;
use shop_plugin::hotlist::{FetchError, Source};
use shop_plugin::outbound::Outbound;
use support::office::{closes, settler, stand_in, Office, OPERATOR};
use support::{create_single, issuer, Plugin, TestCard, T0};

const SAM_B: &str = "5a00000000000008";

/// The plugin's hotlist source as `serve`/`settle` build it from a configuration file
/// naming `clearing_url` and the office's public key.
fn source(p: &Plugin, clearing_url: &str, public_key: &str) -> Source {
    let path = p.dir.join("plugin.toml");
    std::fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:0\"\ndatabase = \"plugin.db\"\n\
             allowed_origins = []\n[sam]\nin_process_card = \"sam-card.json\"\n[merchant]\napi_key_sha256 = []\n\
             [webhooks]\nsecret_file = \"webhook.secret\"\n\
             [settlement]\noutbox = \"outbox\"\nclearing_url = \"{clearing_url}\"\n\
             clearing_credential_file = \"credential\"\nhotlist_public_key = \"{public_key}\"\n"
        ),
    )
    .expect("config");
    let config = Config::load(&path).expect("config loads");
    Source::from_config(
        &config,
        Outbound::new(None, Duration::from_secs(10)).expect("client"),
    )
    .expect("source")
    .expect("a hotlist source")
}

/// The second SAM's batch: `card` pays 100 cents at it, then its period is closed.
fn second_sam_batch(card: &mut Card) -> Value {
    let keys = SamKeys::issue(
        &issuer(),
        SamId([0x5A, 0, 0, 0, 0, 0, 0, 8]),
        Currency::EUR,
        KeyVersion(1),
        &[KeyVersion(1)],
    )
    .expect("SAM B keys");
    let mut sam = Sam::new(keys);
    let mut journal = MemoryJournal::default();
    Surrogate {
        sam: &mut sam,
        journal: &mut journal,
    }
    .purchase(
        &mut LocalCard {
            card,
            store: &mut MemoryStore,
        },
        Order::single(Amount(100)),
        Rnd([0xB8; 16]),
        DateTime(T0 as u32),
    )
    .expect("the restored card pays at SAM B");
    let close = sam.close_period("2026-11-24T23:59:00Z".into());
    serde_json::to_value(&close.batch).expect("batch json")
}

/// The SAM transactions the plugin stored (authorized payments) and the highest
/// SAM_TxSeq among them.
async fn sam_rows(p: &Plugin) -> (i64, i64) {
    p.app
        .engine
        .store()
        .read(|c: &rusqlite::Connection| {
            c.query_row(
                "SELECT COUNT(*), COALESCE(MAX(sam_tx_seq), 0) FROM sam_payment
                  WHERE sam_tx_seq IS NOT NULL",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .await
        .expect("sam rows")
}

/// Sends the card's INITIALIZE answer; asserts `422 card_blocked`, returns the body.
async fn refused_blocked(p: &Plugin, id: &str, secret: &str, kv: u8, init: &str) -> Value {
    let (s, v) = p.initialize(id, secret, kv, init).await;
    assert_eq!(
        (s, &v["error"]["code"]),
        (422, &json!("card_blocked")),
        "{v}"
    );
    v
}

async fn office_hotlist(office: &Office) -> Value {
    let (s, v) = office
        .call(Method::GET, "/v1/hotlist", "", Value::Null)
        .await;
    assert_eq!(s, 200, "{v}");
    v
}

#[tokio::test]
async fn a_card_claimed_twice_is_refused_at_initialize_and_the_last_good_list_kept() {
    let p = Plugin::start("hotlist").await;
    let office = Office::start(&p.dir);
    let credential = office.register().await;
    let cred_b = office.register_sam(SAM_B).await;
    let plugin_source = source(&p, &office.url, &office.hotlist_public);
    p.app.engine.set_hotlist_source(plugin_source.clone());

    // The card pays at the plugin; its state before that payment is kept (a clone's).
    let mut card = TestCard::new(61, 10_000);
    let card_id = CardId([0x10, 0, 0, 0, 0, 0, 0, 61]);
    let old_state = card.card.state().clone();
    p.pay(&mut card, 500).await;

    // Settled: accepted; the run fetched the office's hotlist, empty so far.
    let r = settler(&p, &office.url, &credential)
        .run(&p.app.engine, false)
        .await
        .expect("settle");
    assert_eq!((closes(&r.posted), r.post_error), (vec![1], None));
    let first = p.app.engine.hotlist().expect("a hotlist taken at settle");
    assert!(first.cards.is_empty());
    let empty_body = office_hotlist(&office).await;

    // The restored card pays again at SAM B with the same NT: rejected and flagged.
    let mut clone = Card::new(old_state, Box::new(|| Rnd([0xC1; 16])));
    let batch = second_sam_batch(&mut clone);
    let (s, v) = office
        .call(Method::POST, "/v1/batches", &cred_b, batch)
        .await;
    assert_eq!((s, &v["decision"]), (200, &json!("rejected")), "{v}");
    assert_eq!(v["problems"][0]["code"], "E_DUPLICATE", "{v}");
    let (s, flags) = office
        .call(Method::GET, "/v1/flags", OPERATOR, Value::Null)
        .await;
    assert_eq!(s, 200);
    assert_eq!(flags["flags"][0]["card_id"], card_id.to_hex());
    assert_eq!(flags["flags"][0]["reason"], "nt_claimed_twice");

    // The plugin fetches the office's list: the card is held as blocked.
    assert_eq!(
        plugin_source.refresh(&p.app.engine).await.expect("taken"),
        1
    );
    let held = p.app.engine.hotlist().expect("held");
    assert!(held.contains(&card_id));

    // A payment with that card: card_blocked at INITIALIZE, the SAM untouched.
    let before = sam_rows(&p).await;
    let (id, secret, created) = create_single(&p, 300).await;
    let (kv, init) = card.initialize(&created);
    let v = refused_blocked(&p, &id, &secret, kv, &init).await;
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&card_id.to_hex())),
        "{v}"
    );
    assert_eq!(sam_rows(&p).await, before, "no SAM transaction allocated");
    let pay = p.payment(&id).await;
    assert_eq!(pay["status"], "created", "{pay}");
    assert_eq!(card.balance(), 9_500, "nothing charged");
    // Another card still pays.
    p.pay(&mut TestCard::new(62, 10_000), 200).await;

    // A stand-in for the office: a tampered list (the card taken off) is refused.
    let served = Arc::new(Mutex::new(Bytes::new()));
    let stand_in_url = stand_in("application/json", served.clone()).await;
    let fake = source(&p, &stand_in_url, &office.hotlist_public);
    let mut tampered = office_hotlist(&office).await;
    tampered["cards"] = json!([]);
    *served.lock().expect("lock") = Bytes::from(tampered.to_string());
    let e = fake.refresh(&p.app.engine).await.expect_err("refused");
    assert!(matches!(e, FetchError::Refused(_)), "{e}");
    assert!(e.to_string().contains("signature"), "{e}");
    assert!(p.app.engine.hotlist().expect("held").contains(&card_id));

    // An older list, signed by the office (the empty one from before the flag): refused
    // once the office has issued a later one (issued_at is in seconds: the condition
    // has no event to wait on, so it is polled with a deadline).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let newer = office_hotlist(&office).await;
        if newer["issued_at"].as_i64() > empty_body["issued_at"].as_i64() {
            *served.lock().expect("lock") = Bytes::from(newer.to_string());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the office's issued_at never moved"
        );
        tokio::task::yield_now().await;
    }
    assert_eq!(fake.refresh(&p.app.engine).await.expect("newer taken"), 1);
    *served.lock().expect("lock") = Bytes::from(empty_body.to_string());
    let e = fake.refresh(&p.app.engine).await.expect_err("refused");
    assert!(e.to_string().contains("before the one held"), "{e}");
    let held = p.app.engine.hotlist().expect("held");
    assert!(held.contains(&card_id));

    // Still blocked, and so after a restart (the list was kept on disk).
    let (id2, secret2, created2) = create_single(&p, 300).await;
    let (kv, init) = card.initialize(&created2);
    refused_blocked(&p, &id2, &secret2, kv, &init).await;
    let dir = p.dir.clone();
    drop(p);
    let p = Plugin::start_in(dir).await;
    assert!(p.app.engine.hotlist().expect("reloaded").contains(&card_id));
    refused_blocked(&p, &id2, &secret2, kv, &init).await;
}

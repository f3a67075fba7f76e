//! What the SAM fault tests (`sam_faults.rs`) once found in the plugin, one strict test
//! each: a 503 at INITIALIZE keeps the payment's SAM session (the same card answer works
//! once the SAM is back), the first request after the SAM is back is served (a stale
//! PC/SC handle is reconnected), and `serve` started while its SAM is still held serves
//! and takes the SAM once it is free.
//!
//! Needs pcscd with vpcd and the binaries `sam-emulator` and `purse-issuer`.

mod support;

use purse::sam_applet::command::{INS_AUTHORIZE as AUTHORIZE, INS_COMPLETE as COMPLETE};
use serde_json::json;
use support::create_single;
use support::sam_rig::*;
use support::server::Server;
use support::TestCard;

/// Pulled before and after AUTHORIZE: the payment stays created with its INITIALIZE as
/// it was (the shopper's card answer to it still valid), and once the SAM is back it
/// authorizes (the SAM_TxSeq of a lost AUTHORIZE answer is an allowed gap).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sam_pulled_at_authorize_keeps_the_payment_as_it_was() {
    let rig = SamRig::new("sam-faults-auth", sam_id(4));
    let mut cards: Vec<TestCard> = (31..=32).map(|i| sam_card(i, START)).collect();
    let server = rig.start_plugin();
    for (i, after) in [(0usize, false), (1, true)] {
        let (id, sec, created) = create_single(&server, 200 + i as u32).await;
        rig.pull_sam(AUTHORIZE, after);
        let (kv, init) = cards[i].initialize(&created);
        let (s, e) = server.initialize(&id, &sec, kv, &init).await;
        assert_sam_unavailable(s, &e);
        let (_, now) = server.shopper_get(&id, &sec).await;
        assert_eq!(now["status"], "created", "pulled after: {after}");
        assert_eq!(
            now["initialize"], created["initialize"],
            "the payment's INITIALIZE changed"
        );
        rig.insert_sam();
        let (s, step) = once_back(|| server.initialize(&id, &sec, kv, &init)).await;
        let debit = if after {
            // The SAM used this begin context before its answer was lost: begin again.
            assert_eq!(
                (s, &step["error"]["code"]),
                (409, &json!("payment_retry")),
                "{step}"
            );
            let (_, fresh) = server.shopper_get(&id, &sec).await;
            authorize_created(&server, &mut cards[i], &id, &sec, &fresh).await
        } else {
            assert_eq!((s, &step["status"]), (200, &json!("authorized")), "{step}");
            step["command"].as_str().expect("DEBIT").to_string()
        };
        let (s, done) = server.answer(&id, &sec, Some(&cards[i].run(&debit))).await;
        assert_eq!((s, &done["status"]), (200, &json!("succeeded")), "{done}");
    }
    let refs: Vec<&TestCard> = cards.iter().collect();
    let succeeded = assert_money_conserved(&server, &refs).await;
    settle_and_clear(&rig, succeeded).await;
    drop(server);
}

/// The SAM pulled mid-command and put back: the plugin's next request is served (its
/// old PC/SC handle is stale, SCARD_W_REMOVED_CARD: the command never reached the SAM,
/// so connecting again and sending it is safe).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_request_after_the_sam_is_back_is_served() {
    let rig = SamRig::new("sam-faults-back", sam_id(5));
    let mut card = sam_card(41, START);
    let server = rig.start_plugin();
    let (id, sec, debit) = server.authorize(&mut card, 70).await;
    let answer = card.run(&debit);
    rig.pull_sam(COMPLETE, false);
    // Asked again at once: the plugin connects before pcscd has seen the SAM leave.
    for _ in 0..2 {
        let (s, e) = server.answer(&id, &sec, Some(&answer)).await;
        assert_sam_unavailable(s, &e);
    }
    rig.insert_sam();
    let (s, done) = server.answer(&id, &sec, Some(&answer)).await;
    assert_eq!((s, &done["status"]), (200, &json!("succeeded")), "{done}");
    drop(server);
}

/// `serve` started while its SAM is still held by another PC/SC client (as right after
/// a `kill -9`, until pcscd has noticed the dead process): it starts, answers 503
/// `sam_unavailable` meanwhile, and takes the SAM once it is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_right_after_kill_9_finds_its_sam() {
    let rig = SamRig::new("sam-faults-held", sam_id(6));
    let mut card = sam_card(51, START);
    // Another client holds the SAM exclusively, as the killed plugin's handle does.
    let ctx = testkit::pcsc_context();
    let reader = std::ffi::CString::new(testkit::SLOT_0.reader).expect("name");
    let held = ctx
        .connect(&reader, pcsc::ShareMode::Exclusive, pcsc::Protocols::ANY)
        .expect("hold the SAM");
    let dir = rig.path().to_path_buf();
    let start = std::panic::catch_unwind(|| Server::start(&dir));
    let _ = held.disconnect(pcsc::Disposition::LeaveCard);
    let server = start.unwrap_or_else(|_| panic!("serve did not start while its SAM was held"));
    server.pay(&mut card, 80).await;
    drop(server);
}

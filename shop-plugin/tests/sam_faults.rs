//! Crash and fault behaviour of the real `shop-plugin serve` over a SAM card in its own
//! reader (the `sam-emulator` on vpcd through the system pcscd): `kill -9` of the plugin
//! at every step of a purchase and of a time-cycle, the SAM emulator killed or pulled at
//! every step, and a SAM card restored from an old copy. Each test then finishes every
//! payment, closes with `shop-plugin settle` and has the batch cleared by
//! `purse-issuer clear`: no money lost or doubled, the SAM's totals equal to the batch.
//!
//! Plugin weaknesses these faults revealed: `sam_faults_found.rs`.
//!
//! Needs pcscd with vpcd and the binaries `sam-emulator` (`cargo build -p card-emulators`)
//! and `purse-issuer` (`cargo build -p purse-issuer`).

mod support;

use purse::sam_applet::command::{
    INS_CLOSE as CLOSE, INS_COMPLETE as COMPLETE, INS_RECOVERY as RECOVERY, INS_STOP as STOP,
    INS_TICK as TICK,
};
use serde_json::json;
use support::create_single;
use support::sam_rig::*;
use support::server::Server;
use support::TestCard;

/// `kill -9` of the plugin, then a restart (by a supervisor, see
/// [`SamRig::restart_plugin`]).
fn crash(server: Server, rig: &SamRig) -> Server {
    server.kill9();
    let (server, failed) = rig.restart_plugin();
    if failed > 0 {
        eprintln!("restart after kill -9: {failed} start(s) failed first (SAM still held)");
    }
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_plugin_at_every_step_then_the_close_clears() {
    let rig = SamRig::new("sam-faults-kill", sam_id(1));
    let mut cards: Vec<TestCard> = (1..=7).map(|i| sam_card(i, START)).collect();
    let mut server = rig.start_plugin();

    // Paid before anything happens: must stay as it is.
    let (paid0, _) = server.pay(&mut cards[0], 100).await;

    // 1. Killed after the create: the payment still takes its card's INITIALIZE.
    let (id1, sec1, created1) = create_single(&server, 110).await;
    server = crash(server, &rig);
    let (kv, init) = cards[1].initialize(&created1);
    let (s, step) = server.initialize(&id1, &sec1, kv, &init).await;
    assert_eq!((s, &step["status"]), (200, &json!("authorized")), "{step}");
    let answer = cards[1].run(step["command"].as_str().expect("DEBIT"));
    let (s, done) = server.answer(&id1, &sec1, Some(&answer)).await;
    assert_eq!((s, &done["status"]), (200, &json!("succeeded")), "{done}");

    // 2. Killed after the authorize, the DEBIT never reached the card: recovery voids it.
    let (id2, sec2, _debit) = server.authorize(&mut cards[2], 120).await;
    server = crash(server, &rig);
    assert_eq!(status_of(&server, &id2).await, "authorized");
    let (s, r) = server.recover(&mut cards[2], &sec2).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        r["outcomes"],
        json!([{"payment": id2, "outcome": "voided"}])
    );
    assert_eq!(status_of(&server, &id2).await, "failed");

    // 3. Killed after the card answered, before its answer reached the plugin: the
    //    answer sent after the restart completes the payment once.
    let (id3, sec3, debit) = server.authorize(&mut cards[3], 130).await;
    let answer3 = cards[3].run(&debit);
    server = crash(server, &rig);
    let (s, done) = server.answer(&id3, &sec3, Some(&answer3)).await;
    assert_eq!((s, &done["status"]), (200, &json!("succeeded")), "{done}");
    // 3b. The same, the answer lost for good: recovery with the card completes it.
    let (id3b, sec3b, debit) = server.authorize(&mut cards[4], 135).await;
    cards[4].run(&debit);
    server = crash(server, &rig);
    let (s, r) = server.recover(&mut cards[4], &sec3b).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        r["outcomes"],
        json!([{"payment": id3b, "outcome": "completed"}])
    );

    // 4. Killed after the answer: the payment stays paid, the answer again changes nothing.
    let (id4, sec4, debit) = server.authorize(&mut cards[5], 140).await;
    let answer4 = cards[5].run(&debit);
    let (s, _) = server.answer(&id4, &sec4, Some(&answer4)).await;
    assert_eq!(s, 200);
    server = crash(server, &rig);
    let (s, again) = server.answer(&id4, &sec4, Some(&answer4)).await;
    assert_eq!((s, &again["status"]), (200, &json!("succeeded")), "{again}");
    assert_eq!(server.payment(&id4).await["charged"]["total"], json!(140));

    // 5. A time-cycle: killed after its first unit, during a tick (the card answered,
    //    the answer not delivered), and after the stop.
    let card = &mut cards[6];
    let (id5, sec5, created5) = server.create(&time_cycle(30, 5)).await;
    let (kv, init) = card.initialize(&created5);
    let (s, step) = server.initialize(&id5, &sec5, kv, &init).await;
    assert_eq!((s, &step["status"]), (200, &json!("authorized")), "{step}");
    let answer = card.run(step["command"].as_str().expect("DEBIT"));
    let (s, running) = server.answer(&id5, &sec5, Some(&answer)).await;
    assert_eq!(
        (s, &running["status"]),
        (200, &json!("running")),
        "{running}"
    );
    server = crash(server, &rig);
    assert_eq!(status_of(&server, &id5).await, "running");
    let (s, t) = server.tick_when_due(&id5, &sec5).await;
    assert_eq!(s, 200, "{t}");
    let tick_answer = card.run(t["command"].as_str().expect("TICK due"));
    server = crash(server, &rig);
    let (s, stopped) = server.stop(&id5, &sec5, Some(&tick_answer)).await;
    assert_eq!(
        (s, &stopped["status"]),
        (200, &json!("succeeded")),
        "{stopped}"
    );
    server = crash(server, &rig);
    let tc = server.payment(&id5).await;
    assert_eq!(
        (&tc["status"], &tc["charged"]["total"]),
        (&json!("succeeded"), &json!(60)),
        "{tc}"
    );
    assert_eq!(status_of(&server, &paid0).await, "succeeded");

    let refs: Vec<&TestCard> = cards.iter().collect();
    let succeeded = assert_money_conserved(&server, &refs).await;
    assert_eq!(succeeded, (6, 100 + 110 + 130 + 135 + 140 + 60));
    // Every SAM_TxSeq was given once (a voided one and the gaps are allowed).
    let all = payments(&server).await;
    let mut seqs: Vec<u64> = all
        .values()
        .filter_map(|p| p["sam_tx_seq"].as_u64())
        .collect();
    let n = seqs.len();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), n, "a SAM_TxSeq given twice: {seqs:?}");

    // 6. Killed during the close: the SAM froze the period (CLOSE BEGIN) and its answer
    //    was lost, then the plugin died; after the restart settle closes that period.
    rig.pull_sam(CLOSE, true);
    let out = rig.try_settle().await;
    assert!(!out.status.success(), "settle without its SAM: {out:?}");
    rig.insert_sam();
    server = crash(server, &rig);
    let batch = settle_and_clear(&rig, succeeded).await;
    assert_eq!(batch.close_seq.0, 1);
    let recorded: Vec<u64> = batch
        .transactions
        .iter()
        .map(|t| u64::from(t.sam_tx_seq.0))
        .collect();
    assert!(
        recorded.windows(2).all(|w| w[0] < w[1]) && recorded.iter().all(|s| seqs.contains(s)),
        "records {recorded:?} of payments {seqs:?}"
    );
    // The SAM's own counters agree: the period it closed is the batch, the new one empty.
    assert_eq!(rig.sam_status("last_close_seq"), 1);
    assert_eq!(
        (rig.sam_status("period_count"), rig.sam_status("period_sum")),
        (0, 0)
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sam_killed_or_pulled_at_every_step_delays_payments_and_loses_none() {
    let mut rig = SamRig::new("sam-faults-sam", sam_id(2));
    let mut cards: Vec<TestCard> = (11..=17).map(|i| sam_card(i, START)).collect();
    let server = rig.start_plugin();

    // Out of its reader at the create: 503, and no payment made.
    rig.remove_sam();
    let order = json!({"amount": 10, "currency": "EUR"});
    let (s, e) = server.merchant("POST", "/v1/payments", Some(&order)).await;
    assert_sam_unavailable(s, &e);
    assert!(payments(&server).await.is_empty());
    rig.insert_sam();
    let (s, created) = once_back(|| server.merchant("POST", "/v1/payments", Some(&order))).await;
    assert_eq!(s, 201, "{created}");
    let (id, sec) = support::steps::id_and_secret(&created);
    let debit = authorize_created(&server, &mut cards[0], &id, &sec, &created).await;
    let (s, done) = server.answer(&id, &sec, Some(&cards[0].run(&debit))).await;
    assert_eq!((s, &done["status"]), (200, &json!("succeeded")), "{done}");

    // 1. Pulled before and after COMPLETE (after: the SAM counted it, its answer lost):
    //    the payment stays authorized; the same answer completes it, once.
    for (i, after) in [(2usize, false), (3, true)] {
        let (id, sec, debit) = server.authorize(&mut cards[i], 300 + i as u32).await;
        let answer = cards[i].run(&debit);
        rig.pull_sam(COMPLETE, after);
        let (s, e) = server.answer(&id, &sec, Some(&answer)).await;
        assert_sam_unavailable(s, &e);
        assert_eq!(
            status_of(&server, &id).await,
            "authorized",
            "pulled after: {after}"
        );
        rig.insert_sam();
        let (s, done) = once_back(|| server.answer(&id, &sec, Some(&answer))).await;
        assert_eq!((s, &done["status"]), (200, &json!("succeeded")), "{done}");
    }

    // 2. The SAM emulator killed (-9) between the authorize and the answer, respawned
    //    over its card file: the answer completes the payment.
    let (id, sec, debit) = server.authorize(&mut cards[4], 400).await;
    let answer = cards[4].run(&debit);
    rig.kill_sam();
    let (s, e) = server.answer(&id, &sec, Some(&answer)).await;
    assert_sam_unavailable(s, &e);
    assert_eq!(status_of(&server, &id).await, "authorized");
    rig.spawn_sam();
    let (s, done) = once_back(|| server.answer(&id, &sec, Some(&answer))).await;
    assert_eq!((s, &done["status"]), (200, &json!("succeeded")), "{done}");

    // 3. Recovery of a lost answer with the SAM pulled after RECOVERY BEGIN: the
    //    payment waits; once the SAM is back, recovery decides it.
    let (id, sec, debit) = server.authorize(&mut cards[5], 500).await;
    cards[5].run(&debit);
    rig.pull_sam(RECOVERY, true);
    let (s, e) = server.recover(&mut cards[5], &sec).await;
    assert_sam_unavailable(s, &e);
    assert_eq!(status_of(&server, &id).await, "authorized");
    rig.insert_sam();
    let (s, r) = {
        let (s, r) = server.recover(&mut cards[5], &sec).await;
        if s == 503 {
            server.recover(&mut cards[5], &sec).await
        } else {
            (s, r)
        }
    };
    assert_eq!(s, 200, "{r}");
    assert_eq!(
        r["outcomes"],
        json!([{"payment": id, "outcome": "completed"}])
    );

    // 4. A time-cycle: the SAM killed while it runs, pulled before a TICK, and after
    //    the STOP.
    let card = &mut cards[6];
    let (id, sec, created) = server.create(&time_cycle(25, 4)).await;
    let debit = authorize_created(&server, card, &id, &sec, &created).await;
    let (s, running) = server.answer(&id, &sec, Some(&card.run(&debit))).await;
    assert_eq!(
        (s, &running["status"]),
        (200, &json!("running")),
        "{running}"
    );
    // The SAM emulator killed while the time-cycle runs, respawned: the next unit ticks.
    rig.kill_sam();
    let (s, e) = server.tick_when_due(&id, &sec).await;
    assert_sam_unavailable(s, &e);
    rig.spawn_sam();
    let (s, t) = once_back(|| server.tick_when_due(&id, &sec)).await;
    assert_eq!(s, 200, "{t}");
    let (s, ticked) = server
        .answer(
            &id,
            &sec,
            Some(&card.run(t["command"].as_str().expect("TICK"))),
        )
        .await;
    assert_eq!((s, &ticked["status"]), (200, &json!("running")), "{ticked}");
    rig.pull_sam(TICK, false);
    let (s, e) = server.tick_when_due(&id, &sec).await;
    assert_sam_unavailable(s, &e);
    assert_eq!(status_of(&server, &id).await, "running");
    rig.insert_sam();
    let (s, t) = once_back(|| server.tick_when_due(&id, &sec)).await;
    assert_eq!(s, 200, "{t}");
    let tick_answer = card.run(t["command"].as_str().expect("TICK due"));
    rig.pull_sam(STOP, true);
    let (s, e) = server.stop(&id, &sec, Some(&tick_answer)).await;
    assert_sam_unavailable(s, &e);
    rig.insert_sam();
    let (s, stopped) = once_back(|| server.stop(&id, &sec, Some(&tick_answer))).await;
    assert_eq!(
        (s, &stopped["status"]),
        (200, &json!("succeeded")),
        "{stopped}"
    );
    assert_eq!(server.payment(&id).await["charged"]["total"], json!(75));

    let refs: Vec<&TestCard> = cards.iter().collect();
    let succeeded = assert_money_conserved(&server, &refs).await;
    let sum = 10 + 302 + 303 + 400 + 500 + 75;
    assert_eq!(succeeded, (6, sum));
    assert_eq!(
        (rig.sam_status("period_count"), rig.sam_status("period_sum")),
        (6, sum),
        "the SAM counted each payment once"
    );

    // 5. The close with the SAM pulled after CLOSE BEGIN: settle fails, nothing is
    //    lost; the next settle streams the frozen period again and is accepted.
    rig.pull_sam(CLOSE, true);
    let out = rig.try_settle().await;
    assert!(!out.status.success(), "settle without its SAM: {out:?}");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("sam_unavailable"), "{text}");
    rig.insert_sam();
    let mut out = rig.try_settle().await;
    if !out.status.success() {
        eprintln!("settle failed once the SAM was back: run again");
        out = rig.try_settle().await;
    }
    let batch = check_and_clear(&rig, closed_batch(&out), succeeded);
    assert_eq!(batch.close_seq.0, 1);
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sam_card_restored_from_an_old_copy_is_blocked_and_pays_nothing_twice() {
    let mut rig = SamRig::new("sam-faults-rollback", sam_id(3));
    let mut cards: Vec<TestCard> = (21..=23).map(|i| sam_card(i, START)).collect();
    let server = rig.start_plugin();
    server.pay(&mut cards[0], 100).await;
    // The operator's "backup" of the SAM card (card file and journal, as documented).
    rig.backup_sam("old");
    let succeeded = assert_money_conserved(&server, &[&cards[0]]).await;
    let batch = settle_and_clear(&rig, succeeded).await;
    assert_eq!(batch.close_seq.0, 1);
    // A payment of the new period, authorized and debited on the card.
    let (id, sec, debit) = server.authorize(&mut cards[1], 200).await;
    let answer = cards[1].run(&debit);

    // The SAM card is swapped for the old copy.
    rig.kill_sam();
    rig.restore_sam("old");
    rig.spawn_sam();
    assert_eq!(rig.sam_status("last_close_seq"), 0, "the old state is back");

    // Its context is from the restored SAM's future: detected, the SAM blocks itself.
    let (s, e) = once_back(|| server.answer(&id, &sec, Some(&answer))).await;
    assert_eq!(
        (s, &e["error"]["code"]),
        (503, &json!("sam_blocked")),
        "{e}"
    );
    assert_eq!(
        status_of(&server, &id).await,
        "authorized",
        "nothing decided on a rolled-back SAM"
    );
    assert_eq!(rig.emu_status_word("blocked"), "true");
    // And it stays blocked: no new payment, no close.
    let (s, e) = server
        .merchant(
            "POST",
            "/v1/payments",
            Some(&json!({"amount": 10, "currency": "EUR"})),
        )
        .await;
    assert_eq!(
        (s, &e["error"]["code"]),
        (503, &json!("sam_blocked")),
        "{e}"
    );
    let out = support::server::run(&rig.config(), &["settle", "--force"]).await;
    assert!(
        !out.status.success(),
        "a blocked SAM closed a period: {out:?}"
    );
    // Nothing paid twice: the first payment once, the second not (its card's debit waits
    // for a re-personalised SAM or the clearing office's decision).
    let all = payments(&server).await;
    let paid: Vec<_> = all
        .values()
        .filter(|p| p["status"] == "succeeded")
        .collect();
    assert_eq!(paid.len(), 1, "{all:?}");
    assert_eq!(paid[0]["charged"]["total"], json!(100));
    assert_eq!(cards[0].balance(), START - 100);
    assert_eq!(cards[1].balance(), START - 200);
    assert_eq!(cards[2].balance(), START);
    drop(server);
}

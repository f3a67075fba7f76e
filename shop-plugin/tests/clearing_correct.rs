//! `batches correct` while `serve` runs: the command reaches the server through its
//! admin socket (the server holds the SAM), which closes the rejected period again
//! without the record the clearing office refused and uploads it to the real office
//! (the `clearing-office` binary on loopback); the server keeps serving throughout.

mod support;

use std::process::Output;

use support::office::forged_card;
use support::server::{run, write_config_with_office, Server};
use support::{temp_dir, TestCard};

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_correct_beside_a_running_serve_goes_through_its_admin_socket() {
    let dir = temp_dir("clear-correct-serve");
    let (config, office) = write_config_with_office(&dir).await;

    let server = Server::start(&dir);
    let (good, _) = server.pay(&mut TestCard::new(50, 10_000), 600).await;
    let (bad, _) = server.pay(&mut forged_card(51), 900).await;

    // The server settles (admin socket); the office rejects the forged card's record.
    let o = run(&config, &["settle"]).await;
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}\n{err}");
    assert!(
        out.contains("the clearing office rejected batch 1"),
        "{out}"
    );
    assert!(out.contains("E_TAC SAM_TxSeq 2 "), "{out}");

    // Corrected while the server runs: through its admin socket, then uploaded.
    let o = run(&config, &["batches", "correct", "1"]).await;
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}\n{err}");
    assert!(
        out.contains(
            "corrected batch 1 of SAM 5a00000000000007: closed again without SAM_TxSeq [2]"
        ),
        "{out}"
    );
    assert!(
        out.contains("the clearing office accepted batch 1"),
        "{out}"
    );
    assert!(
        server
            .log
            .lock()
            .expect("log")
            .contains("correction of batch 1 requested on the admin socket"),
        "the server did it"
    );

    // The server kept serving: the refused payment failed, the other one stands.
    let pb = server.payment(&bad).await;
    assert_eq!(
        (pb["status"].as_str(), pb["failure"]["code"].as_str()),
        (Some("failed"), Some("clearing_refused"))
    );
    assert_eq!(server.payment(&good).await["status"], "succeeded");
    let o = run(&config, &["batches", "list"]).await;
    let (out, _) = text(&o);
    assert!(
        out.lines().next().is_some_and(|l| l.contains(" accepted ")),
        "{out}"
    );
    let b = office.batches_of(support::office::SAM).await;
    assert_eq!(
        (b.len(), b[0]["decision"].as_str(), b[0]["gross"].as_u64()),
        (2, Some("accepted"), Some(600)),
        "the rejection, then the corrected batch: {b:?}"
    );

    // An accepted batch cannot be corrected: the server's refusal, its code and message.
    let o = run(&config, &["batches", "correct", "1"]).await;
    let (out, err) = text(&o);
    assert!(!o.status.success(), "{out}");
    assert_eq!(
        err.trim_end(),
        "error: the server refused: correction_refused: batch 1 cannot be corrected: the \
         clearing office has not rejected it"
    );
}

//! End to end over TLS: the office serves HTTPS with a certificate of a test CA
//! (rcgen); a hyper-rustls client that trusts that CA registers a SAM and uploads a
//! batch, which is accepted; a client that does not trust the CA, or speaks plain HTTP to
//! the HTTPS port, gets no answer from the API.

mod common;

use common::{https_client, issuer_keys, make_batch, request, Office, TestCa};
use purse::SamId;

const SAM: &str = "5a00000000000071";

#[tokio::test]
async fn a_batch_uploaded_over_https_is_accepted() {
    let ca = TestCa::new();
    let office = Office::start_tls("tls", 1 << 20, &ca).await;
    assert!(
        office.url.starts_with("https://127.0.0.1:"),
        "{}",
        office.url
    );
    let cred = office.register("m1", SAM, 978, 1).await;
    let batch = make_batch(
        &issuer_keys(),
        SamId::from_hex(SAM).expect("sam"),
        1,
        0x7100,
        1,
        25,
    );
    let r = office
        .upload(&cred, &serde_json::to_vec(&batch).expect("json"))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["decision"], "accepted", "{r:?}");
    assert_eq!(r.json["transaction_count"], 25);
    assert_eq!(r.json["payout"]["net"], 2500);

    // The same certificate by name: localhost is in it too.
    let port = office.url.rsplit(':').next().expect("port");
    let by_name = https_client(&ca.ca_der)
        .request(request(
            &format!("https://localhost:{port}"),
            "GET",
            "/v1/hotlist",
            None,
            None,
        ))
        .await;
    // localhost may resolve to ::1 first, where nothing listens; the client then tries
    // 127.0.0.1. Either way the TLS session must verify.
    assert_eq!(by_name.expect("HTTPS by name").status(), 200);

    // A client trusting another CA fails the handshake: the office's certificate is
    // the only thing that vouches for it.
    let other = TestCa::new();
    let refused = https_client(&other.ca_der)
        .request(request(&office.url, "GET", "/v1/hotlist", None, None))
        .await;
    let err = refused.expect_err("a certificate of an unknown CA must not verify");
    assert!(
        format!("{err:?}").contains("InvalidCertificate"),
        "not a certificate error: {err:?}"
    );

    // Plain HTTP to the HTTPS port gets no HTTP answer.
    let plain: hyper_util::client::legacy::Client<_, http_body_util::Full<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let plain_url = office.url.replacen("https://", "http://", 1);
    let answer = plain
        .request(request(&plain_url, "GET", "/v1/hotlist", None, None))
        .await;
    assert!(
        answer.as_ref().map_or(true, |r| r.status() != 200),
        "plain HTTP answered on the HTTPS port: {answer:?}"
    );
}

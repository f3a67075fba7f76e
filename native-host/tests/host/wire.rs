//! The pipe itself: frames that are oversized, truncated or garbage, JSON that is not
//! JSON, requests that are unknown or malformed, an extension of another protocol
//! version. The host answers each with a clear error and never crashes; it exits
//! cleanly when the browser closes the pipe. (No PC/SC needed.)

use serde_json::json;
use testkit::TestDir;

use crate::harness::{frame, Host};

#[test]
fn an_oversized_frame_gets_an_error_and_the_host_goes_on() {
    let dir = TestDir::new("host-oversized");
    let mut host = Host::spawn(dir.path(), &[]);
    let big = vec![b' '; 64 * 1024 + 1];
    host.send_raw(&frame(&big));
    let e = host.recv();
    assert_eq!(e["code"], "message_too_large", "{e}");
    assert!(e.get("id").is_none());
    // The largest accepted frame is fine (whitespace around a request).
    let mut max = vec![b' '; 64 * 1024];
    let req = br#"{"type":"hello","protocol":1,"id":5}"#;
    max[..req.len()].copy_from_slice(req);
    host.send_raw(&frame(&max));
    assert_eq!(host.reply_to(5)["type"], "hello");
    assert!(host.wait_exit().success());
}

#[test]
fn bad_json_and_bad_requests_get_their_codes() {
    let dir = TestDir::new("host-bad-json");
    let mut host = Host::spawn(dir.path(), &[]);
    for (body, code) in [
        (&b"{\"type\":\"status\""[..], "invalid_json"),
        (b"not json at all", "invalid_json"),
        (b"\xff\xfe\x00", "invalid_json"),
        (b"", "invalid_json"),
        (b"[\"status\"]", "invalid_request"),
        (b"{\"type\":42}", "invalid_request"),
    ] {
        host.send_raw(&frame(body));
        let e = host.recv();
        assert_eq!(e["code"], code, "{:?}: {e}", String::from_utf8_lossy(body));
    }
    // With an id, the error carries it.
    host.send_unchecked(&json!({"type":"launch_missiles","id":"x1"}));
    let e = host.reply_to_text("x1");
    assert_eq!(e["code"], "unknown_command", "{e}");
    host.send_unchecked(&json!({"type":"apdu","id":2,"session":"s"}));
    assert_eq!(host.reply_to(2)["code"], "invalid_request");
    host.send_unchecked(&json!({"type":"status","id":3,"verbose":true}));
    assert_eq!(host.reply_to(3)["code"], "invalid_request");
    host.send_unchecked(&json!({"type":"open_session","id":4,"purpose":"payment",
        "payment":{"mode":"single","unit_amount":100,"max_units":2,"currency":978}}));
    assert_eq!(host.reply_to(4)["code"], "invalid_request");
    // An extension of another protocol version.
    let e = host.expect_error(json!({"type":"hello","protocol":2}), "version_mismatch");
    assert!(e["detail"].as_str().unwrap().contains("[1]"), "{e}");
    // Requests about a session that does not exist.
    host.expect_error(
        json!({"type":"apdu","session":"nope","apdu":"00A4040007F0455055525345"}),
        "no_session",
    );
    host.expect_error(
        json!({"type":"close_session","session":"nope"}),
        "no_session",
    );
    // Still serving.
    assert_eq!(
        host.expect(json!({"type":"held"}), "held")["responses"],
        json!([])
    );
    assert!(host.wait_exit().success());
}

#[test]
fn a_truncated_frame_is_reported_before_the_host_exits() {
    let dir = TestDir::new("host-truncated");
    let mut host = Host::spawn(dir.path(), &[]);
    let f = frame(br#"{"type":"status","id":1}"#);
    host.send_raw(&f[..10]);
    host.close_stdin();
    let e = host.recv();
    assert_eq!(e["code"], "bad_frame", "{e}");
    assert!(e["detail"].as_str().unwrap().contains("6 of 24"), "{e}");
    assert_eq!(host.wait_exit().code(), Some(2));
}

#[test]
fn garbage_on_the_pipe_is_never_read_unboundedly() {
    let dir = TestDir::new("host-garbage");
    let mut host = Host::spawn(dir.path(), &[]);
    // Plain text where a length should be: "GET " claims a ~542 MB message.
    host.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let e = host.recv();
    assert_eq!(e["code"], "message_too_large", "{e}");
    host.close_stdin();
    let e = host.recv();
    assert_eq!(e["code"], "bad_frame", "{e}");
    assert_eq!(host.wait_exit().code(), Some(2));
}

#[test]
fn a_length_prefix_cut_short_is_a_bad_frame() {
    let dir = TestDir::new("host-short-prefix");
    let mut host = Host::spawn(dir.path(), &[]);
    host.send_raw(&[7, 0]);
    host.close_stdin();
    let e = host.recv();
    assert_eq!(e["code"], "bad_frame", "{e}");
    assert_eq!(host.wait_exit().code(), Some(2));
}

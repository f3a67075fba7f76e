//! The service's log when stderr is not a terminal (a pipe here; a file or journald in
//! production): plain text, no ANSI colour codes, even with no `NO_COLOR` set.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use support::server::write_config;
use support::temp_dir;

#[test]
fn serve_logs_plain_text_to_a_pipe() {
    let dir = temp_dir("log-plain");
    let config = write_config(&dir);
    let mut child = Command::new(env!("CARGO_BIN_EXE_shop-plugin"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn shop-plugin serve");
    let stderr = child.stderr.take().expect("stderr");
    // Read up to the line that says it listens (it ends the start-up); a server that
    // exits first ends the stream and fails the test below.
    let mut log = String::new();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        log.push_str(&line);
        log.push('\n');
        if line.contains("listening on ") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(log.contains("listening on "), "{log}");
    assert!(log.contains(" INFO "), "a level in plain text: {log}");
    assert!(!log.contains('\x1b'), "no escape codes: {log:?}");
}

//! The native-messaging host the browser starts: it will own the shopper's card reader
//! through PC/SC and relay purse APDUs under the amount guard (issue 3). Until then it
//! answers every start with a clear refusal on stderr, never on stdout (the framing
//! channel).

fn main() -> std::process::ExitCode {
    eprintln!(
        "native-host {}: not implemented yet; the purse core (crate `purse`) is ready for it",
        env!("CARGO_PKG_VERSION")
    );
    std::process::ExitCode::from(2)
}

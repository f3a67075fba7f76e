//! The shop plugin: the payment service a shop runs beside its checkout. It embeds the
//! SAM and the surrogate of crate `purse` ([`engine`]), keeps payments and the SAM's
//! journal in one SQLite database ([`store`]), and serves the merchant and shopper HTTP
//! APIs ([`http`]). It sends the shop signed [`webhooks`] from a durable outbox, and
//! closes the day's [`settlement`] batch for the clearing office; the process that runs
//! the SAM holds the database's instance lock ([`config::Config::lock_path`]) and answers
//! the operator's commands on its [`admin`] socket.

pub mod admin;
pub mod config;
pub mod engine;
/// Key, card and batch files (one implementation for every binary).
pub use secure_files as files;
pub mod hotlist;
pub mod http;
pub mod outbound;
pub mod payment;
pub mod sam;
pub mod settlement;
pub mod store;
pub mod webhooks;

/// The script shops include in their checkout page.
pub const CHECKOUT_JS: &str = include_str!("../assets/checkout.js");

/// Logs go to stderr (stdout may be a protocol or a report), filtered by `RUST_LOG`
/// (default `info`); plain text, no colour codes, unless stderr is a terminal (a file or
/// journald would keep the escapes). For the binaries of this crate.
pub fn init_logging() {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
}

//! The clearing office as a service: shops upload their SAMs' settlement batches over
//! HTTPS, the office verifies them with the checks of spec section 7
//! (`purse::clearing`, streamed, TACs on all cores) and records each decision in one
//! database transaction on SQLite or PostgreSQL; beyond section 7 it keeps a shadow
//! balance per card (suspected clones, the signed hotlist) and the merchants' payouts.
//!
//! Modules: [`config`], [`keys`], [`db`] (schema, registry, batches, reports),
//! [`intake`] (spool, parse, verify, decide), [`clones`], [`hotlist`], [`http`],
//! [`import`], [`csv_report`] (the CLI's CSV report), [`service`] (wiring for `serve`).

pub mod clones;
pub mod config;
pub mod csv_report;
pub mod db;
pub mod hotlist;
pub mod http;
pub mod import;
pub mod intake;
pub mod keys;
pub mod service;

//! The shop plugin: the payment service a shop runs beside its checkout. It embeds the
//! SAM and the surrogate of crate `purse` ([`engine`]), keeps payments and the SAM's
//! journal in one SQLite database ([`store`]), and serves the merchant and shopper HTTP
//! APIs ([`http`]).

pub mod config;
pub mod engine;
pub mod http;
pub mod payment;
pub mod store;

/// The script shops include in their checkout page.
pub const CHECKOUT_JS: &str = include_str!("../assets/checkout.js");

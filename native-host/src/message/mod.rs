//! The native-messaging protocol, version [`PROTOCOL`]: the requests the extension sends
//! ([`request`]), the replies and events the host sends ([`reply`]), and the card
//! description both share. `schema/native-messaging.schema.json` describes every message
//! on the wire; these types are its single implementation.

pub mod reply;
pub mod request;

use purse::commands::SelectInfo;
use serde::Serialize;

/// The protocol version this host speaks. An extension that says `hello` with another
/// version gets `version_mismatch`.
pub const PROTOCOL: u32 = 1;

/// Every version this host can speak.
pub const SUPPORTED: [u32; 1] = [PROTOCOL];

/// A request's `id`, echoed in its reply: a string or an integer chosen by the extension.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Id {
    Number(i64),
    Text(String),
}

/// A purse card as the shopper sees it (from SELECT: unauthenticated, for display).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CardView {
    pub card_id: String,
    pub key_version: u8,
    pub currency: u16,
    pub currency_code: Option<&'static str>,
    pub balance: u32,
    pub balance_text: String,
    pub nt_last: u32,
}

impl From<&SelectInfo> for CardView {
    fn from(s: &SelectInfo) -> CardView {
        CardView {
            card_id: s.card_id.to_hex(),
            key_version: s.kv.0,
            currency: s.currency.numeric(),
            currency_code: s.currency.alpha(),
            balance: s.balance.0,
            balance_text: s.currency.format(s.balance),
            nt_last: s.nt_last.0,
        }
    }
}

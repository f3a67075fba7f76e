//! Replies and events from the host: each reply carries the `id` of its request; events
//! (a session that ended by itself) carry none. [`Outbound::to_json`] gives the body of
//! one frame.

use purse::commands::TxRecord;
use purse::Mode;
use serde::Serialize;
use serde_json::Value;

use super::{CardView, Id};
use crate::catalogue::{ErrorCode, Failure};
use crate::held::HeldResponse;

/// A reader and whether a card is in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReaderView {
    pub name: String,
    pub card_present: bool,
}

/// The open session, as `status` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionView {
    pub session: String,
    pub purpose: &'static str,
    pub reader: String,
}

/// One of the card's transaction records `R(NT)`, for the shopper's history (the MACs
/// left out: they prove it to the shop's SAM, not to the shopper).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryRecord {
    pub nt: u32,
    pub sam_id: String,
    pub sam_tx_seq: u32,
    /// Unix seconds, from the shop's SAM.
    pub datetime: u32,
    pub mode: &'static str,
    pub unit_amount: u32,
    pub units: u16,
    pub total: u32,
    pub balance_after: u32,
}

impl HistoryRecord {
    /// The record as the shopper sees it; `None` for a mode no purchase has (a card that
    /// does not conform).
    pub fn of(r: &TxRecord) -> Option<HistoryRecord> {
        let mode = match Mode::from_p1(r.mode)? {
            Mode::Single => "single",
            Mode::TimeCycle => "time_cycle",
            Mode::StatusOnly => return None,
        };
        Some(HistoryRecord {
            nt: r.nt.0,
            sam_id: r.sam_id.to_hex(),
            sam_tx_seq: r.sam_tx_seq.0,
            datetime: r.datetime.0,
            mode,
            unit_amount: r.u.0,
            units: r.units.0,
            total: r.total.0,
            balance_after: r.balance_after.0,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PcscState {
    Up,
    Down,
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The extension closed it.
    Closed,
    CardRemoved,
    Timeout,
    UserCancelled,
    /// The reader or the PC/SC service failed.
    CardError,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    Hello {
        protocol: u32,
        supported: Vec<u32>,
        host: &'static str,
        version: &'static str,
    },
    Status {
        pcsc: PcscState,
        readers: Vec<ReaderView>,
        session: Option<SessionView>,
        held: usize,
    },
    CardInfo {
        reader: String,
        card: CardView,
    },
    CardHistory {
        reader: String,
        card: CardView,
        /// Newest first.
        records: Vec<HistoryRecord>,
    },
    CardEvent {
        reader: String,
        present: bool,
    },
    SessionOpened {
        session: String,
        purpose: &'static str,
        reader: String,
        card: CardView,
        /// How long the session is held without a request (for a time-cycle at least
        /// its period and a margin).
        idle_timeout_ms: u64,
    },
    Apdu {
        session: String,
        response: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        held_id: Option<String>,
    },
    SessionClosed {
        session: String,
        reason: CloseReason,
    },
    Cancelled {
        session: Option<String>,
    },
    Held {
        responses: Vec<HeldResponse>,
    },
    Acked {
        held_id: String,
        removed: bool,
    },
    Error {
        code: ErrorCode,
        message: &'static str,
        detail: String,
    },
}

impl Reply {
    pub fn error(f: &Failure) -> Reply {
        Reply::Error {
            code: f.code,
            message: f.code.sentence(),
            detail: f.detail.clone(),
        }
    }
}

/// A message to the extension: a reply to the request `id`, or an event (`id: None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outbound {
    pub id: Option<Id>,
    pub reply: Reply,
}

impl Outbound {
    /// The JSON body of the frame.
    pub fn to_json(&self) -> Vec<u8> {
        let mut v = match serde_json::to_value(&self.reply) {
            Ok(v) => v,
            // Our own types always serialize; keep a reply going out whatever happens.
            Err(e) => serde_json::json!({
                "type": "error",
                "code": ErrorCode::Internal,
                "message": ErrorCode::Internal.sentence(),
                "detail": format!("serializing a reply: {e}"),
            }),
        };
        if let (Some(id), Value::Object(map)) = (&self.id, &mut v) {
            let id = match id {
                Id::Number(n) => Value::from(*n),
                Id::Text(s) => Value::from(s.clone()),
            };
            map.insert("id".into(), id);
        }
        serde_json::to_vec(&v).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_carry_type_and_id() {
        let o = Outbound {
            id: Some(Id::Number(4)),
            reply: Reply::CardEvent {
                reader: "R".into(),
                present: true,
            },
        };
        let v: Value = serde_json::from_slice(&o.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"card_event","id":4,"reader":"R","present":true})
        );
    }

    #[test]
    fn errors_carry_code_sentence_and_detail() {
        let o = Outbound {
            id: None,
            reply: Reply::error(&Failure::new(ErrorCode::Busy, "reader X is held")),
        };
        let v: Value = serde_json::from_slice(&o.to_json()).unwrap();
        assert_eq!(v["code"], "busy");
        assert_eq!(v["message"], ErrorCode::Busy.sentence());
        assert_eq!(v["detail"], "reader X is held");
        assert!(v.get("id").is_none());
    }
}

//! Requests from the extension: parsing a frame's body into a typed, validated
//! [`Request`], or into the [`Failure`] its error reply names. Pure and total: any bytes
//! give one or the other, never a panic.

use std::time::Duration;

use purse::{Amount, Currency, Mode, Nt, Units};
use serde::Deserialize;
use serde_json::Value;

use super::Id;
use crate::catalogue::{ErrorCode, Failure};
use crate::guard::{Confirmed, Period, Purpose};

/// The longest APDU the guard looks at: a short APDU is at most 261 bytes.
pub const MAX_APDU: usize = 261;
/// The longest wait for a card the extension may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(600);
/// How long an idle session holds the card when the extension does not say.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(120);
/// The longest idle time a session may ask for. A time-cycle session is held at least
/// its period and [`crate::guard::IDLE_MARGIN`] whatever it asks ([`idle_limit`]).
pub const MAX_IDLE: Duration = Duration::from_secs(3600);
/// The longest string field (reader names, ids).
const MAX_TEXT: usize = 256;

/// A valid request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Hello {
        protocol: u32,
        client: Option<String>,
    },
    Status,
    CardInfo {
        reader: Option<String>,
    },
    /// The card's own recent transactions, read by the host itself (see
    /// [`crate::serve`]'s `card_history`): never an APDU chosen by the extension.
    CardHistory {
        reader: Option<String>,
    },
    WaitCard {
        reader: Option<String>,
        present: bool,
        timeout: Duration,
    },
    OpenSession {
        reader: Option<String>,
        purpose: Purpose,
        idle_timeout: Duration,
    },
    Apdu {
        session: String,
        apdu: Vec<u8>,
    },
    CloseSession {
        session: String,
    },
    Cancel,
    Held,
    Ack {
        held_id: String,
    },
}

impl Request {
    /// The wire name of the request type (for logs).
    pub fn name(&self) -> &'static str {
        match self {
            Request::Hello { .. } => "hello",
            Request::Status => "status",
            Request::CardInfo { .. } => "card_info",
            Request::CardHistory { .. } => "card_history",
            Request::WaitCard { .. } => "wait_card",
            Request::OpenSession { .. } => "open_session",
            Request::Apdu { .. } => "apdu",
            Request::CloseSession { .. } => "close_session",
            Request::Cancel => "cancel",
            Request::Held => "held",
            Request::Ack { .. } => "ack",
        }
    }
}

/// A parsed frame: the id (when one could be read) and the request or what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub id: Option<Id>,
    pub request: Result<Request, Failure>,
}

const TYPES: [&str; 11] = [
    "hello",
    "status",
    "card_info",
    "card_history",
    "wait_card",
    "open_session",
    "apdu",
    "close_session",
    "cancel",
    "held",
    "ack",
];

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Wire {
    Hello {
        protocol: u32,
        client: Option<String>,
    },
    Status {},
    CardInfo {
        reader: Option<String>,
    },
    CardHistory {
        reader: Option<String>,
    },
    WaitCard {
        reader: Option<String>,
        #[serde(default = "yes")]
        present: bool,
        timeout_ms: u64,
    },
    OpenSession {
        reader: Option<String>,
        purpose: WirePurpose,
        payment: Option<WirePayment>,
        recovery: Option<WireRecovery>,
        idle_timeout_ms: Option<u64>,
    },
    Apdu {
        session: String,
        apdu: String,
    },
    CloseSession {
        session: String,
    },
    Cancel {},
    Held {},
    Ack {
        held_id: String,
    },
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum WirePurpose {
    Payment,
    Recovery,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum WireMode {
    Single,
    TimeCycle,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WirePayment {
    mode: WireMode,
    unit_amount: u32,
    max_units: u16,
    currency: u16,
    period_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireRecovery {
    /// The NT of the payment being recovered (from the card's INITIALIZE answer).
    nt: u32,
}

fn invalid(detail: impl Into<String>) -> Failure {
    Failure::new(ErrorCode::InvalidRequest, detail)
}

/// Parses one frame's body.
pub fn parse(body: &[u8]) -> Parsed {
    let value: Value = match std::str::from_utf8(body)
        .map_err(|e| format!("not UTF-8: {e}"))
        .and_then(|s| serde_json::from_str(s).map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            return Parsed {
                id: None,
                request: Err(Failure::new(ErrorCode::InvalidJson, e)),
            }
        }
    };
    let Value::Object(mut map) = value else {
        return Parsed {
            id: None,
            request: Err(invalid("a request is a JSON object")),
        };
    };
    let id = match map.remove("id") {
        None => Ok(None),
        Some(v) => parse_id(v).map(Some),
    };
    let (id, request) = match id {
        Ok(id) => (id, typed(Value::Object(map))),
        Err(f) => (None, Err(f)),
    };
    Parsed { id, request }
}

fn parse_id(v: Value) -> Result<Id, Failure> {
    match v {
        Value::String(s) if s.len() <= 64 => Ok(Id::Text(s)),
        Value::Number(n) => n
            .as_i64()
            .map(Id::Number)
            .ok_or_else(|| invalid("id must be an integer or a string of at most 64 bytes")),
        _ => Err(invalid(
            "id must be an integer or a string of at most 64 bytes",
        )),
    }
}

fn typed(value: Value) -> Result<Request, Failure> {
    match value.get("type") {
        Some(Value::String(t)) if TYPES.contains(&t.as_str()) => {}
        Some(Value::String(t)) => {
            let shown: String = t.chars().take(40).collect();
            return Err(Failure::new(
                ErrorCode::UnknownCommand,
                format!("unknown request type '{shown}'"),
            ));
        }
        _ => return Err(invalid("a request needs a string 'type'")),
    }
    let wire: Wire = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
    validate(wire)
}

fn text(field: &str, s: String) -> Result<String, Failure> {
    if s.is_empty() || s.len() > MAX_TEXT {
        return Err(invalid(format!("{field} must have 1 to {MAX_TEXT} bytes")));
    }
    Ok(s)
}

fn opt_text(field: &str, s: Option<String>) -> Result<Option<String>, Failure> {
    s.map(|s| text(field, s)).transpose()
}

fn millis(field: &str, ms: u64, max: Duration) -> Result<Duration, Failure> {
    let d = Duration::from_millis(ms);
    if d > max {
        return Err(invalid(format!(
            "{field} is at most {} ms",
            max.as_millis()
        )));
    }
    Ok(d)
}

fn validate(wire: Wire) -> Result<Request, Failure> {
    Ok(match wire {
        Wire::Hello { protocol, client } => Request::Hello {
            protocol,
            client: opt_text("client", client)?,
        },
        Wire::Status {} => Request::Status,
        Wire::CardInfo { reader } => Request::CardInfo {
            reader: opt_text("reader", reader)?,
        },
        Wire::CardHistory { reader } => Request::CardHistory {
            reader: opt_text("reader", reader)?,
        },
        Wire::WaitCard {
            reader,
            present,
            timeout_ms,
        } => Request::WaitCard {
            reader: opt_text("reader", reader)?,
            present,
            timeout: millis("timeout_ms", timeout_ms, MAX_WAIT)?,
        },
        Wire::OpenSession {
            reader,
            purpose,
            payment,
            recovery,
            idle_timeout_ms,
        } => {
            let purpose = open_purpose(purpose, payment, recovery)?;
            let asked = match idle_timeout_ms {
                Some(ms) if ms > 0 => millis("idle_timeout_ms", ms, MAX_IDLE)?,
                Some(_) => return Err(invalid("idle_timeout_ms must be positive")),
                None => DEFAULT_IDLE,
            };
            Request::OpenSession {
                reader: opt_text("reader", reader)?,
                purpose,
                idle_timeout: idle_limit(purpose, asked),
            }
        }
        Wire::Apdu { session, apdu } => {
            if apdu.len() > 2 * MAX_APDU {
                return Err(invalid(format!("an APDU has at most {MAX_APDU} bytes")));
            }
            let bytes = hex::decode(&apdu).map_err(|e| invalid(format!("apdu is not hex: {e}")))?;
            Request::Apdu {
                session: text("session", session)?,
                apdu: bytes,
            }
        }
        Wire::CloseSession { session } => Request::CloseSession {
            session: text("session", session)?,
        },
        Wire::Cancel {} => Request::Cancel,
        Wire::Held {} => Request::Held,
        Wire::Ack { held_id } => Request::Ack {
            held_id: text("held_id", held_id)?,
        },
    })
}

/// The purpose of a session from its wire fields: a payment carries exactly what the
/// shopper confirmed, a recovery the NT it is about; neither takes the other's.
fn open_purpose(
    purpose: WirePurpose,
    payment: Option<WirePayment>,
    recovery: Option<WireRecovery>,
) -> Result<Purpose, Failure> {
    match (purpose, payment, recovery) {
        (WirePurpose::Payment, Some(p), None) => {
            let currency = Currency::from_numeric(p.currency)
                .map_err(|e| invalid(format!("payment.currency: {e}")))?;
            let period = p
                .period_seconds
                .map(Period::from_secs)
                .transpose()
                .map_err(|e| invalid(format!("payment: {e}")))?;
            let c = Confirmed {
                mode: match p.mode {
                    WireMode::Single => Mode::Single,
                    WireMode::TimeCycle => Mode::TimeCycle,
                },
                unit_amount: Amount(p.unit_amount),
                max_units: Units(p.max_units),
                currency,
                period,
            };
            c.validate().map_err(|e| invalid(format!("payment: {e}")))?;
            Ok(Purpose::Payment(c))
        }
        (WirePurpose::Payment, None, _) => {
            Err(invalid("a payment session needs the confirmed 'payment'"))
        }
        (WirePurpose::Payment, Some(_), Some(_)) => {
            Err(invalid("a payment session takes no 'recovery'"))
        }
        (WirePurpose::Recovery, None, Some(r)) => Ok(Purpose::Recovery { nt: Nt(r.nt) }),
        (WirePurpose::Recovery, None, None) => Err(invalid(
            "a recovery session needs 'recovery': the NT of the payment it recovers",
        )),
        (WirePurpose::Recovery, Some(_), _) => {
            Err(invalid("a recovery session takes no 'payment'"))
        }
    }
}

/// How long a session is held without a request: what it asked (or the default), and
/// for a time-cycle at least its period and [`crate::guard::IDLE_MARGIN`], so the
/// longest period (an hour) still reaches its next tick.
pub fn idle_limit(purpose: Purpose, asked: Duration) -> Duration {
    match purpose {
        Purpose::Payment(Confirmed {
            period: Some(p), ..
        }) => asked.max(p.idle_floor()),
        _ => asked,
    }
}

#[cfg(test)]
mod tests;

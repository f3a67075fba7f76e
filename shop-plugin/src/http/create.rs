//! The create-payment request (`POST /v1/payments`), parsed at the boundary into the
//! engine's [`NewPayment`], as the OpenAPI document says: an integer is a JSON number
//! with no fractional part (JSON Schema's `integer`: `185`, `185.0` and `1.85e2` are all
//! 185; `185.5` is refused: amounts are minor units, never fractions), the currency is
//! text, every number within its documented range.

use purse::sam::Order;
use purse::{Amount, Currency, Mode, Units};
use serde_json::Value;

use crate::engine::{ApiError, NewPayment};

const MAX_TEXT: usize = 1000;
/// The longest time-cycle period: the shopper's native host idles at most an hour
/// between ticks, so a longer period could never be ticked.
pub const MAX_PERIOD_SECONDS: u64 = 3600;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_request", message)
}

fn text(body: &Value, field: &str) -> Result<Option<String>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() <= MAX_TEXT => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(invalid(format!("{field} is longer than {MAX_TEXT} bytes"))),
        Some(_) => Err(invalid(format!("{field} must be a string"))),
    }
}

fn url(body: &Value, field: &str) -> Result<Option<String>, ApiError> {
    let u = text(body, field)?;
    if let Some(u) = &u {
        if !(u.starts_with("https://") || u.starts_with("http://")) {
            return Err(invalid(format!("{field} must be an http(s) URL")));
        }
    }
    Ok(u)
}

/// The largest integer a JSON number written with a fraction or exponent holds exactly.
const EXACT_IN_F64: f64 = 9_007_199_254_740_992.0;

/// A JSON number with no fractional part, if it is one from 0 up.
pub fn whole(n: &serde_json::Number) -> Option<u64> {
    n.as_u64().or_else(|| {
        let f = n.as_f64()?;
        (f.fract() == 0.0 && (0.0..=EXACT_IN_F64).contains(&f)).then_some(f as u64)
    })
}

/// A whole number from 1 to `max`.
pub fn uint(body: &Value, field: &str, max: u64) -> Result<u64, ApiError> {
    match body.get(field) {
        Some(Value::Number(n)) => match whole(n) {
            Some(v) if (1..=max).contains(&v) => Ok(v),
            _ => Err(invalid(format!(
                "{field} must be a whole number from 1 to {max} (amounts are in minor units)"
            ))),
        },
        None | Some(Value::Null) => Err(invalid(format!("{field} is required"))),
        Some(_) => Err(invalid(format!("{field} must be a number"))),
    }
}

fn currency(body: &Value) -> Result<Currency, ApiError> {
    match body.get("currency") {
        Some(Value::String(s)) => Currency::parse(s).map_err(|e| invalid(e.to_string())),
        None | Some(Value::Null) => Err(invalid("currency is required (ISO 4217, e.g. \"EUR\")")),
        Some(_) => Err(invalid(
            "currency must be a string: the ISO 4217 code (\"EUR\"), or its numeric code as text (\"978\")",
        )),
    }
}

fn order(body: &Value) -> Result<Order, ApiError> {
    let mode = match body.get("mode") {
        None | Some(Value::Null) => "single",
        Some(Value::String(m)) => m.as_str(),
        Some(_) => return Err(invalid("mode must be \"single\" or \"time_cycle\"")),
    };
    match mode {
        "single" => Ok(Order::single(Amount(
            uint(body, "amount", u64::from(u32::MAX))? as u32,
        ))),
        "time_cycle" => {
            let tc = match body.get("time_cycle") {
                Some(tc @ Value::Object(_)) => tc,
                _ => {
                    return Err(invalid(
                        "time_cycle {unit_amount, period_seconds, max_units} is required",
                    ))
                }
            };
            Ok(Order {
                mode: Mode::TimeCycle,
                unit_amount: Amount(uint(tc, "unit_amount", u64::from(u32::MAX))? as u32),
                max_units: Units(uint(tc, "max_units", u64::from(u16::MAX))? as u16),
                period_secs: uint(tc, "period_seconds", MAX_PERIOD_SECONDS)? as u32,
            })
        }
        other => Err(invalid(format!(
            "mode '{other}' is not single or time_cycle"
        ))),
    }
}

/// Parses the create request into the shop's order.
pub fn parse_new(body: &Value) -> Result<NewPayment, ApiError> {
    Ok(NewPayment {
        currency: currency(body)?,
        order: order(body)?,
        order_ref: text(body, "order_reference")?,
        description: text(body, "description")?,
        return_url: url(body, "return_url")?,
        notify_url: url(body, "notify_url")?,
    })
}

//! Query strings (percent-decoded by `serde_urlencoded`; a parameter the operation does
//! not take is `400 unknown_parameter`, one given twice `400 invalid_request`) and the
//! merchant's list of payments (`GET /v1/payments`), with its filters and cursor.

use std::sync::Arc;

use axum::extract::State;
use hyper::Uri;
use serde_json::{json, Value};

use super::{json_response, App, Resp};
use crate::engine::ApiError;
use crate::payment::Status;
use crate::store::rows::{self, ListFilter};

/// The parameters of a query string, decoded; refuses names not in `allowed`, and
/// repeated names.
pub fn query(uri: &Uri, allowed: &[&str]) -> Result<Vec<(String, String)>, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(uri.query().unwrap_or(""))
        .map_err(|e| ApiError::bad_request("invalid_request", format!("the query string: {e}")))?;
    for (i, (name, _)) in pairs.iter().enumerate() {
        if !allowed.contains(&name.as_str()) {
            let takes = if allowed.is_empty() {
                "none".to_string()
            } else {
                allowed.join(", ")
            };
            return Err(ApiError::bad_request(
                "unknown_parameter",
                format!("unknown query parameter '{name}' (this operation takes: {takes})"),
            ));
        }
        if pairs[..i].iter().any(|(n, _)| n == name) {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!("the query parameter '{name}' is given more than once"),
            ));
        }
    }
    Ok(pairs)
}

/// The value of `name` among decoded parameters.
pub fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

const LIST_PARAMS: [&str; 6] = [
    "status",
    "order_reference",
    "created_gte",
    "created_lt",
    "starting_after",
    "limit",
];

/// An integer parameter from `min` to `max` (as the document bounds it).
fn int(
    pairs: &[(String, String)],
    name: &str,
    min: i64,
    max: i64,
) -> Result<Option<i64>, ApiError> {
    param(pairs, name)
        .map(|v| match v.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_request(
                "invalid_request",
                format!("{name} must be a whole number from {min} to {max}"),
            )),
        })
        .transpose()
}

pub async fn list(State(app): State<Arc<App>>, uri: Uri) -> Result<Resp, ApiError> {
    let q = query(&uri, &LIST_PARAMS)?;
    let limit = int(&q, "limit", 1, 100)?.unwrap_or(20);
    let status = param(&q, "status")
        .map(|s| {
            Status::parse(s).ok_or_else(|| {
                ApiError::bad_request("invalid_request", format!("unknown status '{s}'"))
            })
        })
        .transpose()?;
    let starting_after = param(&q, "starting_after").map(str::to_string);
    if let Some(id) = starting_after.clone() {
        let known = app
            .engine
            .store()
            .read(move |c| rows::load_payment(c, &id))
            .await
            .map_err(|_| ApiError::unavailable())?
            .is_some();
        if !known {
            return Err(ApiError::bad_request(
                "invalid_cursor",
                "starting_after names no payment of this shop (pass the id of the last \
                 payment of the previous page)",
            ));
        }
    }
    let f = ListFilter {
        status,
        order_ref: param(&q, "order_reference").map(str::to_string),
        created_gte: int(&q, "created_gte", 0, i64::MAX)?,
        created_lt: int(&q, "created_lt", 0, i64::MAX)?,
        starting_after,
        limit: limit as u32 + 1,
    };
    let mut items = app
        .engine
        .store()
        .read(move |c| rows::list_payments(c, &f))
        .await
        .map_err(|_| ApiError::unavailable())?;
    let has_more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let data: Vec<Value> = items.iter().map(|p| p.merchant_view()).collect();
    Ok(json_response(
        200,
        &json!({ "object": "list", "data": data, "has_more": has_more }),
    ))
}

//! The merchant API (server to server, `Authorization: Bearer <API key>`): create a
//! payment (with an `Idempotency-Key`), read, list, cancel.

use hyper::body::Incoming;
use hyper::{Method, Request};
use purse::sam::Order;
use purse::{Amount, Currency, Mode, Units};
use serde_json::{json, Value};

use super::{json_response, read_json, App, Resp};
use crate::engine::{sha256_hex, ApiError, NewPayment};
use crate::payment::Status;
use crate::store::rows::{self, Idempotent, ListFilter};

const MAX_TEXT: usize = 1000;

fn authorize(app: &App, req: &hyper::http::request::Parts) -> Result<(), ApiError> {
    let key = req
        .headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // The auth scheme is case-insensitive (RFC 9110 11.1).
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim())
        .ok_or_else(|| {
            ApiError::new(
                401,
                "unauthorized",
                "send the API key as 'Authorization: Bearer <key>'",
            )
        })?;
    let h = sha256_hex(key.as_bytes());
    // Compare against every key, in constant time each, so timing tells nothing.
    let ok = app.api_key_hashes.iter().fold(false, |acc, k| {
        acc | (k.len() == h.len()
            && k.bytes().zip(h.bytes()).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0)
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            401,
            "unauthorized",
            "the API key is not valid",
        ))
    }
}

pub async fn handle(app: &App, req: Request<Incoming>, rest: &[&str]) -> Result<Resp, ApiError> {
    let method = req.method().clone();
    let query = req.uri().query().unwrap_or("").to_string();
    let (parts, bytes, body) = read_json(req).await?;
    authorize(app, &parts)?;
    match (method, rest) {
        (Method::POST, []) => create(app, &parts, &bytes, &body).await,
        (Method::GET, []) => list(app, &query).await,
        (Method::GET, [id]) => {
            let p = app.engine.load_current(id).await?;
            Ok(json_response(200, &p.merchant_view()))
        }
        (Method::POST, [id, "cancel"]) => {
            let p = app.engine.cancel(id).await?;
            Ok(json_response(200, &p.merchant_view()))
        }
        (_, [] | [_] | [_, "cancel"]) => Err(ApiError::new(
            405,
            "method_not_allowed",
            "method not allowed on this route",
        )),
        _ => Err(ApiError::not_found("route")),
    }
}

fn text(body: &Value, field: &str) -> Result<Option<String>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() <= MAX_TEXT => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(ApiError::bad_request(
            "invalid_request",
            format!("{field} is longer than {MAX_TEXT} bytes"),
        )),
        Some(_) => Err(ApiError::bad_request(
            "invalid_request",
            format!("{field} must be a string"),
        )),
    }
}

fn url(body: &Value, field: &str) -> Result<Option<String>, ApiError> {
    let u = text(body, field)?;
    if let Some(u) = &u {
        if !(u.starts_with("https://") || u.starts_with("http://")) {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!("{field} must be an http(s) URL"),
            ));
        }
    }
    Ok(u)
}

/// A positive integer below 2^32 (amounts are minor units: never floats).
fn uint(body: &Value, field: &str, max: u64) -> Result<u64, ApiError> {
    match body.get(field) {
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if v >= 1 && v <= max => Ok(v),
            _ => Err(ApiError::bad_request(
                "invalid_request",
                format!(
                    "{field} must be a whole number from 1 to {max} (amounts are in minor units)"
                ),
            )),
        },
        None => Err(ApiError::bad_request(
            "invalid_request",
            format!("{field} is required"),
        )),
        Some(_) => Err(ApiError::bad_request(
            "invalid_request",
            format!("{field} must be a number"),
        )),
    }
}

/// Parses the create request into the shop's order.
fn parse_new(body: &Value) -> Result<NewPayment, ApiError> {
    let currency = match body.get("currency") {
        Some(Value::String(s)) => Currency::parse(s)
            .map_err(|e| ApiError::bad_request("invalid_request", e.to_string()))?,
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .and_then(|n| Currency::from_numeric(n).ok())
            .ok_or_else(|| {
                ApiError::bad_request("invalid_request", "currency is not an ISO 4217 code")
            })?,
        _ => {
            return Err(ApiError::bad_request(
                "invalid_request",
                "currency is required (ISO 4217, e.g. \"EUR\")",
            ))
        }
    };
    let mode = body.get("mode").and_then(Value::as_str).unwrap_or("single");
    let order = match mode {
        "single" => Order::single(Amount(uint(body, "amount", u64::from(u32::MAX))? as u32)),
        "time_cycle" => {
            let tc = body.get("time_cycle").ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_request",
                    "time_cycle {unit_amount, period_seconds, max_units} is required",
                )
            })?;
            Order {
                mode: Mode::TimeCycle,
                unit_amount: Amount(uint(tc, "unit_amount", u64::from(u32::MAX))? as u32),
                max_units: Units(uint(tc, "max_units", u64::from(u16::MAX))? as u16),
                period_secs: uint(tc, "period_seconds", 86_400 * 31)? as u32,
            }
        }
        other => {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!("mode '{other}' is not single or time_cycle"),
            ))
        }
    };
    Ok(NewPayment {
        currency,
        order,
        order_ref: text(body, "order_reference")?,
        description: text(body, "description")?,
        return_url: url(body, "return_url")?,
        notify_url: url(body, "notify_url")?,
    })
}

async fn create(
    app: &App,
    parts: &hyper::http::request::Parts,
    bytes: &[u8],
    body: &Value,
) -> Result<Resp, ApiError> {
    let key = parts
        .headers
        .get("idempotency-key")
        .map(|v| v.to_str().map(str::to_string))
        .transpose()
        .map_err(|_| ApiError::bad_request("invalid_request", "Idempotency-Key must be text"))?;
    if key.as_ref().is_some_and(|k| k.is_empty() || k.len() > 255) {
        return Err(ApiError::bad_request(
            "invalid_request",
            "Idempotency-Key must be 1 to 255 characters",
        ));
    }
    let Some(key) = key else {
        let req = parse_new(body)?;
        let (p, secret) = app.engine.new_payment(req)?;
        app.engine
            .durable(app.engine.store().submit(app.engine.create_ops(&p)))
            .await?;
        return Ok(json_response(201, &created_body(app, &p, &secret)));
    };
    // One request per key at a time; the first response is kept for every retry.
    let _g = app.engine.lock(&format!("idempotency:{key}")).await;
    let body_hash = sha256_hex(bytes);
    let k2 = key.clone();
    let stored = app
        .engine
        .store()
        .read(move |c| rows::get_idempotent(c, &k2))
        .await
        .map_err(|_| ApiError::unavailable())?;
    if let Some(s) = stored {
        if s.body_hash != body_hash {
            return Err(ApiError::conflict(
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different request body",
            ));
        }
        let v: Value = serde_json::from_str(&s.response).unwrap_or(Value::Null);
        let mut r = json_response(s.status, &v);
        r.headers_mut().insert(
            "idempotent-replayed",
            hyper::header::HeaderValue::from_static("true"),
        );
        return Ok(r);
    }
    let req = parse_new(body)?;
    let (p, secret) = app.engine.new_payment(req)?;
    let response = created_body(app, &p, &secret);
    let mut ops = app.engine.create_ops(&p);
    ops.push(rows::put_idempotent(
        key,
        Idempotent {
            body_hash,
            status: 201,
            response: response.to_string(),
        },
        app.engine.now(),
    ));
    app.engine.durable(app.engine.store().submit(ops)).await?;
    Ok(json_response(201, &response))
}

fn created_body(app: &App, p: &crate::payment::Payment, secret: &str) -> Value {
    let mut v = p.merchant_view();
    v["client_secret"] = json!(secret);
    v["client_secret_expires_at"] = json!(p.secret_expires_at);
    v["initialize"] = app.engine.initialize_commands(p).unwrap_or(Value::Null);
    v
}

fn query_param<'a>(q: &'a str, name: &str) -> Option<&'a str> {
    q.split('&')
        .find_map(|kv| kv.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
}

async fn list(app: &App, q: &str) -> Result<Resp, ApiError> {
    let int = |name: &str| -> Result<Option<i64>, ApiError> {
        query_param(q, name)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::bad_request("invalid_request", format!("{name} must be an integer"))
                })
            })
            .transpose()
    };
    let limit = int("limit")?.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_request",
            "limit must be from 1 to 100",
        ));
    }
    let status = query_param(q, "status")
        .map(|s| {
            Status::parse(s).ok_or_else(|| {
                ApiError::bad_request("invalid_request", format!("unknown status '{s}'"))
            })
        })
        .transpose()?;
    let f = ListFilter {
        status,
        order_ref: query_param(q, "order_reference").map(str::to_string),
        created_gte: int("created_gte")?,
        created_lt: int("created_lt")?,
        starting_after: query_param(q, "starting_after").map(str::to_string),
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

//! The shopper API, called by checkout.js from the shop's page: authorised by the
//! payment's client secret, open by CORS to the shop's configured origins only.
//! Recovery needs no secret: the card's MACs authenticate everything it takes.

use hyper::body::Incoming;
use hyper::header::{HeaderValue, ORIGIN};
use hyper::{Method, Request};
use purse::{CardId, KeyVersion};
use serde_json::Value;

use super::{error_response, json_response, read_json, App, Resp};
use crate::engine::ApiError;

/// The header in which the purse extension names the page it pays for: the page's
/// origin as the browser reported it to the extension (docs/checkout-protocol.md).
pub const PAGE_ORIGIN: &str = "purse-page-origin";

/// Origins of browser extensions (their requests carry the extension's own origin).
fn is_extension_origin(o: &str) -> bool {
    [
        "chrome-extension://",
        "moz-extension://",
        "safari-web-extension://",
    ]
    .iter()
    .any(|s| o.starts_with(s))
}

/// The CORS headers for an allowed origin; `None` when the origin is not allowed.
/// A page must be one of the shop's origins. The purse extension may call on behalf of
/// such a page (it keeps card answers past the page's life and delivers them again), so
/// an extension origin is let through when it names an allowed page, and for preflights.
fn cors_origin(
    app: &App,
    headers: &hyper::HeaderMap,
    preflight: bool,
) -> Result<Option<HeaderValue>, ApiError> {
    let Some(origin) = headers.get(ORIGIN) else {
        return Ok(None); // Not a browser cross-origin request (e.g. curl): no CORS headers.
    };
    let allowed = |o: &str| app.allowed_origins.iter().any(|a| a == o);
    let o = origin.to_str().unwrap_or("");
    if allowed(o) {
        return Ok(Some(origin.clone()));
    }
    if is_extension_origin(o) {
        let page = headers.get(PAGE_ORIGIN).and_then(|v| v.to_str().ok());
        if preflight || page.is_some_and(allowed) {
            return Ok(Some(origin.clone()));
        }
        return Err(ApiError::new(
            403,
            "origin_not_allowed",
            format!(
                "the page origin '{}' may not use this shop's checkout",
                page.unwrap_or("(none: send the Purse-Page-Origin header)")
            ),
        ));
    }
    Err(ApiError::new(
        403,
        "origin_not_allowed",
        format!("the origin '{o}' may not use this shop's checkout"),
    ))
}

fn with_cors(mut r: Resp, origin: Option<HeaderValue>) -> Resp {
    if let Some(o) = origin {
        let h = r.headers_mut();
        h.insert("access-control-allow-origin", o);
        h.insert("vary", HeaderValue::from_static("Origin"));
        h.insert(
            "access-control-allow-methods",
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        h.insert(
            "access-control-allow-headers",
            HeaderValue::from_static("content-type, purse-page-origin"),
        );
        h.insert("access-control-max-age", HeaderValue::from_static("600"));
    }
    r
}

pub async fn handle(app: &App, req: Request<Incoming>, rest: &[&str]) -> Result<Resp, ApiError> {
    let method = req.method().clone();
    let origin = cors_origin(app, req.headers(), method == Method::OPTIONS)?;
    if method == Method::OPTIONS {
        let mut r = json_response(204, &Value::Null);
        *r.body_mut() = http_body_util::Full::new(bytes::Bytes::new());
        return Ok(with_cors(r, origin));
    }
    let query = req.uri().query().unwrap_or("").to_string();
    let (_, _, body) = read_json(req).await?;
    let r = match dispatch(app, &method, rest, &query, &body).await {
        Ok(v) => json_response(200, &v),
        Err(e) => error_response(&e),
    };
    Ok(with_cors(r, origin))
}

fn secret<'a>(body: &'a Value, query: &'a str) -> Result<&'a str, ApiError> {
    body.get("client_secret")
        .and_then(Value::as_str)
        .or_else(|| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix("client_secret="))
        })
        .ok_or_else(|| ApiError::new(401, "client_secret_required", "client_secret is required"))
}

/// A card answer field: a hex string, or `null` for a failed exchange.
fn answer_of(v: Option<&Value>) -> Result<Option<String>, ApiError> {
    match v {
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Null) => Ok(None),
        None => Err(ApiError::bad_request(
            "invalid_request",
            "response is required: the card's answer in hex, or null if the exchange failed",
        )),
        Some(_) => Err(ApiError::bad_request(
            "invalid_request",
            "response must be hex text or null",
        )),
    }
}

/// An optional `answer: {response}` (time-cycle steps may carry the previous answer).
fn optional_answer(body: &Value) -> Result<Option<Option<String>>, ApiError> {
    match body.get("answer") {
        None | Some(Value::Null) => Ok(None),
        Some(a) => Ok(Some(answer_of(a.get("response"))?)),
    }
}

async fn dispatch(
    app: &App,
    method: &Method,
    rest: &[&str],
    query: &str,
    body: &Value,
) -> Result<Value, ApiError> {
    let e = &app.engine;
    match (method, rest) {
        (&Method::GET, ["payments", id]) => {
            let p = e.load_current(id).await?;
            e_check(e, &p, secret(body, query)?)?;
            Ok(p.shopper_view(e.initialize_commands(&p)))
        }
        (&Method::POST, ["payments", id, "initialize"]) => {
            let kv = body
                .get("kv")
                .and_then(Value::as_u64)
                .and_then(|k| u8::try_from(k).ok())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_request",
                        "kv (the card's key version from SELECT) is required",
                    )
                })?;
            let Some(answer) = answer_of(body.get("response"))? else {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    "the INITIALIZE answer is required",
                ));
            };
            Ok(e.initialize(id, secret(body, query)?, kv, answer)
                .await?
                .body(e))
        }
        (&Method::POST, ["payments", id, "answer"]) => {
            let a = answer_of(body.get("response"))?;
            Ok(e.answer(id, secret(body, query)?, a).await?.body(e))
        }
        (&Method::POST, ["payments", id, "tick"]) => Ok(e
            .tick(id, secret(body, query)?, optional_answer(body)?)
            .await?
            .body(e)),
        (&Method::POST, ["payments", id, "stop"]) => Ok(e
            .stop(id, secret(body, query)?, optional_answer(body)?)
            .await?
            .body(e)),
        (&Method::POST, ["recoveries"]) => {
            let card = body
                .get("card_id")
                .and_then(Value::as_str)
                .and_then(|s| CardId::from_hex(s).ok())
                .ok_or_else(|| {
                    ApiError::bad_request("invalid_request", "card_id (16 hex digits) is required")
                })?;
            let kv = body
                .get("kv")
                .and_then(Value::as_u64)
                .and_then(|k| u8::try_from(k).ok())
                .ok_or_else(|| ApiError::bad_request("invalid_request", "kv is required"))?;
            e.start_recovery(card, KeyVersion(kv)).await
        }
        (&Method::POST, ["recoveries", id]) => {
            e.recovery_answer(id, answer_of(body.get("response"))?)
                .await
        }
        _ => Err(ApiError::not_found("route")),
    }
}

fn e_check(
    e: &crate::engine::Engine,
    p: &crate::payment::Payment,
    secret: &str,
) -> Result<(), ApiError> {
    e.check_secret(p, secret)
}

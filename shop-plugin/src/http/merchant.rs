//! The merchant API (server to server, `Authorization: Bearer <API key>`): create a
//! payment (with an `Idempotency-Key`), read, list, cancel. The key is checked before
//! anything of the request is read (RFC 6750: a 401 with its `WWW-Authenticate`).

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper::header::{HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use hyper::{HeaderMap, Uri};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use super::body::JsonBody;
use super::create::parse_new;
use super::list::{list, query};
use super::reply::{challenge, method_not_allowed, MERCHANT_REALM};
use super::{json_response, App, Resp};
use crate::engine::{sha256_hex, ApiError};
use crate::store::rows::{self, Idempotent};

pub fn routes(app: Arc<App>) -> Router<Arc<App>> {
    Router::new()
        .route("/v1/payments", post(create).get(list))
        .route("/v1/payments/{id}", get(retrieve))
        .route("/v1/payments/{id}/cancel", post(cancel))
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(super::body::layers())
        // Around every route and its 405: no key, no further look at the request (its
        // body's length included).
        .route_layer(middleware::from_fn_with_state(app, authorize))
}

/// The Bearer key of `Authorization`, if the header holds one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // The auth scheme is case-insensitive (RFC 9110 11.1).
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim())
}

async fn authorize(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let sent = req.headers().contains_key(AUTHORIZATION);
    let valid = bearer(req.headers()).is_some_and(|key| {
        let h = sha256_hex(key.as_bytes());
        // Compared with every key, each in constant time, so timing tells nothing.
        app.api_key_hashes.iter().fold(0u8, |acc, k| {
            acc | k.as_bytes().ct_eq(h.as_bytes()).unwrap_u8()
        }) == 1
    });
    if valid {
        return next.run(req).await;
    }
    let message = if sent {
        "the API key is not valid"
    } else {
        "send the API key as 'Authorization: Bearer <key>'"
    };
    let mut r = ApiError::new(401, "unauthorized", message).into_response();
    r.headers_mut()
        .insert(WWW_AUTHENTICATE, challenge(MERCHANT_REALM, sent));
    r
}

async fn retrieve(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Resp, ApiError> {
    query(&uri, &[])?;
    let p = app.engine.load_current(&id).await?;
    Ok(json_response(200, &p.merchant_view()))
}

async fn cancel(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    uri: Uri,
    _body: JsonBody,
) -> Result<Resp, ApiError> {
    query(&uri, &[])?;
    let p = app.engine.cancel(&id).await?;
    Ok(json_response(200, &p.merchant_view()))
}

/// The parameters of a request in a canonical form: keys sorted at every level, no
/// whitespace. The same parameters sent with other spacing or key order hash alike.
fn canonical(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    write(&m[k], out);
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(x, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut s = String::new();
    write(v, &mut s);
    s
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let key = headers
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
    Ok(key)
}

async fn create(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    uri: Uri,
    body: JsonBody,
) -> Result<Resp, ApiError> {
    query(&uri, &[])?;
    let Some(key) = idempotency_key(&headers)? else {
        let req = parse_new(&body.value)?;
        let (p, secret) = app.engine.new_payment(req)?;
        app.engine
            .durable(app.engine.store().submit(app.engine.create_ops(&p)))
            .await?;
        return Ok(json_response(201, &created_body(&app, &p, &secret)));
    };
    // One request per key at a time; the first response is kept for every retry.
    let _g = app.engine.lock(&format!("idempotency:{key}")).await;
    let params_hash = sha256_hex(canonical(&body.value).as_bytes());
    let k2 = key.clone();
    let stored = app
        .engine
        .store()
        .read(move |c| rows::get_idempotent(c, &k2))
        .await
        .map_err(|_| ApiError::unavailable())?;
    if let Some(s) = stored {
        // Keys stored before parameters were compared hold the hash of the raw body.
        let same = s.body_hash == params_hash || s.body_hash == sha256_hex(&body.raw);
        if !same {
            return Err(ApiError::conflict(
                "idempotency_key_reused",
                "this Idempotency-Key was used with other parameters",
            ));
        }
        let v: Value = serde_json::from_str(&s.response).unwrap_or(Value::Null);
        let mut r = json_response(s.status, &v);
        r.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
        return Ok(r);
    }
    let req = parse_new(&body.value)?;
    let (p, secret) = app.engine.new_payment(req)?;
    let response = created_body(&app, &p, &secret);
    let mut ops = app.engine.create_ops(&p);
    ops.push(rows::put_idempotent(
        key,
        Idempotent {
            body_hash: params_hash,
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

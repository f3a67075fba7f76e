//! The shopper API, called by checkout.js or the purse extension for the shop's page:
//! authorised by the payment's client secret, open by CORS (tower-http) to the shop's
//! configured origins only. A foreign origin is refused before anything else; every
//! reply to an allowed origin, errors included, carries the CORS headers, so the page
//! sees the error code. Recovery takes the secret of the payment the card paid: it
//! tells nobody else whether a card has a payment pending here.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper::header::{HeaderName, ORIGIN};
use hyper::{HeaderMap, Method, StatusCode, Uri};
use purse::{CardId, KeyVersion};
use serde_json::Value;
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::body::JsonBody;
use super::list::{param, query};
use super::reply::method_not_allowed;
use super::{json_response, App, Resp};
use crate::engine::ApiError;

/// The header in which the purse extension names the page it pays for: the page's
/// origin as the browser reported it to the extension (docs/checkout-protocol.md).
pub const PAGE_ORIGIN: &str = "purse-page-origin";

pub fn routes(app: Arc<App>) -> Router<Arc<App>> {
    let pay = "/v1/checkout/payments/{id}";
    Router::new()
        .route(pay, get(payment).options(preflight))
        .route(
            &format!("{pay}/initialize"),
            post(initialize).options(preflight),
        )
        .route(&format!("{pay}/answer"), post(answer).options(preflight))
        .route(&format!("{pay}/tick"), post(tick).options(preflight))
        .route(&format!("{pay}/stop"), post(stop).options(preflight))
        .route(
            "/v1/checkout/recoveries",
            post(start_recovery).options(preflight),
        )
        .route(
            "/v1/checkout/recoveries/{id}",
            post(recovery_answer).options(preflight),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(super::body::layers())
        .route_layer(cors())
        .route_layer(middleware::from_fn_with_state(app, gate))
}

/// The CORS headers; [`gate`] has let only allowed origins through.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            hyper::header::CONTENT_TYPE,
            HeaderName::from_static(PAGE_ORIGIN),
        ])
        .max_age(Duration::from_secs(600))
}

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

/// Whether a browser's request may come in. A page must be one of the shop's origins.
/// The purse extension may call on behalf of such a page (it keeps card answers past the
/// page's life and delivers them again), so an extension origin is let through when it
/// names an allowed page, and for preflights. Requests without `Origin` are not a
/// browser's cross-origin requests (e.g. curl): not checked.
fn check_origin(app: &App, headers: &HeaderMap, preflight: bool) -> Result<(), ApiError> {
    let Some(origin) = headers.get(ORIGIN) else {
        return Ok(());
    };
    let allowed = |o: &str| app.allowed_origins.iter().any(|a| a == o);
    let o = origin.to_str().unwrap_or("");
    if allowed(o) {
        return Ok(());
    }
    if is_extension_origin(o) {
        let page = headers.get(PAGE_ORIGIN).and_then(|v| v.to_str().ok());
        if preflight || page.is_some_and(allowed) {
            return Ok(());
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

/// Whether `id` has the form the document gives ids on `path`.
fn id_has_form(path: &str, id: &str) -> bool {
    let (prefix, digits) = match path.starts_with("/v1/checkout/recoveries/") {
        true => ("rec_", 24),
        false => ("pay_", 24),
    };
    id.strip_prefix(prefix).is_some_and(|h| {
        h.len() == digits
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Whether the route at `path` takes `method` (the router answers the others 405): a
/// payment is read (`GET /v1/checkout/payments/{id}`), every other route is a POST.
fn takes(path: &str, method: &Method) -> bool {
    let read = path.starts_with("/v1/checkout/payments/") && path.matches('/').count() == 4;
    match *method {
        Method::OPTIONS => true,
        Method::GET | Method::HEAD => read,
        Method::POST => !read,
        _ => false,
    }
}

/// Before CORS: a foreign origin gets 403; a preflight for an id the document's pattern
/// refuses gets 404 (no such resource), an allowed one 204.
async fn gate(
    State(app): State<Arc<App>>,
    id: Option<Path<String>>,
    req: Request,
    next: Next,
) -> Response {
    let preflight = req.method() == Method::OPTIONS;
    if !takes(req.uri().path(), req.method()) {
        return next.run(req).await; // 405 with Allow, whoever asks
    }
    if let Err(e) = check_origin(&app, req.headers(), preflight) {
        return e.into_response();
    }
    if preflight {
        if let Some(Path(id)) = &id {
            if !id_has_form(req.uri().path(), id) {
                return ApiError::not_found("resource").into_response();
            }
        }
    }
    let mut r = next.run(req).await;
    if preflight && r.status() == StatusCode::OK {
        *r.status_mut() = StatusCode::NO_CONTENT;
    }
    r
}

/// Never reached (the CORS layer answers preflights); it lists OPTIONS in `Allow`.
async fn preflight() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// The client secret: in the body, or in the query (`GET`).
fn secret(body: &Value, pairs: &[(String, String)]) -> Result<String, ApiError> {
    body.get("client_secret")
        .and_then(Value::as_str)
        .or_else(|| param(pairs, "client_secret"))
        .map(str::to_string)
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

/// A card's key version: a JSON integer from 0 to 255.
fn kv(body: &Value, what: &str) -> Result<u8, ApiError> {
    body.get("kv")
        .and_then(|k| k.as_number())
        .and_then(super::create::whole)
        .and_then(|k| u8::try_from(k).ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_request",
                format!("kv ({what}) is required: a whole number from 0 to 255"),
            )
        })
}

/// The decoded query and the client secret of a shopper request.
fn credentials(uri: &Uri, body: &Value) -> Result<String, ApiError> {
    secret(body, &query(uri, &["client_secret"])?)
}

async fn payment(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Resp, ApiError> {
    let e = &app.engine;
    let secret = credentials(&uri, &Value::Null)?;
    let p = e.load_current(&id).await?;
    e.check_secret(&p, &secret)?;
    Ok(json_response(
        200,
        &p.shopper_view(e.initialize_commands(&p)),
    ))
}

async fn initialize(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    uri: Uri,
    JsonBody { value: body, .. }: JsonBody,
) -> Result<Resp, ApiError> {
    let e = &app.engine;
    let secret = credentials(&uri, &body)?;
    let kv = kv(&body, "the card's key version from SELECT")?;
    let Some(answer) = answer_of(body.get("response"))? else {
        return Err(ApiError::bad_request(
            "invalid_request",
            "the INITIALIZE answer is required",
        ));
    };
    let step = e.initialize(&id, &secret, kv, answer).await?;
    Ok(json_response(200, &step.body(e)))
}

async fn answer(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    uri: Uri,
    JsonBody { value: body, .. }: JsonBody,
) -> Result<Resp, ApiError> {
    let e = &app.engine;
    let secret = credentials(&uri, &body)?;
    let a = answer_of(body.get("response"))?;
    Ok(json_response(
        200,
        &e.answer(&id, &secret, a).await?.body(e),
    ))
}

async fn tick(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    uri: Uri,
    body: JsonBody,
) -> Result<Resp, ApiError> {
    time_cycle(&app, &id, &uri, &body.value, false).await
}

async fn stop(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    uri: Uri,
    body: JsonBody,
) -> Result<Resp, ApiError> {
    time_cycle(&app, &id, &uri, &body.value, true).await
}

/// A time-cycle's tick or stop, each with the previous unit's answer if any.
async fn time_cycle(
    app: &App,
    id: &str,
    uri: &Uri,
    body: &Value,
    stop: bool,
) -> Result<Resp, ApiError> {
    let e = &app.engine;
    let secret = credentials(uri, body)?;
    let a = optional_answer(body)?;
    let step = if stop {
        e.stop(id, &secret, a).await?
    } else {
        e.tick(id, &secret, a).await?
    };
    Ok(json_response(200, &step.body(e)))
}

/// Starts a recovery of the card's pending transactions, for the holder of the client
/// secret of a payment that card paid (`{card_id, kv, client_secret}`).
async fn start_recovery(
    State(app): State<Arc<App>>,
    uri: Uri,
    JsonBody { value: body, .. }: JsonBody,
) -> Result<Resp, ApiError> {
    query(&uri, &[])?;
    let e = &app.engine;
    let card = body
        .get("card_id")
        .and_then(Value::as_str)
        .and_then(|s| CardId::from_hex(s).ok())
        .ok_or_else(|| {
            ApiError::bad_request("invalid_request", "card_id (16 hex digits) is required")
        })?;
    let kv = kv(&body, "the card's key version")?;
    let secret = secret(&body, &[])?;
    // The secret names its payment (`pay_…_secret_…`); a secret of no payment is as
    // invalid as a wrong one.
    let refused = || {
        ApiError::new(
            401,
            "invalid_client_secret",
            "the client secret does not belong to a payment of this shop",
        )
    };
    let id = secret.split_once("_secret_").ok_or_else(refused)?.0;
    let p = match e.load(id).await {
        Err(err) if err.status == 404 => return Err(refused()),
        other => other?,
    };
    e.check_secret(&p, &secret)?;
    if p.card_id != Some(card) {
        return Err(ApiError::new(
            404,
            "nothing_to_recover",
            "this card did not pay this payment",
        ));
    }
    Ok(json_response(
        200,
        &e.start_recovery(&p.id, card, KeyVersion(kv)).await?,
    ))
}

async fn recovery_answer(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    uri: Uri,
    JsonBody { value: body, .. }: JsonBody,
) -> Result<Resp, ApiError> {
    query(&uri, &["client_secret"])?;
    let a = answer_of(body.get("response"))?;
    Ok(json_response(
        200,
        &app.engine.recovery_answer(&id, a).await?,
    ))
}

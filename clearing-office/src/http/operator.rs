//! The operators' API (Bearer operator token): register merchants and SAMs (the SAM's
//! credential is returned once), list batches and their problems, record decisions on
//! unresolved transactions, read flags, payouts and reconciliation reports.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hyper::StatusCode;
use purse::{Currency, KeyVersion, SamId};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::{auth, App};
use crate::db::registry::{Insert, SamRow};

/// Operator request bodies are small.
const MAX_BODY: usize = 64 * 1024;

type Reply = Result<Response, ApiError>;

/// Checks the operator token, then reads a strict JSON body of type `T`.
async fn body<T: DeserializeOwned>(app: &App, req: Request) -> Result<T, ApiError> {
    auth::operator(app, req.headers())?;
    let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request bodies are limited to {MAX_BODY} bytes"),
            )
        })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request("invalid_request", format!("the body is not valid: {e}"))
    })
}

/// Checks the operator token, then parses the query string strictly.
fn query<T: DeserializeOwned>(app: &App, req: &Request) -> Result<T, ApiError> {
    auth::operator(app, req.headers())?;
    serde_urlencoded::from_str(req.uri().query().unwrap_or(""))
        .map_err(|e| ApiError::bad_request("invalid_query", format!("the query is not valid: {e}")))
}

fn ok(status: StatusCode, v: serde_json::Value) -> Reply {
    Ok((status, Json(v)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMerchant {
    id: String,
    name: String,
}

pub async fn create_merchant(State(app): State<Arc<App>>, req: Request) -> Reply {
    let m: NewMerchant = body(&app, req).await?;
    let valid = (1..=64).contains(&m.id.len())
        && m.id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid || m.name.is_empty() || m.name.len() > 200 {
        return Err(ApiError::bad_request(
            "invalid_request",
            "id is 1 to 64 of A-Z a-z 0-9 _ -, name 1 to 200 bytes",
        ));
    }
    match app.db.create_merchant(&m.id, &m.name).await? {
        Insert::Done => ok(StatusCode::CREATED, json!({"id": m.id, "name": m.name})),
        _ => Err(ApiError::new(
            StatusCode::CONFLICT,
            "exists",
            "this merchant is registered already",
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

pub async fn merchants(State(app): State<Arc<App>>, req: Request) -> Reply {
    let Empty {} = query(&app, &req)?;
    ok(
        StatusCode::OK,
        json!({"merchants": app.db.merchants().await?}),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSam {
    sam_id: String,
    merchant_id: String,
    /// ISO 4217 numeric code.
    currency: u16,
    /// The SAM's key version (its `MK_SAM`).
    key_version: u8,
    /// The card key versions it accepts.
    card_key_versions: Vec<u8>,
}

pub async fn create_sam(State(app): State<Arc<App>>, req: Request) -> Reply {
    let s: NewSam = body(&app, req).await?;
    let sam_id = SamId::from_hex(&s.sam_id)
        .ok()
        .filter(|_| s.sam_id.len() == 16 && s.sam_id == s.sam_id.to_ascii_lowercase())
        .ok_or_else(|| {
            ApiError::bad_request("invalid_request", "sam_id is 16 lowercase hex digits")
        })?;
    let currency = Currency::from_numeric(s.currency).map_err(|_| {
        ApiError::bad_request("invalid_request", "currency is an ISO 4217 numeric code")
    })?;
    for kv in std::iter::once(&s.key_version).chain(&s.card_key_versions) {
        if app.intake.keys.get(KeyVersion(*kv)).is_err() {
            return Err(ApiError::bad_request(
                "unknown_key_version",
                format!("key version {kv} is not in the office's issuer key file"),
            ));
        }
    }
    let credential = auth::new_sam_credential(sam_id);
    let row = SamRow {
        sam_id,
        merchant_id: s.merchant_id.clone(),
        currency,
        key_version: KeyVersion(s.key_version),
        card_key_versions: s.card_key_versions.iter().map(|k| KeyVersion(*k)).collect(),
        credential_sha256: auth::sha256_hex(&credential),
        created_at: 0,
    };
    match app.db.create_sam(&row).await? {
        Insert::Done => ok(
            StatusCode::CREATED,
            json!({
                "sam_id": s.sam_id, "merchant_id": s.merchant_id, "currency": s.currency,
                "key_version": s.key_version, "card_key_versions": s.card_key_versions,
                "credential": credential,
            }),
        ),
        Insert::Exists => Err(ApiError::new(
            StatusCode::CONFLICT,
            "exists",
            "this SAM is registered already",
        )),
        Insert::NoMerchant => Err(ApiError::bad_request(
            "unknown_merchant",
            "register the merchant first",
        )),
    }
}

pub async fn sams(State(app): State<Arc<App>>, req: Request) -> Reply {
    let Empty {} = query(&app, &req)?;
    let list: Vec<_> = app
        .db
        .sams()
        .await?
        .into_iter()
        .map(|s| {
            json!({
                "sam_id": s.sam_id.to_hex(), "merchant_id": s.merchant_id,
                "currency": s.currency.numeric(), "key_version": s.key_version.0,
                "card_key_versions": s.card_key_versions.iter().map(|k| k.0).collect::<Vec<_>>(),
                "created_at": s.created_at,
            })
        })
        .collect();
    ok(StatusCode::OK, json!({ "sams": list }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchQuery {
    sam_id: Option<String>,
    decision: Option<String>,
    limit: Option<i64>,
}

pub async fn batches(State(app): State<Arc<App>>, req: Request) -> Reply {
    let q: BatchQuery = query(&app, &req)?;
    let sam = q
        .sam_id
        .map(|s| SamId::from_hex(&s))
        .transpose()
        .map_err(|_| ApiError::bad_request("invalid_query", "sam_id is 16 hex digits"))?;
    if q.decision
        .as_deref()
        .is_some_and(|d| d != "accepted" && d != "rejected")
    {
        return Err(ApiError::bad_request(
            "invalid_query",
            "decision is accepted or rejected",
        ));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("invalid_query", "limit is 1 to 1000"));
    }
    let list = app.db.batches(sam, q.decision.as_deref(), limit).await?;
    ok(StatusCode::OK, json!({ "batches": list }))
}

pub async fn batch(State(app): State<Arc<App>>, Path(id): Path<i64>, req: Request) -> Reply {
    let Empty {} = query(&app, &req)?;
    let (summary, response) = app
        .db
        .batch(id)
        .await?
        .ok_or_else(|| ApiError::not_found("batch"))?;
    let decision: serde_json::Value = serde_json::from_str(&response).unwrap_or_default();
    ok(
        StatusCode::OK,
        json!({"batch": summary, "decision": decision}),
    )
}

pub async fn batch_report(State(app): State<Arc<App>>, Path(id): Path<i64>, req: Request) -> Reply {
    let Empty {} = query(&app, &req)?;
    let r = app
        .db
        .batch_report(id)
        .await?
        .ok_or_else(|| ApiError::not_found("accepted batch"))?;
    ok(StatusCode::OK, r)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DayQuery {
    merchant_id: Option<String>,
}

pub async fn day_report(
    State(app): State<Arc<App>>,
    Path(day): Path<String>,
    req: Request,
) -> Reply {
    let q: DayQuery = query(&app, &req)?;
    if !crate::db::reports::is_day(&day) {
        return Err(ApiError::bad_request(
            "invalid_request",
            "the day is YYYY-MM-DD (UTC)",
        ));
    }
    ok(
        StatusCode::OK,
        serde_json::to_value(app.db.day_report(&day, q.merchant_id.as_deref()).await?)
            .map_err(anyhow::Error::from)?,
    )
}

pub async fn payouts(
    State(app): State<Arc<App>>,
    Path(merchant): Path<String>,
    req: Request,
) -> Reply {
    let Empty {} = query(&app, &req)?;
    if app.db.merchant(&merchant).await?.is_none() {
        return Err(ApiError::not_found("merchant"));
    }
    ok(
        StatusCode::OK,
        json!({"object": "list", "data": app.db.payouts(&merchant).await?}),
    )
}

pub async fn flags(State(app): State<Arc<App>>, req: Request) -> Reply {
    let Empty {} = query(&app, &req)?;
    ok(StatusCode::OK, json!({"flags": app.db.flags().await?}))
}

pub async fn unresolved(State(app): State<Arc<App>>, req: Request) -> Reply {
    let Empty {} = query(&app, &req)?;
    ok(
        StatusCode::OK,
        json!({"unresolved": app.db.unresolved().await?}),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewDecision {
    decision: String,
}

pub async fn decide(
    State(app): State<Arc<App>>,
    Path((sam_id, seq)): Path<(String, u32)>,
    req: Request,
) -> Reply {
    let d: NewDecision = body(&app, req).await?;
    if d.decision != "debited" && d.decision != "not_debited" {
        return Err(ApiError::bad_request(
            "invalid_request",
            "decision is debited or not_debited",
        ));
    }
    let sam =
        SamId::from_hex(&sam_id).map_err(|_| ApiError::not_found("unresolved transaction"))?;
    match app.db.decide_unresolved(sam, seq, &d.decision).await? {
        Some(true) => ok(
            StatusCode::OK,
            json!({"sam_id": sam_id, "sam_tx_seq": seq, "decision": d.decision}),
        ),
        Some(false) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_decided",
            "another decision was recorded for this transaction; decisions are final",
        )),
        None => Err(ApiError::not_found("unresolved transaction")),
    }
}

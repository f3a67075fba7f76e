//! `POST /v1/batches`: a SAM's settlement batch. The credential is checked before any of
//! the body is read; the body is spooled within the size limit, then decided.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use hyper::header::CONTENT_LENGTH;
use hyper::StatusCode;

use super::error::ApiError;
use super::{auth, App};
use crate::intake::spool::{self, SpoolError};
use crate::intake::IntakeError;

pub async fn upload(State(app): State<Arc<App>>, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let sam = auth::sam(&app, &parts.headers).await?;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("batches are limited to {} bytes", app.max_batch_bytes),
        )
    };
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > app.max_batch_bytes) {
        return Err(too_large());
    }
    let spooled = spool::spool(&app.spool_dir, Body::new(body), app.max_batch_bytes)
        .await
        .map_err(|e| match e {
            SpoolError::TooLarge(_) => too_large(),
            SpoolError::TimedOut => ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the batch did not arrive in time",
            ),
            SpoolError::Client(m) => {
                ApiError::bad_request("invalid_body", format!("the body could not be read: {m}"))
            }
            SpoolError::Io(e) => ApiError::internal(anyhow::anyhow!("spooling an upload: {e}")),
        })?;
    match app.intake.upload(&sam, &spooled).await {
        Ok(d) => Ok((StatusCode::OK, axum::Json(d)).into_response()),
        Err(IntakeError::Invalid(m)) => Err(ApiError::bad_request(
            "invalid_batch",
            format!("the body is not a purse-settlement/1 batch: {m}"),
        )),
        Err(e @ IntakeError::OtherSam { .. }) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "other_sam",
            e.to_string(),
        )),
        Err(e @ IntakeError::Conflict(_)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "close_seq_conflict",
            e.to_string(),
        )),
        Err(IntakeError::Internal(e)) => Err(ApiError::internal(e)),
    }
}

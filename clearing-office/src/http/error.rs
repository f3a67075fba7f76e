//! The catalogued errors of the API: `{"error": {"code", "message"}}` with a 4xx/5xx
//! status; a 401 carries its `WWW-Authenticate: Bearer` challenge (RFC 6750 3), and the
//! framework's own refusals (unknown path, method not allowed) have the same shape.

use axum::response::{IntoResponse, Response};
use hyper::header::{HeaderValue, WWW_AUTHENTICATE};
use hyper::StatusCode;
use serde_json::json;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// For a 401: the realm, and whether a credential was sent (then `invalid_token`).
    pub challenge: Option<(&'static str, bool)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            challenge: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such {what}"),
        )
    }

    pub fn unauthorized(realm: &'static str, sent: bool) -> ApiError {
        let (code, message) = if sent {
            (
                "invalid_credential",
                "the bearer credential is not valid here",
            )
        } else {
            (
                "credential_required",
                "send a bearer credential: Authorization: Bearer …",
            )
        };
        ApiError {
            challenge: Some((realm, sent)),
            ..ApiError::new(StatusCode::UNAUTHORIZED, code, message)
        }
    }

    /// A failure of the office itself: logged in full, the client told little.
    pub fn internal(e: anyhow::Error) -> ApiError {
        tracing::error!("{e:#}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the office could not complete the request; nothing was recorded, try again",
        )
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> ApiError {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut r = (self.status, axum::Json(body)).into_response();
        if let Some((realm, sent)) = self.challenge {
            let v = if sent {
                format!("Bearer realm=\"{realm}\", error=\"invalid_token\"")
            } else {
                format!("Bearer realm=\"{realm}\"")
            };
            if let Ok(v) = HeaderValue::from_str(&v) {
                r.headers_mut().insert(WWW_AUTHENTICATE, v);
            }
        }
        r
    }
}

pub async fn not_found() -> ApiError {
    ApiError::not_found("route")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this method is not allowed on this path (see the Allow header)",
    )
}

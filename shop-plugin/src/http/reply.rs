//! Error replies: [`ApiError`] as an axum response (with the `WWW-Authenticate`
//! challenge every 401 must carry, RFC 9110 11.6.1 / RFC 6750 3), the framework's own
//! refusals (unknown path, method not allowed, body over the limit) in the same JSON
//! shape.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::header::{HeaderValue, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::StatusCode;

use super::error_response;
use crate::engine::ApiError;

/// The realm of the merchant API's Bearer API keys.
pub const MERCHANT_REALM: &str = "merchant";
/// The realm of the shopper API's client secrets (bearer credentials sent in the body
/// or the query).
pub const CHECKOUT_REALM: &str = "checkout";

/// The challenge of a 401: `error="invalid_token"` when a credential was sent but is
/// not valid (RFC 6750 3.1), none when it was missing.
pub fn challenge(realm: &str, credential_sent: bool) -> HeaderValue {
    let v = if credential_sent {
        format!("Bearer realm=\"{realm}\", error=\"invalid_token\"")
    } else {
        format!("Bearer realm=\"{realm}\"")
    };
    HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static("Bearer"))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = error_response(&self).into_response();
        if self.status == 401 {
            // The merchant API sets its own challenge; the shopper API's codes say
            // whether a secret was sent.
            let sent = self.code != "client_secret_required";
            r.headers_mut()
                .insert(WWW_AUTHENTICATE, challenge(CHECKOUT_REALM, sent));
        }
        r
    }
}

/// Any path the API does not have.
pub async fn not_found() -> ApiError {
    ApiError::not_found("route")
}

/// A known path with another method (the router adds `Allow`).
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        405,
        "method_not_allowed",
        "this method is not allowed on this path (see the Allow header)",
    )
}

/// Gives the tower layers' plain refusals (the body limit's 413) the JSON error shape.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let r = next.run(req).await;
    let is_json = r
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json {
        return super::body::too_large().into_response();
    }
    r
}

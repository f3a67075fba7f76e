//! Request bodies: at most [`MAX_BODY`] bytes (tower-http's limit, and again while
//! reading), each frame within [`BODY_IDLE_TIMEOUT`] and the whole within
//! [`BODY_DEADLINE`], and a JSON object ([`JsonBody`]); an empty body is `{}`.

use std::time::Duration;

use axum::extract::{FromRequest, Request};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Body;
use serde_json::Value;
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutError};

use crate::engine::ApiError;

/// The largest request body accepted (ours are small).
pub const MAX_BODY: usize = 64 * 1024;
/// A client that stops sending its body for this long is cut off.
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// The whole body must arrive within this (a trickle does not hold a connection).
pub const BODY_DEADLINE: Duration = Duration::from_secs(30);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body limits as tower layers, inside each API's gate (a `Content-Length` over the
/// limit is refused before the handler runs; [`super::reply`] gives that refusal the JSON error shape).
pub fn layers() -> ServiceBuilder<
    tower::layer::util::Stack<
        RequestBodyTimeoutLayer,
        tower::layer::util::Stack<RequestBodyLimitLayer, tower::layer::util::Identity>,
    >,
> {
    ServiceBuilder::new()
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .layer(RequestBodyTimeoutLayer::new(BODY_IDLE_TIMEOUT))
}

pub(super) fn too_large() -> ApiError {
    ApiError::new(
        413,
        "body_too_large",
        format!("request bodies are limited to {MAX_BODY} bytes"),
    )
}

fn timed_out() -> ApiError {
    ApiError::new(
        408,
        "request_timeout",
        "the request body did not arrive in time",
    )
}

/// What went wrong reading a body: the limit, a timeout, or the client.
fn read_error(e: BoxError) -> ApiError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e.as_ref());
    while let Some(c) = cause {
        if c.is::<LengthLimitError>() {
            return too_large();
        }
        if c.is::<TimeoutError>() {
            return timed_out();
        }
        cause = c.source();
    }
    ApiError::bad_request("invalid_json", "the request body could not be read")
}

/// Parses a body as a JSON object (empty: `{}`).
pub fn json_object(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
    })?;
    if !value.is_object() {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the body must be a JSON object",
        ));
    }
    Ok(value)
}

/// Reads a JSON object body within the limits.
pub async fn read_json<B>(
    req: hyper::Request<B>,
) -> Result<(hyper::http::request::Parts, Bytes, Value), ApiError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    let collected = tokio::time::timeout(BODY_DEADLINE, Limited::new(body, MAX_BODY).collect())
        .await
        .map_err(|_| timed_out())?
        .map_err(read_error)?;
    let bytes = collected.to_bytes();
    let value = json_object(&bytes)?;
    Ok((parts, bytes, value))
}

/// A handler's JSON object body, and its bytes as sent.
pub struct JsonBody {
    pub value: Value,
    pub raw: Bytes,
}

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<JsonBody, ApiError> {
        let (_, raw, value) = read_json(req).await?;
        Ok(JsonBody { value, raw })
    }
}

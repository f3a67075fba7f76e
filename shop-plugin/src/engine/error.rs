//! API errors: an HTTP status, a stable machine-readable code and a sentence.

use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// More fields for the error object (e.g. `due_at`).
    pub extra: Option<Value>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            extra: None,
        }
    }

    pub fn with(mut self, extra: Value) -> ApiError {
        self.extra = Some(extra);
        self
    }

    pub fn body(&self) -> Value {
        let mut e = json!({ "code": self.code, "message": self.message });
        if let Some(Value::Object(m)) = &self.extra {
            for (k, v) in m {
                e[k] = v.clone();
            }
        }
        json!({ "error": e })
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(404, "not_found", format!("no such {what}"))
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(400, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(409, code, message)
    }

    /// Storage failed: nothing was acknowledged; the service stops taking money.
    pub fn unavailable() -> ApiError {
        ApiError::new(
            503,
            "storage_unavailable",
            "the payment service cannot store data right now; nothing was charged by this request",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

//! The messages on the admin socket (`schema/admin-socket.schema.json`): the request
//! line and how the server reads it, the answer and its error codes, and how the client
//! reads an answer, the plain-string error of a server older than the codes included.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::settlement::SettleError;

/// The longest request line, its newline included.
pub const MAX_LINE: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// One settlement run in the server.
    Settle {
        #[serde(default)]
        force: bool,
    },
    /// Correct rejected batch `close_seq` (`batches correct`), then a settlement run.
    Correct {
        close_seq: u32,
        /// The SAM whose batch it is (needed only when several SAMs have that close_seq).
        #[serde(default)]
        sam_id: Option<String>,
    },
    /// Look for due webhook events now (after `events retry`). A struct variant: serde
    /// lets a unit variant of a tagged enum take unknown fields.
    WakeWebhooks {},
}

/// Why the server refused a request: the closed set of the schema's `code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The line is not a request: empty, too long, not JSON, an unknown command or field,
    /// a field of the wrong type.
    InvalidRequest,
    /// The settlement run (or the one after a correction) failed: the SAM's close, the
    /// database, the outbox directory, a batch file, a stored batch.
    SettlementFailed,
    /// The batch cannot be corrected: no such batch, several SAMs have it, not rejected,
    /// a problem that names no record, the SAM refused to close it again.
    CorrectionRefused,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::SettlementFailed => "settlement_failed",
            ErrorCode::CorrectionRefused => "correction_refused",
        }
    }

    /// The code of a failed settlement run or correction.
    pub fn of(e: &SettleError) -> ErrorCode {
        match e {
            SettleError::NotCorrectable { .. } => ErrorCode::CorrectionRefused,
            _ => ErrorCode::SettlementFailed,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The request on `line` (as read: its newline included, at most one byte past
/// [`MAX_LINE`]), or why it is not one.
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    if line.len() > MAX_LINE {
        return Err(format!("the request line exceeds {MAX_LINE} bytes"));
    }
    if line.trim_ascii().is_empty() {
        return Err("no request: an empty line or a connection closed before one".into());
    }
    let v: Value = serde_json::from_slice(line).map_err(|e| format!("not a request: {e}"))?;
    // serde would also take a tagged enum from an array (`["settle"]`).
    if !v.is_object() {
        return Err("not a request: a JSON object is expected".into());
    }
    Request::deserialize(&v).map_err(|e| format!("not a request: {e}"))
}

/// A successful answer.
pub fn success(result: impl Serialize) -> Value {
    json!({"ok": true, "result": result})
}

/// A refusal.
pub fn failure(code: ErrorCode, message: impl std::fmt::Display) -> Value {
    json!({"ok": false, "error": {"code": code, "message": message.to_string()}})
}

/// A refusal as the client reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// None from a server older than the codes (its error is a plain string).
    pub code: Option<ErrorCode>,
    pub message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.code {
            Some(code) => write!(f, "{code}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Reads an answer: its `result`, the server's refusal, or why it is no answer.
pub fn read_answer(answer: &Value) -> Result<Result<Value, Refusal>, String> {
    match answer["ok"] {
        Value::Bool(true) => Ok(Ok(answer["result"].clone())),
        Value::Bool(false) => read_error(&answer["error"]).map(Err),
        _ => Err("no boolean `ok`".into()),
    }
}

fn read_error(error: &Value) -> Result<Refusal, String> {
    match error {
        // A server older than the codes.
        Value::String(message) => Ok(Refusal {
            code: None,
            message: message.clone(),
        }),
        Value::Object(o) => {
            let message = o
                .get("message")
                .and_then(Value::as_str)
                .ok_or("an error without a message")?;
            let raw = o.get("code").ok_or("an error without a code")?;
            Ok(match ErrorCode::deserialize(raw) {
                Ok(code) => Refusal {
                    code: Some(code),
                    message: message.to_string(),
                },
                // A newer server's code: keep its text for the operator.
                Err(_) => Refusal {
                    code: None,
                    message: format!("{}: {message}", raw.as_str().unwrap_or("?")),
                },
            })
        }
        _ => Err("a failed answer without an error".into()),
    }
}

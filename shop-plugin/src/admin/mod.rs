//! The admin socket of a running `serve`: a Unix domain socket beside the database
//! (`<database>.admin.sock`, mode 0600, so only the service's user may talk to it)
//! through which the operator's commands reach the process that holds the SAM.
//!
//! Protocol (`schema/admin-socket.schema.json`, the messages in [`protocol`]): one JSON
//! request per connection on one line of at most [`MAX_LINE`] bytes, one JSON answer on
//! one line. `{"command": "settle", "force": false}` → `{"ok": true, "result": <settlement
//! report>}`; `{"command": "correct", "close_seq": 3, "sam_id": null}` → `{"ok": true,
//! "result": <correction>}` (the rejected batch closed again without the refused records,
//! then a settlement run that uploads it); `{"command": "wake_webhooks"}` → `{"ok": true,
//! "result": null}`. A failure is `{"ok": false, "error": {"code": "<code>", "message":
//! "<message>"}}`, the code one of [`ErrorCode`] (`invalid_request`, `settlement_failed`,
//! `correction_refused`); [`call`] also reads an older server's `"error": "<message>"`.
//!
//! [`here_or_server`] is how an operator's command that needs the SAM finds where to run:
//! in its own process when it can take the instance lock, else in the running server.

pub mod protocol;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::files::FileLock;
use crate::http::App;
use crate::settlement::Settler;
use protocol::{failure, parse_request, read_answer, success};
pub use protocol::{ErrorCode, Refusal, Request, MAX_LINE};

#[derive(Debug, Error)]
pub enum AdminError {
    #[error("admin socket {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("admin socket {path}: the server's answer is not valid: {message}")]
    Answer { path: PathBuf, message: String },
    #[error("the server refused: {0}")]
    Refused(Refusal),
    #[error("lock file {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What the socket's handlers share.
pub struct Admin {
    pub app: Arc<App>,
    pub settler: Settler,
    /// One settlement run at a time.
    settling: tokio::sync::Mutex<()>,
}

impl Admin {
    pub fn new(app: Arc<App>, settler: Settler) -> Admin {
        Admin {
            app,
            settler,
            settling: tokio::sync::Mutex::new(()),
        }
    }

    async fn answer(&self, req: Request) -> Value {
        match req {
            Request::Settle { force } => {
                tracing::info!("settlement run requested on the admin socket (force: {force})");
                let _one = self.settling.lock().await;
                match self.settler.run(&self.app.engine, force).await {
                    Ok(report) => success(report),
                    Err(e) => failure(ErrorCode::of(&e), e),
                }
            }
            Request::Correct { close_seq, sam_id } => {
                tracing::info!("correction of batch {close_seq} requested on the admin socket");
                let _one = self.settling.lock().await;
                match self
                    .settler
                    .correct_and_run(&self.app.engine, sam_id.as_deref(), close_seq)
                    .await
                {
                    Ok(c) => success(c),
                    Err(e) => failure(ErrorCode::of(&e), e),
                }
            }
            Request::WakeWebhooks {} => {
                self.app.engine.outbox_wake().notify_one();
                success(())
            }
        }
    }
}

/// Binds the socket at `path`, replacing a stale one. Call only while holding the
/// instance lock (so no live server owns the old socket). The socket is made 0600
/// under a temporary name and renamed into place, so it is never reachable more open.
pub fn bind(path: &Path) -> Result<UnixListener, AdminError> {
    let io = |source| AdminError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension(format!("sock.tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp).map_err(io)?;
    let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(listener)
}

/// Answers requests until the listener fails.
pub async fn serve(admin: Arc<Admin>, listener: UnixListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let admin = admin.clone();
                tokio::spawn(async move {
                    if let Err(e) = handle(&admin, stream).await {
                        tracing::debug!("admin connection: {e}");
                    }
                });
            }
            Err(e) => {
                tracing::error!("the admin socket failed: {e}");
                return;
            }
        }
    }
}

/// How long a connection may take to send its request line: a client that never ends
/// its line must not hold a task of the server forever.
pub const READ_DEADLINE: Duration = Duration::from_secs(10);

async fn handle(admin: &Admin, stream: UnixStream) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    // One byte past the limit tells a line that is too long from one that fits.
    let mut line = Vec::new();
    let mut reader = BufReader::new(read.take(MAX_LINE as u64 + 1));
    let in_time = tokio::time::timeout(READ_DEADLINE, reader.read_until(b'\n', &mut line)).await;
    let parsed = match in_time {
        Ok(r) => r.map(|_| parse_request(&line))?,
        Err(_) => Err(format!(
            "no whole request line within {} s",
            READ_DEADLINE.as_secs()
        )),
    };
    let answer = match parsed {
        Ok(req) => admin.answer(req).await,
        Err(message) => {
            tracing::debug!("admin socket: {message}");
            failure(ErrorCode::InvalidRequest, message)
        }
    };
    write.write_all(format!("{answer}\n").as_bytes()).await?;
    write.shutdown().await
}

/// Sends one request to the server at `path`; returns its `result`.
pub async fn call(path: &Path, req: &Request) -> Result<Value, AdminError> {
    let io = |source| AdminError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut stream = UnixStream::connect(path).await.map_err(io)?;
    let mut line = serde_json::to_string(req).map_err(|e| AdminError::Answer {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    line.push('\n');
    stream.write_all(line.as_bytes()).await.map_err(io)?;
    let mut answer = String::new();
    BufReader::new(stream)
        .read_line(&mut answer)
        .await
        .map_err(io)?;
    let invalid = |message: String| AdminError::Answer {
        path: path.to_path_buf(),
        message,
    };
    let v: Value = serde_json::from_str(&answer).map_err(|e| invalid(e.to_string()))?;
    read_answer(&v)
        .map_err(invalid)?
        .map_err(AdminError::Refused)
}

/// Where an operator's command that needs the SAM runs.
pub enum Place {
    /// Here: this process holds the instance lock (and may open the SAM) until dropped.
    Here(FileLock),
    /// In the running server, which answered with this result.
    Server(Value),
}

/// How long to keep trying when the lock is held but no server answers (a server that
/// is starting, or another command that is about to finish).
const PATIENCE: Duration = Duration::from_secs(15);

/// Takes the instance lock at `lock_path`, or, while another process holds it, sends
/// `req` to the server at `socket`.
pub async fn here_or_server(
    lock_path: &Path,
    socket: &Path,
    req: &Request,
) -> Result<Place, AdminError> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let lock = FileLock::try_exclusive(lock_path).map_err(|source| AdminError::Lock {
            path: lock_path.to_path_buf(),
            source,
        })?;
        if let Some(lock) = lock {
            return Ok(Place::Here(lock));
        }
        match call(socket, req).await {
            Ok(result) => return Ok(Place::Server(result)),
            Err(e) if not_listening(&e) && tokio::time::Instant::now() < deadline => {
                // No event tells when a starting server listens: poll, bounded.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// No server behind the socket (yet): worth trying again.
fn not_listening(e: &AdminError) -> bool {
    matches!(e, AdminError::Io { source, .. } if matches!(
        source.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `call` against a server that answers `answer` to any request; also returns the
    /// line the client sent.
    async fn call_answered(answer: &str) -> (Result<Value, AdminError>, String) {
        let dir = std::env::temp_dir().join(format!("admin-call-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join(format!("{:x}.sock", rand::random::<u64>()));
        let listener = bind(&path).expect("bind");
        let server = async {
            let (stream, _) = listener.accept().await.expect("accept");
            let (read, mut write) = stream.into_split();
            let mut sent = String::new();
            BufReader::new(read)
                .read_line(&mut sent)
                .await
                .expect("request");
            write
                .write_all(format!("{answer}\n").as_bytes())
                .await
                .expect("answer");
            sent
        };
        let (got, sent) = tokio::join!(call(&path, &Request::WakeWebhooks {}), server);
        let _ = std::fs::remove_file(&path);
        (got, sent)
    }

    fn refusal(got: Result<Value, AdminError>) -> Refusal {
        match got {
            Err(AdminError::Refused(r)) => r,
            other => panic!("not a refusal: {other:?}"),
        }
    }

    #[tokio::test]
    async fn call_reads_the_result_and_both_error_shapes() {
        let (got, sent) = call_answered(r#"{"ok": true, "result": null}"#).await;
        assert_eq!(got.expect("ok"), Value::Null);
        assert_eq!(sent, "{\"command\":\"wake_webhooks\"}\n");

        let (got, _) = call_answered(
            r#"{"ok": false, "error": {"code": "correction_refused", "message": "batch 1 cannot be corrected: no such batch"}}"#,
        )
        .await;
        let r = refusal(got);
        assert_eq!(r.code, Some(ErrorCode::CorrectionRefused));
        assert_eq!(
            AdminError::Refused(r).to_string(),
            "the server refused: correction_refused: batch 1 cannot be corrected: no such batch"
        );

        // A server started before the codes existed.
        let (got, _) = call_answered(r#"{"ok": false, "error": "database: locked"}"#).await;
        let r = refusal(got);
        assert_eq!((r.code, r.message.as_str()), (None, "database: locked"));
        assert_eq!(
            AdminError::Refused(r).to_string(),
            "the server refused: database: locked"
        );

        // A newer server's code: its text is kept.
        let (got, _) =
            call_answered(r#"{"ok": false, "error": {"code": "sam_busy", "message": "later"}}"#)
                .await;
        assert_eq!(refusal(got).to_string(), "sam_busy: later");

        for broken in [r#"{"ok": false}"#, r#"{"result": 1}"#, "not json"] {
            let (got, _) = call_answered(broken).await;
            assert!(
                matches!(got, Err(AdminError::Answer { .. })),
                "{broken}: {got:?}"
            );
        }
    }
}

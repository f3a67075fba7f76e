//! The HTTP API: an axum [`Router`] (hyper 1, HTTP/1.1) served by [`server`]'s accept
//! loop over rustls or, on loopback only, plain TCP.
//!
//! Routes: `POST /v1/batches` (a SAM's credential), `GET /v1/hotlist` and `GET /healthz`
//! (public), and the operators' API ([`operator`]). Every error is `{"error": {"code",
//! "message"}}` ([`error`]), also the framework's (404, 405 with `Allow`).

pub mod auth;
pub mod error;
mod operator;
pub mod server;
mod upload;

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use ed25519_dalek::SigningKey;
use tower_http::trace::TraceLayer;

use crate::db::Db;
use crate::hotlist;
use crate::intake::Intake;
use error::ApiError;

/// What the handlers share.
pub struct App {
    pub db: Arc<Db>,
    pub intake: Intake,
    pub operator_token_sha256: Vec<String>,
    pub hotlist_key: SigningKey,
    pub spool_dir: PathBuf,
    pub max_batch_bytes: u64,
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"ok": true})) }),
        )
        .route("/v1/batches", post(upload::upload).get(operator::batches))
        .route("/v1/batches/{id}", get(operator::batch))
        .route("/v1/hotlist", get(hotlist))
        .route(
            "/v1/merchants",
            post(operator::create_merchant).get(operator::merchants),
        )
        .route("/v1/merchants/{id}/payouts", get(operator::payouts))
        .route("/v1/sams", post(operator::create_sam).get(operator::sams))
        .route("/v1/unresolved", get(operator::unresolved))
        .route(
            "/v1/unresolved/{sam_id}/{sam_tx_seq}/decision",
            post(operator::decide),
        )
        .route("/v1/flags", get(operator::flags))
        .route("/v1/reports/batches/{id}", get(operator::batch_report))
        .route("/v1/reports/days/{day}", get(operator::day_report))
        .method_not_allowed_fallback(error::method_not_allowed)
        .fallback(error::not_found)
        .layer(TraceLayer::new_for_http())
        .with_state(app)
}

/// The signed list of flagged cards.
async fn hotlist(State(app): State<Arc<App>>) -> Result<Json<hotlist::Hotlist>, ApiError> {
    let cards = app.db.flagged_cards().await?;
    Ok(Json(hotlist::sign(
        &app.hotlist_key,
        crate::db::now(),
        &cards,
    )))
}

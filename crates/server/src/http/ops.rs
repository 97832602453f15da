//! Endpoints for load balancers and operators, outside the protocol: no signature.

use axum::{extract::State, response::Response};
use serde_json::json;

use super::reply;
use crate::state::AppState;

/// Liveness: the process answers.
pub async fn healthz() -> Response {
    reply::json(200, &json!({"status": "ok"}))
}

/// Readiness: the database answers too.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => reply::json(200, &json!({"status": "ok", "database": "ok"})),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            reply::json(503, &json!({"status": "unavailable", "database": "unreachable"}))
        }
    }
}

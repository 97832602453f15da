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

/// Prometheus text exposition.
pub async fn metrics() -> Response {
    let mut response = Response::new(axum::body::Body::from(crate::metrics::render()));
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// The OpenAPI 3.1 document of the route table.
pub async fn openapi() -> Response {
    reply::json(200, &super::routes::openapi())
}

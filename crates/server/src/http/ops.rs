//! Endpoints for load balancers and operators, outside the protocol: no signature.

use axum::{extract::State, response::Response};
use serde_json::json;

use super::reply;
use crate::state::AppState;

/// Liveness: the process answers.
pub async fn healthz() -> Response {
    reply::json(200, &json!({"status": "ok"}))
}

/// Readiness: the database answers too, and in connector mode the SaaS's `health` (cached for a
/// few seconds, so a busy balancer does not turn into a stream of calls to the SaaS).
pub async fn readyz(State(state): State<AppState>) -> Response {
    let database = state.store.ping().await;
    if let Err(e) = &database {
        tracing::warn!(error = %e, "readiness check failed: database");
    }
    let saas = match &state.connector {
        Some(connector) => Some(connector.healthy_cached().await),
        None => None,
    };
    let ready = database.is_ok() && saas != Some(false);
    let mut body = json!({
        "status": if ready { "ok" } else { "unavailable" },
        "database": if database.is_ok() { "ok" } else { "unreachable" },
    });
    if let Some(up) = saas {
        body["connector"] = (if up { "ok" } else { "unreachable" }).into();
    }
    reply::json(if ready { 200 } else { 503 }, &body)
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

/// What a coding agent should know about this provider (`registration::Registration::llm_context`),
/// written once at start. Public: it is what the provider registers with Stripe as `llm_context`.
pub async fn llm_context(State(state): State<AppState>) -> Response {
    let mut response = Response::new(axum::body::Body::from(state.llm_context_body.clone()));
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/markdown; charset=utf-8"),
    );
    response
}

/// The OpenAPI 3.1 document of the route table.
pub async fn openapi() -> Response {
    reply::json(200, &super::routes::openapi())
}

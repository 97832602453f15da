//! Endpoints for load balancers and operators, outside the protocol: no signature.

use axum::{extract::State, response::Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::reply;
use crate::state::AppState;

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    summary = "Liveness",
    responses((status = 200, description = "alive", body = Liveness))
)]
pub async fn healthz() -> Response {
    reply::json(200, &Liveness { status: "ok" })
}

/// `{"status":"ok"}`.
#[derive(Serialize, ToSchema)]
pub struct Liveness {
    status: &'static str,
}

/// Whether provisio can serve, and what it depends on.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ok` or `unavailable`.
    status: &'static str,
    /// `ok` or `unreachable`.
    database: &'static str,
    /// Connector mode only: the SaaS's `health`, `ok` or `unreachable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    connector: Option<&'static str>,
}

/// Readiness: the database answers too, and in connector mode the SaaS's `health` (cached for a
/// few seconds, so a busy balancer does not turn into a stream of calls to the SaaS).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    summary = "Readiness: the database answers (and in connector mode the SaaS)",
    responses(
        (status = 200, description = "ready", body = Readiness),
        (status = 503, description = "the database or the SaaS is unreachable", body = Readiness),
    )
)]
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
    let up = |up: bool| if up { "ok" } else { "unreachable" };
    let body = Readiness {
        status: if ready { "ok" } else { "unavailable" },
        database: up(database.is_ok()),
        connector: saas.map(up),
    };
    reply::json(if ready { 200 } else { 503 }, &body)
}

/// Prometheus text exposition.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    summary = "Prometheus metrics",
    responses((status = 200, description = "text exposition", content_type = "text/plain", body = String))
)]
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
#[utoipa::path(
    get,
    path = "/llm-context.md",
    tag = "operations",
    summary = "What a coding agent should know about this provider: services, pricing, credentials, limits",
    responses((status = 200, description = "the page", content_type = "text/markdown", body = String))
)]
pub async fn llm_context(State(state): State<AppState>) -> Response {
    let mut response = Response::new(axum::body::Body::from(state.llm_context_body.clone()));
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/markdown; charset=utf-8"),
    );
    response
}

//! The HTTP surface: the route table (each endpoint declared once, on its handler), its middleware
//! and the OpenAPI document. Extractors check a request in its endpoint's order and answer failures
//! in its envelope; handlers are thin: the domain, then the answer.

pub(crate) mod account_requests;
pub(crate) mod deep_links;
pub mod extract;
pub mod idempotency;
mod inbound;
mod introspect;
mod middleware;
pub(crate) mod oauth;
pub(crate) mod openapi;
mod ops;
mod protocol;
pub mod reply;
pub mod request;
pub(crate) mod resources;
pub mod routes;

use axum::{Router, response::IntoResponse};
use provisio_protocol::{FlatError, envelope::FlatCode};

use crate::state::AppState;
use reply::ApiError;

pub fn router(state: AppState) -> Router {
    let limits = state.limits.clone();
    let emit_events = state.events.is_some();
    let (routes, _) = routes::table().split_for_parts();
    let routes = routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    middleware::apply(routes, &limits, emit_events)
}

async fn not_found() -> impl IntoResponse {
    ApiError::from(FlatError::new(FlatCode::NotFound, "No such endpoint"))
}

async fn method_not_allowed() -> impl IntoResponse {
    ApiError::from(FlatError::new(
        FlatCode::MethodNotAllowed,
        "Method not allowed on this endpoint",
    ))
}

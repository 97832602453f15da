//! The HTTP surface: the route table and its middleware. Handlers are thin: they check the request
//! in the spec's order, call the domain and answer in the endpoint's envelope.

mod account_requests;
mod deep_links;
pub mod idempotency;
mod introspect;
mod middleware;
mod oauth;
mod ops;
mod protocol;
pub mod reply;
pub mod request;
mod resources;

use axum::{
    Router,
    response::IntoResponse,
    routing::{get, post},
};
use provisio_protocol::{FlatError, envelope::FlatCode};

use crate::state::AppState;
use reply::ApiError;

pub fn router(state: AppState) -> Router {
    let limits = state.limits.clone();
    let routes = Router::new()
        .route("/provisioning/health", get(protocol::health))
        .route("/provisioning/services", get(protocol::services))
        .route("/provisioning/account_requests", post(account_requests::create))
        .route("/oauth/token", post(oauth::token))
        .route("/provisioning/resources", post(resources::create))
        .route("/provisioning/resources/{id}", get(resources::get))
        .route("/provisioning/resources/{id}/update_service", post(resources::update_service))
        .route(
            "/provisioning/resources/{id}/rotate_credentials",
            post(resources::rotate_credentials),
        )
        .route("/provisioning/resources/{id}/remove", post(resources::remove))
        .route("/.well-known/oauth-authorization-server", get(oauth::metadata))
        .route("/provisioning/deep_links", post(deep_links::create))
        .route("/login", get(crate::web::login))
        .route("/", get(crate::web::home))
        .route("/projects/{id}", get(crate::web::project))
        .route("/logout", post(crate::web::logout))
        .route("/v1/keys/introspect", post(introspect::introspect))
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .route("/readyz", get(ops::readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state);
    middleware::apply(routes, &limits)
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

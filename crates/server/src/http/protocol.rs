//! `GET /provisioning/health` and `GET /provisioning/services` (spec 5.1, 5.2), behind [`Signed`]:
//! signature → API-Version.

use axum::{extract::State, response::Response};
use provisio_protocol::types::{HealthResponse, ServicesResponse};

use super::{
    extract::Signed,
    reply::{json, json_bytes},
};
use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/provisioning/health",
    tag = "protocol",
    summary = "Health of the provider",
    security(("stripeSignature" = [])),
    responses((status = 200, description = "ok", body = HealthResponse))
)]
pub async fn health(_: Signed) -> Response {
    json(200, &HealthResponse::ok())
}

#[utoipa::path(
    get,
    path = "/provisioning/services",
    tag = "protocol",
    summary = "The service catalog",
    security(("stripeSignature" = [])),
    responses((status = 200, description = "the catalog", body = ServicesResponse))
)]
pub async fn services(State(state): State<AppState>, _: Signed) -> Response {
    json_bytes(200, state.services_body.clone())
}

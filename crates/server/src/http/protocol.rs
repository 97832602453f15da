//! `GET /provisioning/health` and `GET /provisioning/services` (spec 5.1, 5.2), behind [`Signed`]:
//! signature → API-Version.

use axum::{extract::State, response::Response};
use provisio_protocol::types::HealthResponse;

use super::{
    extract::Signed,
    reply::{json, json_bytes},
};
use crate::state::AppState;

pub async fn health(_: Signed) -> Response {
    json(200, &HealthResponse::ok())
}

pub async fn services(State(state): State<AppState>, _: Signed) -> Response {
    json_bytes(200, state.services_body.clone())
}

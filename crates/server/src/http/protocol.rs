//! `GET /provisioning/health` and `GET /provisioning/services` (spec 5.1, 5.2).
//! Check order for both: signature → API-Version.

use axum::{extract::State, http::HeaderMap, response::Response};
use provisio_protocol::types::HealthResponse;

use super::{
    reply::{ApiError, json, json_bytes},
    request::{RawBody, Target, check_api_version, verify_signature},
};
use crate::state::AppState;

pub async fn health(
    State(state): State<AppState>,
    target: Target,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    verify_signature(&state, &headers, &body, &target, "").await?;
    check_api_version(&headers)?;
    Ok(json(200, &HealthResponse::ok()))
}

pub async fn services(
    State(state): State<AppState>,
    target: Target,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    verify_signature(&state, &headers, &body, &target, "").await?;
    check_api_version(&headers)?;
    Ok(json_bytes(200, state.services_body.clone()))
}

//! `POST /provisioning/deep_links` (spec 5.10). Bearer failures answer in the status envelope, every
//! other error in the flat one. Order: bearer → signature → API-Version → body.

use axum::{extract::State, http::HeaderMap, response::Response};
use provisio_protocol::{
    FlatError,
    envelope::FlatCode,
    types::{DEEP_LINK_PURPOSE_DASHBOARD, DeepLinkRequest, DeepLinkResponse},
};

use super::{
    idempotency::idempotent,
    reply::{ApiError, json},
    request::{RawBody, Target, authenticate_signed, limit_token},
};
use crate::{
    domain::dashboard::{self, DashboardError},
    state::AppState,
};

pub async fn create(
    State(state): State<AppState>,
    target: Target,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let call = authenticate_signed(&state, &headers, &body, &target, "").await?;
    limit_token(&state, &call.principal).await.map_err(|seconds| {
        flat(FlatCode::RateLimited, "Too many requests for this token; retry later")
            .retry_after(seconds)
    })?;
    let conflict = || {
        flat(
            FlatCode::IdempotencyConflict,
            "Idempotency-Key was already used with a different request",
        )
    };
    idempotent(
        &state,
        &headers,
        &call,
        "/provisioning/deep_links",
        &body,
        conflict,
        issue(&state, &call.principal, &body),
    )
    .await
}

async fn issue(
    state: &AppState,
    principal: &crate::domain::auth::Principal,
    body: &[u8],
) -> Result<Response, ApiError> {
    let request = parse(body)?;
    let purpose = request.purpose.unwrap_or_default();
    if purpose != DEEP_LINK_PURPOSE_DASHBOARD {
        return Err(flat(
            FlatCode::UnsupportedPurpose,
            format!("Unsupported purpose: {purpose}. Supported: {DEEP_LINK_PURPOSE_DASHBOARD}"),
        ));
    }
    let project_id = match request.resource_id.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(
            raw.parse::<i64>()
                .ok()
                .filter(|&id| id > 0 && raw.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| {
                    flat(FlatCode::InvalidRequest, format!("Invalid resource_id: {raw}"))
                })?,
        ),
    };
    let link = dashboard::issue_link(
        &state.store,
        principal,
        project_id,
        &state.public_url,
        state.clock.now(),
    )
    .await
    .map_err(|e| match e {
        DashboardError::Forbidden => flat(FlatCode::Forbidden, e.to_string()),
        e => {
            tracing::error!(error = %e, "deep link failed");
            flat(FlatCode::ServerError, "Internal server error")
        }
    })?;
    Ok(json(
        200,
        &DeepLinkResponse {
            purpose: DEEP_LINK_PURPOSE_DASHBOARD.into(),
            url: link.url,
            expires_at: link.expires_at,
        },
    ))
}

fn flat(code: FlatCode, message: impl Into<String>) -> ApiError {
    FlatError::new(code, message).into()
}

pub(crate) fn parse(body: &[u8]) -> Result<DeepLinkRequest, ApiError> {
    let invalid = || flat(FlatCode::InvalidRequest, "Request body must be a JSON object");
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|_| invalid())?;
    if !value.is_object() {
        return Err(invalid());
    }
    serde_json::from_value(value)
        .map_err(|e| flat(FlatCode::InvalidRequest, format!("Malformed request: {e}")))
}

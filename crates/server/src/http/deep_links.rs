//! `POST /provisioning/deep_links` (spec 5.10), behind [`BearerSigned`] in the flat envelope:
//! bearer (its failures in the status envelope) → signature → API-Version → body.

use axum::{extract::State, response::Response};
use provisio_protocol::{
    FlatError, StatusError,
    envelope::FlatCode,
    types::{DEEP_LINK_PURPOSE_DASHBOARD, DeepLinkRequest, DeepLinkResponse},
};

use super::{
    extract::{BearerSigned, InFlat, parse_resource_id},
    openapi::IdempotencyKey,
    reply::{ApiError, json},
};
use crate::{
    domain::dashboard::{self, DashboardError},
    state::AppState,
};

#[utoipa::path(
    post,
    path = "/provisioning/deep_links",
    tag = "protocol",
    summary = "A one-time dashboard link",
    security(("stripeSignature" = [], "bearer" = [])),
    params(IdempotencyKey),
    request_body = DeepLinkRequest,
    responses(
        (status = 200, description = "the link", body = DeepLinkResponse),
        (status = 400, description = "unsupported_purpose or invalid_request (flat)", body = FlatError),
        (status = 401, description = "unauthorized (status): the bearer", body = StatusError),
        (status = 403, description = "forbidden (flat)", body = FlatError),
        (status = 409, description = "idempotency_conflict (flat)", body = FlatError),
        (status = 429, description = "rate_limited (flat)", body = FlatError),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    call: BearerSigned<DeepLinkRequest, InFlat>,
) -> Result<Response, ApiError> {
    let purpose = call.body.purpose.unwrap_or_default();
    if purpose != DEEP_LINK_PURPOSE_DASHBOARD {
        return Err(flat(
            FlatCode::UnsupportedPurpose,
            format!("Unsupported purpose: {purpose}. Supported: {DEEP_LINK_PURPOSE_DASHBOARD}"),
        ));
    }
    let project_id = project_id(call.body.resource_id.as_deref())?;
    let (store, url, now) = (&state.store, &state.public_url, state.clock.now());
    let link =
        dashboard::issue_link(store, &call.principal, project_id, url, now).await.map_err(|e| {
            match e {
                DashboardError::Forbidden => flat(FlatCode::Forbidden, e.to_string()),
                e => {
                    tracing::error!(error = %e, "deep link failed");
                    flat(FlatCode::ServerError, "Internal server error")
                }
            }
        })?;
    let (url, expires_at) = (link.url, link.expires_at);
    Ok(json(
        200,
        &DeepLinkResponse { purpose: DEEP_LINK_PURPOSE_DASHBOARD.into(), url, expires_at },
    ))
}

/// The resource the link opens, if the request names one.
fn project_id(raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    match raw {
        None | Some("") => Ok(None),
        Some(raw) => parse_resource_id(raw)
            .map(Some)
            .ok_or_else(|| flat(FlatCode::InvalidRequest, format!("Invalid resource_id: {raw}"))),
    }
}

fn flat(code: FlatCode, message: impl Into<String>) -> ApiError {
    FlatError::new(code, message).into()
}

//! `POST /v1/keys/introspect` (RFC 7662 style): the SaaS's own services ask whether a project key or
//! personal key that provisio issued is live, and what it reaches. Authenticated with an operator
//! token from configuration (`Authorization: Bearer …`).

use axum::{
    extract::State,
    http::{HeaderMap, header},
    response::Response,
};
use provisio_protocol::{FlatError, envelope::FlatCode};
use serde::Deserialize;

use super::{
    extract::{IntrospectionTokens, Operator},
    reply::{ApiError, json, no_store},
    request::RawBody,
};
use crate::{
    domain::introspection::{self, KeyReach},
    state::AppState,
};

#[derive(Deserialize, Default, utoipa::ToSchema)]
struct IntrospectRequest {
    /// The key asked about.
    token: Option<String>,
}

/// The answer: `{"active":false}`, or what a live key reaches.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Introspection {
    active: bool,
    /// `personal_key` or `project_key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    organization_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    project_id: Option<i64>,
}

#[utoipa::path(
    post,
    path = "/v1/keys/introspect",
    tag = "operator",
    summary = "Is a project key or personal key live, and what does it reach (RFC 7662 style)",
    security(("operator" = [])),
    request_body(content = IntrospectRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "active or not", body = Introspection),
        (status = 400, description = "invalid_request (flat)", body = FlatError),
        (status = 401, description = "unauthorized (flat)", body = FlatError),
    )
)]
pub async fn introspect(
    State(state): State<AppState>,
    _: Operator<IntrospectionTokens>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    let request: IntrospectRequest = if is_json {
        serde_json::from_slice(&body).ok()
    } else {
        serde_urlencoded::from_bytes(&body).ok()
    }
    .ok_or_else(|| {
        ApiError::from(FlatError::new(FlatCode::InvalidRequest, "Malformed request body"))
    })?;
    let token = request.token.filter(|t| !t.is_empty()).ok_or_else(|| {
        ApiError::from(FlatError::new(FlatCode::InvalidRequest, "token is required"))
    })?;
    let reach = introspection::introspect(&state.store, &token).await.map_err(|e| {
        tracing::error!(error = %e, "introspection failed");
        ApiError::server_error()
    })?;
    let answer = match reach {
        Some(KeyReach { kind, organization_id, project_id, active: true }) => Introspection {
            active: true,
            token_type: Some(kind.label()),
            organization_id: Some(organization_id),
            project_id: Some(project_id),
        },
        _ => Introspection {
            active: false,
            token_type: None,
            organization_id: None,
            project_id: None,
        },
    };
    Ok(no_store(json(200, &answer)))
}

//! `POST /v1/connector/…`: the SaaS tells provisio what changed on its side (connector v1, "The
//! SaaS tells provisio"). Authenticated with an operator token from configuration
//! (`Authorization: Bearer …`); with none configured the endpoints do not exist (404, as an unknown
//! path). Each answers `200 {"ok":true}`, also for ids provisio never saw.

use axum::{
    extract::{Path, State, rejection::PathRejection},
    response::{IntoResponse, Response},
};
use provisio_protocol::{FlatError, envelope::FlatCode};

use super::{
    extract::{ConnectorTokens, Operator},
    openapi::{Acknowledged, InboundAnswers, SaasProjectPath, UserPath},
    reply::{ApiError, json, no_store},
};
use crate::{
    domain::{
        Internal,
        inbound::{Inbound, parse_project_id, valid_user_id},
    },
    state::AppState,
};

#[utoipa::path(
    post,
    path = "/v1/connector/users/{user_id}/revoke",
    tag = "connector",
    summary = "The SaaS revokes a user: every token family, unused code, consent request, deep link and session of the user dies",
    security(("operator" = [])),
    params(UserPath),
    responses(InboundAnswers)
)]
pub async fn revoke_user(
    State(state): State<AppState>,
    _: Operator<ConnectorTokens>,
    user_id: Result<Path<String>, PathRejection>,
) -> Response {
    let user_id = match user(user_id) {
        Ok(user_id) => user_id,
        Err(refusal) => return refusal.into_response(),
    };
    answer(inbound(&state).revoke_user(&user_id, state.clock.now()).await, "revoke")
}

#[utoipa::path(
    post,
    path = "/v1/connector/projects/{project_id}/removed",
    tag = "connector",
    summary = "The SaaS removed a project: the resource living in it is marked removed",
    security(("operator" = [])),
    params(SaasProjectPath),
    responses(InboundAnswers)
)]
pub async fn project_removed(
    State(state): State<AppState>,
    _: Operator<ConnectorTokens>,
    project_id: Result<Path<String>, PathRejection>,
) -> Response {
    let project_id = match project(project_id) {
        Ok(project_id) => project_id,
        Err(refusal) => return refusal.into_response(),
    };
    answer(inbound(&state).project_removed(project_id, state.clock.now()).await, "removed")
}

#[utoipa::path(
    post,
    path = "/v1/connector/users/{user_id}/erase",
    tag = "connector",
    summary = "The SaaS erases a user: revoked as above, then its personal data pseudonymized",
    security(("operator" = [])),
    params(UserPath),
    responses(InboundAnswers)
)]
pub async fn erase_user(
    State(state): State<AppState>,
    _: Operator<ConnectorTokens>,
    user_id: Result<Path<String>, PathRejection>,
) -> Response {
    let user_id = match user(user_id) {
        Ok(user_id) => user_id,
        Err(refusal) => return refusal.into_response(),
    };
    answer(inbound(&state).erase_user(&user_id, state.clock.now()).await, "erase")
}

fn inbound(state: &AppState) -> Inbound<'_> {
    Inbound { store: &state.store, backend: state.connector.is_none().then_some(&state.backend) }
}

fn answer(outcome: Result<(), Internal>, call: &'static str) -> Response {
    match outcome {
        Ok(()) => no_store(json(200, &Acknowledged { ok: true })),
        Err(e) => {
            tracing::error!(error = %e, call, "inbound connector call failed");
            ApiError::server_error().into_response()
        }
    }
}

/// A path id that is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    BadUserId,
    BadProjectId,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let message = match self {
            Self::BadUserId => "user_id must be 1-64 characters of A-Z, a-z, 0-9, _ and -",
            Self::BadProjectId => "project_id must be a positive integer below 2^53",
        };
        ApiError::from(FlatError::new(FlatCode::InvalidRequest, message)).into_response()
    }
}

fn user(raw: Result<Path<String>, PathRejection>) -> Result<String, Refusal> {
    match raw {
        Ok(Path(id)) if valid_user_id(&id) => Ok(id),
        _ => Err(Refusal::BadUserId),
    }
}

fn project(raw: Result<Path<String>, PathRejection>) -> Result<i64, Refusal> {
    raw.ok().and_then(|Path(id)| parse_project_id(&id)).ok_or(Refusal::BadProjectId)
}

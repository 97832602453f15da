//! `POST /provisioning/resources`, `GET /provisioning/resources/{id}` and the `update_service`,
//! `rotate_credentials` and `remove` actions (spec 5.5–5.9). Check order: bearer → signature →
//! API-Version → path id → body; every error in the status envelope.

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::HeaderMap,
    response::Response,
};
use provisio_protocol::{
    StatusError,
    envelope::StatusCode,
    types::{CreateResourceRequest, ResourceResponse, UpdateServiceRequest},
};
use serde::de::DeserializeOwned;

use super::{
    idempotency::{idempotency_key, idempotent},
    reply::{ApiError, json},
    request::{RawBody, SignedCall, Target, authenticate_signed, limit_token, too_long},
};
use crate::{
    domain::resources::{CreateInput, ResourceError, ResourceView, UpdateInput},
    state::AppState,
};

pub async fn create(
    State(state): State<AppState>,
    target: Target,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let call = admit(&state, &headers, &body, &target, "").await?;
    let principal = &call.principal;
    idempotent(&state, &headers, &call, "/provisioning/resources", &body, || conflict(""), async {
        let request: CreateResourceRequest = parse_body(&body, "")?;
        let fields = [
            ("service_id", request.service_id.as_deref()),
            ("project_id", request.project_id.as_deref()),
            ("orchestrator_resource_id", request.orchestrator_resource_id.as_deref()),
            ("environment", request.environment.as_deref()),
        ];
        if let Some(message) = too_long(&fields) {
            return Err(StatusError::new("", StatusCode::InvalidRequest, message).into());
        }
        let input = CreateInput {
            payment_token: request.payment_token().map(String::from),
            service_id: request.service_id,
            configuration: request.configuration,
            project_id: request.project_id.filter(|p| !p.is_empty()),
            orchestrator_resource_id: request.orchestrator_resource_id,
            environment: request.environment,
        };
        let view = state
            .resources(principal)
            .keyed(idempotency_key(&headers))
            .create(principal, input, state.clock.now())
            .await;
        answer(view, "", StatusCode::ServerError, CREATE_REFUSALS)
    })
    .await
}

pub async fn get(
    State(state): State<AppState>,
    target: Target,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let call = admit(&state, &headers, &body, &target, &raw_id).await?;
    let principal = &call.principal;
    let id = resource_id(&raw_id)?;
    answer(
        state.resources(principal).get(principal, id).await,
        &raw_id,
        StatusCode::ServerError,
        &[],
    )
}

pub async fn update_service(
    State(state): State<AppState>,
    target: Target,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let call = admit(&state, &headers, &body, &target, &raw_id).await?;
    let principal = &call.principal;
    let id = resource_id(&raw_id)?;
    let path = format!("/provisioning/resources/{id}/update_service");
    idempotent(&state, &headers, &call, &path, &body, || conflict(&raw_id), async {
        let request: UpdateServiceRequest = parse_body(&body, &raw_id)?;
        if let Some(message) = too_long(&[("service_id", request.service_id.as_deref())]) {
            return Err(StatusError::new(&raw_id, StatusCode::InvalidRequest, message).into());
        }
        let input = UpdateInput {
            payment_token: request.payment_token().map(String::from),
            service_id: request.service_id,
            configuration: request.configuration,
        };
        let view = state
            .resources(principal)
            .keyed(idempotency_key(&headers))
            .update_service(principal, id, input, state.clock.now())
            .await;
        answer(view, &raw_id, StatusCode::ServerError, UPDATE_REFUSALS)
    })
    .await
}

pub async fn rotate_credentials(
    State(state): State<AppState>,
    target: Target,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    act(state, target, raw_id, headers, body, Action::Rotate).await
}

pub async fn remove(
    State(state): State<AppState>,
    target: Target,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    act(state, target, raw_id, headers, body, Action::Remove).await
}

/// The body-less actions on one resource.
#[derive(Clone, Copy)]
enum Action {
    Rotate,
    Remove,
}

async fn act(
    state: AppState,
    target: Target,
    raw_id: String,
    headers: HeaderMap,
    body: Bytes,
    action: Action,
) -> Result<Response, ApiError> {
    let call = admit(&state, &headers, &body, &target, &raw_id).await?;
    let principal = &call.principal;
    let id = resource_id(&raw_id)?;
    let (name, internal) = match action {
        Action::Rotate => ("rotate_credentials", StatusCode::CredentialRotationFailed),
        Action::Remove => ("remove", StatusCode::ServerError),
    };
    let path = format!("/provisioning/resources/{id}/{name}");
    idempotent(&state, &headers, &call, &path, &body, || conflict(&raw_id), async {
        let resources = state.resources(principal).keyed(idempotency_key(&headers));
        let now = state.clock.now();
        let view = match action {
            Action::Rotate => resources.rotate(principal, id, now).await,
            Action::Remove => resources.remove(principal, id, now).await,
        };
        answer(view, &raw_id, internal, &[StatusCode::InvalidRequest])
    })
    .await
}

/// Bearer → signature → API-Version → the per-token rate limit, answered in the status envelope.
async fn admit(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    target: &Target,
    raw_id: &str,
) -> Result<SignedCall, ApiError> {
    let call = authenticate_signed(state, headers, body, target, raw_id).await?;
    limit_token(state, &call.principal).await.map_err(|seconds| limited(raw_id, seconds))?;
    Ok(call)
}

fn limited(raw_id: &str, seconds: u64) -> ApiError {
    ApiError::from(StatusError::new(
        raw_id,
        StatusCode::RateLimited,
        "Too many requests for this token; retry later",
    ))
    .retry_after(seconds)
}

fn conflict(raw_id: &str) -> ApiError {
    StatusError::new(
        raw_id,
        StatusCode::IdempotencyConflict,
        "Idempotency-Key was already used with a different request",
    )
    .into()
}

/// Resource ids are the decimal ids of projects.
fn resource_id(raw: &str) -> Result<i64, ApiError> {
    let id = (!raw.is_empty() && raw.len() <= 18 && raw.bytes().all(|b| b.is_ascii_digit()))
        .then(|| raw.parse::<i64>().ok())
        .flatten()
        .filter(|&id| id > 0);
    id.ok_or_else(|| {
        StatusError::new(raw, StatusCode::InvalidResourceId, format!("Invalid resource id: {raw}"))
            .into()
    })
}

/// An empty body is an empty object; anything else must be a JSON object.
pub(crate) fn parse_body<T: DeserializeOwned + Default>(
    body: &[u8],
    raw_id: &str,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let invalid = |message: String| {
        ApiError::from(StatusError::new(raw_id, StatusCode::InvalidRequest, message))
    };
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| invalid("Request body must be a JSON object".into()))?;
    if !value.is_object() {
        return Err(invalid("Request body must be a JSON object".into()));
    }
    serde_json::from_value(value).map_err(|e| invalid(format!("Malformed request: {e}")))
}

/// APP's codes a SaaS refusal may carry through, per endpoint (connector mode); any other code is
/// answered as `provider_refused` with the SaaS's message.
const CREATE_REFUSALS: &[StatusCode] = &[
    StatusCode::InvalidRequest,
    StatusCode::UnknownService,
    StatusCode::InvalidConfiguration,
    StatusCode::RequiresPaymentCredentials,
    StatusCode::BillingActivationFailed,
    StatusCode::NoTeam,
];
const UPDATE_REFUSALS: &[StatusCode] = &[
    StatusCode::InvalidRequest,
    StatusCode::MissingServiceId,
    StatusCode::UnknownService,
    StatusCode::InvalidConfiguration,
    StatusCode::UpdateNotAllowed,
    StatusCode::RequiresPaymentCredentials,
    StatusCode::BillingActivationFailed,
];

/// `internal` is the code of a failure that is provisio's own (or, for a rotation, any refusal);
/// `refusable` lists the codes a SaaS refusal may carry through.
fn answer(
    view: Result<ResourceView, ResourceError>,
    raw_id: &str,
    internal: StatusCode,
    refusable: &[StatusCode],
) -> Result<Response, ApiError> {
    let view = view.map_err(|e| {
        let code = match &e {
            ResourceError::UnknownService(_) => StatusCode::UnknownService,
            ResourceError::InvalidConfiguration(_) => StatusCode::InvalidConfiguration,
            ResourceError::RequiresPayment(_) => StatusCode::RequiresPaymentCredentials,
            ResourceError::BillingFailed(_) => StatusCode::BillingActivationFailed,
            ResourceError::NoTeam => StatusCode::NoTeam,
            ResourceError::MissingServiceId => StatusCode::MissingServiceId,
            ResourceError::UpdateNotAllowed { .. } => StatusCode::UpdateNotAllowed,
            ResourceError::Forbidden => StatusCode::Forbidden,
            ResourceError::NotFound => StatusCode::NotFound,
            ResourceError::Removed => StatusCode::InvalidState,
            ResourceError::Unavailable { retry_after_secs } => {
                return ApiError::from(StatusError::new(
                    raw_id,
                    StatusCode::ProviderUnavailable,
                    e.to_string(),
                ))
                .retry_after(*retry_after_secs);
            }
            // A rotation the SaaS refused failed, as far as the orchestrator is concerned.
            ResourceError::Refused { .. } if internal == StatusCode::CredentialRotationFailed => {
                return ApiError::from(StatusError::new(
                    raw_id,
                    internal,
                    "The credentials could not be rotated",
                ));
            }
            ResourceError::Refused { code, .. } => StatusCode::from_wire(code)
                .filter(|c| refusable.contains(c))
                .unwrap_or(StatusCode::ProviderRefused),
            ResourceError::Internal(inner) => {
                tracing::error!(error = %inner, "resource operation failed");
                return ApiError::from(StatusError::new(
                    raw_id,
                    internal,
                    "The operation failed; nothing was changed",
                ));
            }
        };
        ApiError::from(StatusError::new(raw_id, code, e.to_string()))
    })?;
    Ok(json(
        200,
        &match view {
            ResourceView::Complete { id, access } => {
                ResourceResponse::complete(id.to_string(), access)
            }
            ResourceView::Removed { id } => ResourceResponse::removed(id.to_string()),
        },
    ))
}

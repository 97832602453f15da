//! `POST /provisioning/resources`, `GET /provisioning/resources/{id}` and the `update_service`,
//! `rotate_credentials` and `remove` actions (spec 5.5–5.9). Check order: bearer → signature →
//! API-Version → path id → body; every error in the status envelope.

use axum::{extract::State, response::Response};
use provisio_protocol::{
    StatusError,
    envelope::StatusCode,
    types::{CreateResourceRequest, ResourceResponse, UpdateServiceRequest},
};

use super::{
    extract::{BearerSigned, NoBody, ResourceCall},
    openapi::{IdempotencyKey, ResourcePath},
    reply::{ApiError, json},
    request::too_long,
};
use crate::{
    domain::resources::{CreateInput, ResourceError, ResourceView, UpdateInput},
    state::AppState,
};

#[utoipa::path(
    post,
    path = "/provisioning/resources",
    tag = "protocol",
    summary = "Provision a resource (idempotent by project_id and Idempotency-Key)",
    security(("stripeSignature" = [], "bearer" = [])),
    params(IdempotencyKey),
    request_body = CreateResourceRequest,
    responses(
        (status = 200, description = "complete with credentials", body = ResourceResponse),
        (status = 400, description = "status error", body = StatusError),
        (status = 401, description = "unauthorized (status)", body = StatusError),
        (status = 403, description = "forbidden (status): a project_id the token does not reach", body = StatusError),
        (status = 409, description = "idempotency_conflict (status)", body = StatusError),
        (status = 429, description = "rate_limited (status)", body = StatusError),
        (status = 500, description = "server_error (status)", body = StatusError),
        (status = 503, description = "provider_unavailable (status)", body = StatusError),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    call: BearerSigned<CreateResourceRequest>,
) -> Result<Response, ApiError> {
    let (principal, request) = (&call.principal, call.body);
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
    let resources = state.resources(principal).keyed(call.idempotency_key.as_deref());
    let view = resources.create(principal, input, state.clock.now()).await;
    answer(view, "", StatusCode::ServerError, CREATE_REFUSALS)
}

#[utoipa::path(
    get,
    path = "/provisioning/resources/{id}",
    tag = "protocol",
    summary = "Read a resource",
    security(("stripeSignature" = [], "bearer" = [])),
    params(ResourcePath),
    responses(
        (status = 200, description = "complete or removed", body = ResourceResponse),
        (status = 400, description = "invalid_resource_id (status)", body = StatusError),
        (status = 401, description = "unauthorized (status)", body = StatusError),
        (status = 403, description = "forbidden (status)", body = StatusError),
        (status = 404, description = "not_found (status)", body = StatusError),
        (status = 429, description = "rate_limited (status)", body = StatusError),
        (status = 500, description = "server_error (status)", body = StatusError),
        (status = 503, description = "provider_unavailable (status)", body = StatusError),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    call: ResourceCall<NoBody>,
) -> Result<Response, ApiError> {
    let view = state.resources(&call.principal).get(&call.principal, call.id).await;
    answer(view, &call.raw_id, StatusCode::ServerError, &[])
}

#[utoipa::path(
    post,
    path = "/provisioning/resources/{id}/update_service",
    tag = "protocol",
    summary = "Move a resource to another service",
    security(("stripeSignature" = [], "bearer" = [])),
    params(ResourcePath, IdempotencyKey),
    request_body = UpdateServiceRequest,
    responses(
        (status = 200, description = "complete", body = ResourceResponse),
        (status = 400, description = "status error", body = StatusError),
        (status = 401, description = "unauthorized (status)", body = StatusError),
        (status = 403, description = "forbidden (status)", body = StatusError),
        (status = 404, description = "not_found (status)", body = StatusError),
        (status = 409, description = "invalid_state or idempotency_conflict (status)", body = StatusError),
        (status = 429, description = "rate_limited (status)", body = StatusError),
        (status = 500, description = "server_error (status)", body = StatusError),
        (status = 503, description = "provider_unavailable (status)", body = StatusError),
    )
)]
pub async fn update_service(
    State(state): State<AppState>,
    call: ResourceCall<UpdateServiceRequest>,
) -> Result<Response, ApiError> {
    let (principal, request) = (&call.principal, call.body);
    if let Some(message) = too_long(&[("service_id", request.service_id.as_deref())]) {
        return Err(StatusError::new(&call.raw_id, StatusCode::InvalidRequest, message).into());
    }
    let input = UpdateInput {
        payment_token: request.payment_token().map(String::from),
        service_id: request.service_id,
        configuration: request.configuration,
    };
    let resources = state.resources(principal).keyed(call.idempotency_key.as_deref());
    let view = resources.update_service(principal, call.id, input, state.clock.now()).await;
    answer(view, &call.raw_id, StatusCode::ServerError, UPDATE_REFUSALS)
}

#[utoipa::path(
    post,
    path = "/provisioning/resources/{id}/rotate_credentials",
    tag = "protocol",
    summary = "Replace a resource's credentials",
    security(("stripeSignature" = [], "bearer" = [])),
    params(ResourcePath, IdempotencyKey),
    responses(
        (status = 200, description = "complete with new credentials", body = ResourceResponse),
        (status = 400, description = "invalid_resource_id or invalid_request (status)", body = StatusError),
        (status = 401, description = "unauthorized (status)", body = StatusError),
        (status = 403, description = "forbidden (status)", body = StatusError),
        (status = 404, description = "not_found (status)", body = StatusError),
        (status = 409, description = "invalid_state or idempotency_conflict (status)", body = StatusError),
        (status = 429, description = "rate_limited (status)", body = StatusError),
        (status = 500, description = "credential_rotation_failed (status)", body = StatusError),
        (status = 503, description = "provider_unavailable (status)", body = StatusError),
    )
)]
pub async fn rotate_credentials(
    State(state): State<AppState>,
    call: ResourceCall<NoBody>,
) -> Result<Response, ApiError> {
    let resources = state.resources(&call.principal).keyed(call.idempotency_key.as_deref());
    let view = resources.rotate(&call.principal, call.id, state.clock.now()).await;
    let refusable = &[StatusCode::InvalidRequest];
    answer(view, &call.raw_id, StatusCode::CredentialRotationFailed, refusable)
}

#[utoipa::path(
    post,
    path = "/provisioning/resources/{id}/remove",
    tag = "protocol",
    summary = "Remove a resource (idempotent)",
    security(("stripeSignature" = [], "bearer" = [])),
    params(ResourcePath, IdempotencyKey),
    responses(
        (status = 200, description = "removed", body = ResourceResponse),
        (status = 400, description = "invalid_resource_id or invalid_request (status)", body = StatusError),
        (status = 401, description = "unauthorized (status)", body = StatusError),
        (status = 403, description = "forbidden (status)", body = StatusError),
        (status = 404, description = "not_found (status)", body = StatusError),
        (status = 409, description = "idempotency_conflict (status)", body = StatusError),
        (status = 429, description = "rate_limited (status)", body = StatusError),
        (status = 500, description = "server_error (status)", body = StatusError),
        (status = 503, description = "provider_unavailable (status)", body = StatusError),
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    call: ResourceCall<NoBody>,
) -> Result<Response, ApiError> {
    let resources = state.resources(&call.principal).keyed(call.idempotency_key.as_deref());
    let view = resources.remove(&call.principal, call.id, state.clock.now()).await;
    answer(view, &call.raw_id, StatusCode::ServerError, &[StatusCode::InvalidRequest])
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

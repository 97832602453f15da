//! What a handler needs from a request before the domain sees it: the raw body (the signature covers
//! its exact bytes) and the orchestrator's signature.

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::HeaderMap,
};
use provisio_protocol::{FlatError, envelope::FlatCode, signature::SIGNATURE_HEADER};

use super::reply::ApiError;
use crate::{orchestrators::Orchestrator, state::AppState};

/// The request body exactly as received, within the configured size limit.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(req, state).await.map(RawBody).map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                FlatError::new(FlatCode::RequestTooLarge, "Request body is too large").into()
            } else {
                FlatError::new(FlatCode::InvalidRequest, "Could not read the request body").into()
            }
        })
    }
}

/// Checks the `Stripe-Signature` of a request over its raw body and names the orchestrator that
/// signed it: against the configured secrets and the ones kept in the database (reloaded at most
/// every `signing_secrets_refresh_secs`). No secret at all → 500 flat `server_error`; any failure →
/// 401 flat `invalid_signature` (the reason goes to the debug log only).
pub async fn verify_signature<'s>(
    state: &'s AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<&'s Orchestrator, ApiError> {
    refresh_signing_secrets(state).await;
    if !state.orchestrators.has_secrets() {
        return Err(no_secret());
    }
    let header = headers.get(SIGNATURE_HEADER).map(|v| v.as_bytes());
    state
        .orchestrators
        .verify(header, body, state.clock.now(), state.limits.signature_tolerance_secs)
        .map_err(|reason| {
            tracing::debug!(reason = reason.reason(), "signature refused");
            crate::metrics::signature_failure(reason.reason());
            FlatError::invalid_signature().into()
        })
}

/// Whether the request carries a `Stripe-Signature` at all. With no secret configured the answer is
/// 500 before anything else; a missing header answers `missing()` (each endpoint has its own).
pub async fn require_signature_header(
    state: &AppState,
    headers: &HeaderMap,
    missing: impl FnOnce() -> ApiError,
) -> Result<(), ApiError> {
    refresh_signing_secrets(state).await;
    if !state.orchestrators.has_secrets() {
        return Err(no_secret());
    }
    if headers.contains_key(SIGNATURE_HEADER) { Ok(()) } else { Err(missing()) }
}

/// Reloads the database signing secrets when the held ones are older than the refresh interval
/// (nothing to do, and no database round trip, otherwise).
async fn refresh_signing_secrets(state: &AppState) {
    let interval_ms = i64::try_from(state.limits.signing_secrets_refresh_secs.saturating_mul(1000))
        .unwrap_or(i64::MAX);
    let load =
        crate::signing_secrets::load_valid(&state.store, &state.server_secret, state.clock.now());
    state.orchestrators.refresh(state.clock.now_ms(), interval_ms, load).await;
}

fn no_secret() -> ApiError {
    tracing::error!("signed request refused: no signing secret is configured");
    FlatError::new(FlatCode::ServerError, "No signing secret is configured").into()
}

/// The `API-Version` check (spec 3.3).
pub fn check_api_version(headers: &HeaderMap) -> Result<(), ApiError> {
    let value = headers.get(provisio_protocol::API_VERSION_HEADER).map(|v| v.as_bytes());
    provisio_protocol::version::check(value).map_err(ApiError::from)
}

/// Bearer authentication for resource and deep-link endpoints: failures answer 401 in the status
/// envelope with `id` set to the resource the request named (`""` when none).
pub async fn authenticate_bearer(
    state: &AppState,
    headers: &HeaderMap,
    resource_id: &str,
) -> Result<crate::domain::auth::Principal, ApiError> {
    use crate::domain::auth::{AuthError, authenticate};
    use provisio_protocol::{StatusError, envelope::StatusCode};
    let authorization = headers.get(axum::http::header::AUTHORIZATION).map(|v| v.as_bytes());
    authenticate(&state.store, authorization, state.clock.now()).await.map_err(|e| match e {
        AuthError::Internal(e) => {
            tracing::error!(error = %e, "bearer lookup failed");
            StatusError::new(resource_id, StatusCode::ServerError, "Internal server error").into()
        }
        e => StatusError::new(resource_id, StatusCode::Unauthorized, e.to_string()).into(),
    })
}

/// Bearer → signature → API-Version, for resources and deep links: a bearer alone is never enough,
/// and a token works only under the signature of the orchestrator it was issued to.
pub async fn authenticate_signed(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    resource_id: &str,
) -> Result<crate::domain::auth::Principal, ApiError> {
    use provisio_protocol::{StatusError, envelope::StatusCode};
    let principal = authenticate_bearer(state, headers, resource_id).await?;
    let signer = verify_signature(state, headers, body).await?;
    if signer.name != principal.orchestrator {
        return Err(StatusError::new(
            resource_id,
            StatusCode::Unauthorized,
            "Invalid or expired access token",
        )
        .into());
    }
    check_api_version(headers)?;
    Ok(principal)
}

/// The per-token limit on resource and deep-link calls; `Err` carries the `Retry-After` seconds.
pub async fn limit_token(
    state: &AppState,
    principal: &crate::domain::auth::Principal,
) -> Result<(), u64> {
    state.limit(crate::rate_limit::Scope::Token, &principal.family_id).await
}

/// Whether the request's `Authorization: Bearer` token is one of the operator tokens `known` (their
/// SHA-256 hashes), compared in constant time with every one; the scheme is case-insensitive
/// (RFC 9110 11.1).
pub(crate) fn bearer_is_one_of(headers: &HeaderMap, known: &[String]) -> bool {
    use subtle::ConstantTimeEq;
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| crate::domain::auth::bearer_token(v.as_bytes()))
        .map(crate::crypto::token_hash);
    presented.is_some_and(|presented| {
        known.iter().fold(false, |ok, k| ok | bool::from(k.as_bytes().ct_eq(presented.as_bytes())))
    })
}

/// The longest string a request may carry in an identifier or a name (`id`, `name`,
/// `project_id`, …): far beyond any real one, and small enough that every answer and record stays
/// bounded.
pub const MAX_FIELD_CHARS: usize = 255;
/// The most scopes an account request may ask for.
pub const MAX_SCOPES: usize = 100;

/// The first of `fields` longer than [`MAX_FIELD_CHARS`], as the message that names it.
pub(crate) fn too_long(fields: &[(&str, Option<&str>)]) -> Option<String> {
    fields
        .iter()
        .find(|(_, value)| value.is_some_and(|v| v.chars().count() > MAX_FIELD_CHARS))
        .map(|(name, _)| format!("{name} is too long (at most {MAX_FIELD_CHARS} characters)"))
}

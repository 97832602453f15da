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
/// signed it. No secret configured → 500 flat `server_error`; any failure → 401 flat
/// `invalid_signature` (the reason goes to the debug log only).
pub fn verify_signature<'s>(
    state: &'s AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<&'s Orchestrator, ApiError> {
    if !state.orchestrators.has_secrets() {
        tracing::error!("signed request refused: no signing secret is configured");
        return Err(FlatError::new(FlatCode::ServerError, "No signing secret is configured").into());
    }
    let header = headers.get(SIGNATURE_HEADER).map(|v| v.as_bytes());
    state
        .orchestrators
        .verify(header, body, state.clock.now(), state.limits.signature_tolerance_secs)
        .map_err(|reason| {
            tracing::debug!(reason = reason.reason(), "signature refused");
            FlatError::invalid_signature().into()
        })
}

/// The `API-Version` check (spec 3.3).
pub fn check_api_version(headers: &HeaderMap) -> Result<(), ApiError> {
    let value = headers.get(provisio_protocol::API_VERSION_HEADER).map(|v| v.as_bytes());
    provisio_protocol::version::check(value).map_err(ApiError::from)
}

//! The checks a request passes before the domain sees it, one function each: the raw body (the
//! signature covers its exact bytes), the orchestrator's signature and its binding, API-Version, the
//! bearer, the per-token limit, operator tokens. The extractors (`extract`) run them in each
//! endpoint's order.

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::{HeaderMap, request::Parts},
};
use provisio_protocol::{FlatError, envelope::FlatCode, signature::SIGNATURE_HEADER};

use std::sync::Arc;

use super::reply::ApiError;
use crate::{crypto, orchestrators::Orchestrator, state::AppState};

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

/// What a request asks for: its method and path (the query is ignored, as every handler ignores
/// it). The signature does not cover it, so [`verify_signature`] binds the signature to it.
pub struct Target(String);

impl Target {
    /// Whether the request may change anything (every method but `GET` and `HEAD`).
    fn changes_state(&self) -> bool {
        !(self.0.starts_with("GET ") || self.0.starts_with("HEAD "))
    }
}

impl Target {
    pub fn of(parts: &Parts) -> Self {
        Self(format!("{} {}", parts.method, parts.uri.path()))
    }
}

/// A request whose signature verified.
pub struct Verified {
    pub orchestrator: Arc<Orchestrator>,
    /// Names what was signed — the orchestrator, the timestamp and the body — whatever else the
    /// header carried (extra or upper-case `v1` values, spaces), so a reworded header is the same
    /// signed request.
    pub id: String,
}

/// Checks the `Stripe-Signature` of a request over its raw body and names the orchestrator that
/// signed it: against the configured secrets and the ones kept in the database (reloaded at most
/// every `signing_secrets_refresh_secs`). No secret at all → 500 flat `server_error`; any failure →
/// 401 flat `invalid_signature` (the reason goes to the debug log only).
///
/// The signature is then bound to `target` for `caller` (the bearer's token family, `""` without
/// one): the first request a signature is seen on owns it while it could verify, and a
/// state-changing request with a signature already used for another method or path is refused
/// (401 flat `invalid_signature`, saying so). Reads are never refused (a read changes nothing,
/// and an orchestrator may read several resources in one second), but they bind too, so the
/// signature of a captured read cannot rotate or remove.
pub async fn verify_signature(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    target: &Target,
    caller: &str,
) -> Result<Verified, ApiError> {
    refresh_signing_secrets(state).await;
    if !state.orchestrators.has_secrets() {
        return Err(no_secret());
    }
    let header = headers.get(SIGNATURE_HEADER).map(|v| v.as_bytes());
    let tolerance = state.limits.signature_tolerance_secs;
    let (orchestrator, timestamp) = state
        .orchestrators
        .verify(header, body, state.clock.now(), tolerance)
        .map_err(|reason| {
            tracing::debug!(reason = reason.reason(), "signature refused");
            crate::metrics::signature_failure(reason.reason());
            ApiError::from(FlatError::invalid_signature())
        })?;
    crate::request_scope::note_signer(&orchestrator.name);
    let id = signed_id(&orchestrator.name, timestamp, body);
    let signed = Verified { orchestrator: Arc::clone(orchestrator), id };
    // Kept while the signature verifies: |now - timestamp| <= tolerance.
    let expires_at =
        timestamp.saturating_add(i64::try_from(tolerance).unwrap_or(i64::MAX)).saturating_add(1);
    let use_hash = crypto::sha256_hex(format!("{caller}\n{}", signed.id).as_bytes());
    let (store, now) = (&state.store, state.clock.now());
    let bound = if target.changes_state() {
        store.bind_signature(&use_hash, &target.0, now, expires_at).await
    } else {
        store.note_signature(&use_hash, &target.0, now, expires_at).await.map(|()| true)
    };
    match bound {
        Ok(true) => Ok(signed),
        Ok(false) => {
            tracing::debug!(target = %target.0, "signature already used for another request");
            crate::metrics::signature_failure("reused");
            Err(FlatError::new(
                FlatCode::InvalidSignature,
                "This signature was already used for another request; sign each request anew",
            )
            .into())
        }
        Err(e) => {
            tracing::error!(error = %e, "could not bind a signature to its request");
            Err(FlatError::new(FlatCode::ServerError, "Internal server error").into())
        }
    }
}

/// SHA-256 over the orchestrator's name (length-prefixed), the signed timestamp and the body's
/// own SHA-256, in hex.
fn signed_id(orchestrator: &str, timestamp: i64, body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update((orchestrator.len() as u64).to_be_bytes());
    hash.update(orchestrator.as_bytes());
    hash.update(timestamp.to_be_bytes());
    hash.update(Sha256::digest(body));
    hex::encode(hash.finalize())
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
/// and a token works only under the signature of the orchestrator it was issued to. Answers who
/// the bearer speaks for and the name of the signed request.
pub async fn authenticate_signed(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    target: &Target,
    resource_id: &str,
) -> Result<SignedCall, ApiError> {
    use provisio_protocol::{StatusError, envelope::StatusCode};
    let principal = authenticate_bearer(state, headers, resource_id).await?;
    let signed = verify_signature(state, headers, body, target, &principal.family_id).await?;
    if signed.orchestrator.name != principal.orchestrator {
        return Err(StatusError::new(
            resource_id,
            StatusCode::Unauthorized,
            "Invalid or expired access token",
        )
        .into());
    }
    check_api_version(headers)?;
    Ok(SignedCall { principal, signed_id: signed.id })
}

/// A bearer request that passed [`authenticate_signed`].
pub struct SignedCall {
    /// Who the bearer speaks for.
    pub principal: crate::domain::auth::Principal,
    /// The name of the signed request ([`Verified::id`]).
    pub signed_id: String,
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

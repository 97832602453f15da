//! The extractors that admit a request to its handler. Each runs its endpoints' checks in the
//! spec's order and answers a failure in the endpoint's envelope, so a handler that takes one starts
//! from an authenticated request with a parsed body:
//!
//! * [`Signed`]: signature → API-Version (`health`, `services`);
//! * [`BearerSigned`]: bearer → signature → API-Version → the per-token rate limit → answered once
//!   → body (`deep_links`, `POST /provisioning/resources`);
//! * [`ResourceCall`]: the same with the path's resource id checked before the body
//!   (`/provisioning/resources/{id}…`);
//! * [`Operator`]: one of the operator tokens from configuration (introspection, the inbound
//!   connector calls).
//!
//! `account_requests` and `/oauth/token` have orders of their own, written beside their handlers
//! with the same pieces. "Answered once" is the idempotency layer's: where the route has it, the
//! request claims replay safety and its `Idempotency-Key` once it is authenticated.

use std::{marker::PhantomData, sync::Arc};

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, MatchedPath, RawPathParams, Request},
    http::{HeaderMap, HeaderValue, header, request::Parts},
    response::{IntoResponse, Response},
};
use provisio_protocol::{
    FlatError, StatusError,
    envelope::{FlatCode, StatusCode},
    types::{CreateResourceRequest, DeepLinkRequest, UpdateServiceRequest},
};
use serde::de::DeserializeOwned;

use super::{
    idempotency::{AnsweredOnce, idempotency_key},
    reply::ApiError,
    request::{
        RawBody, SignedCall, Target, authenticate_signed, bearer_is_one_of, check_api_version,
        limit_token, verify_signature,
    },
};
use crate::{domain::auth::Principal, orchestrators::Orchestrator, state::AppState};

/// A request as the edge reads it: headers, what it targets, the matched route, the path's `{id}`
/// as sent, and the raw body (the signature covers its exact bytes).
pub(crate) struct Edge {
    pub headers: HeaderMap,
    pub target: Target,
    /// The route template (`/provisioning/resources/{id}/remove`).
    route: String,
    /// The path's `{id}` as sent (`""` on routes without one): error envelopes name it.
    pub raw_id: String,
    pub body: Bytes,
    /// Present on routes that answer once (the idempotency layer is on them).
    once: Option<Arc<AnsweredOnce>>,
}

impl Edge {
    pub async fn read(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (mut parts, body) = req.into_parts();
        let target = Target::of(&parts);
        let route = parts
            .extensions
            .get::<MatchedPath>()
            .map_or_else(|| parts.uri.path().to_string(), |m| m.as_str().to_string());
        let raw_id = RawPathParams::from_request_parts(&mut parts, state)
            .await
            .ok()
            .and_then(|params| params.iter().find(|(name, _)| *name == "id").map(|(_, v)| v.into()))
            .unwrap_or_default();
        let once = parts.extensions.get::<Arc<AnsweredOnce>>().cloned();
        let headers = std::mem::take(&mut parts.headers);
        let RawBody(body) = RawBody::from_request(Request::from_parts(parts, body), state).await?;
        Ok(Self { headers, target, route, raw_id, body, once })
    }

    /// Bearer → signature → API-Version → the per-token rate limit (answered in `E`).
    async fn bearer_signed<E: Envelope>(&self, state: &AppState) -> Result<SignedCall, ApiError> {
        let call =
            authenticate_signed(state, &self.headers, &self.body, &self.target, &self.raw_id)
                .await?;
        let limited = limit_token(state, &call.principal).await;
        limited.map_err(|seconds| E::rate_limited(&self.raw_id, seconds))?;
        Ok(call)
    }

    /// On routes that answer once: replay safety for the signed request, under `caller` (the
    /// bearer's token family, `""` without one). `id` is the resource the path names, written into
    /// the route so that every spelling of one id is one scope.
    pub async fn replay_safe(
        &self,
        state: &AppState,
        signed_id: &str,
        caller: &str,
        id: Option<i64>,
    ) -> Result<(), Response> {
        match &self.once {
            Some(once) => {
                let route = self.route_of(id);
                once.replay_safe(state, signed_id, caller, &route, &self.body).await
            }
            None => Ok(()),
        }
    }

    /// Replay safety, then the `Idempotency-Key` (a conflict answered in `E`).
    async fn answer_once<E: Envelope>(
        &self,
        state: &AppState,
        call: &SignedCall,
        id: Option<i64>,
    ) -> Result<(), Response> {
        let principal = &call.principal;
        self.replay_safe(state, &call.signed_id, &principal.family_id, id).await?;
        let Some(once) = &self.once else {
            return Ok(());
        };
        let conflict = || E::idempotency_conflict(&self.raw_id);
        once.by_key(state, &self.headers, principal, &self.route_of(id), &self.body, conflict).await
    }

    fn route_of(&self, id: Option<i64>) -> String {
        match id {
            Some(id) => self.route.replace("{id}", &id.to_string()),
            None => self.route.clone(),
        }
    }

    fn idempotency_key(&self) -> Option<String> {
        idempotency_key(&self.headers).map(String::from)
    }
}

/// A request whose signature verified (signature → API-Version), answered in the flat envelope.
pub struct Signed {
    pub orchestrator: Arc<Orchestrator>,
}

impl FromRequest<AppState> for Signed {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let edge = Edge::read(req, state).await?;
        let signed = verify_signature(state, &edge.headers, &edge.body, &edge.target, "").await?;
        check_api_version(&edge.headers)?;
        Ok(Self { orchestrator: signed.orchestrator })
    }
}

/// A bearer request under its orchestrator's signature, with its body parsed; errors in `E`
/// (bearer failures always in the status envelope).
pub struct BearerSigned<T, E = InStatus> {
    pub principal: Principal,
    pub body: T,
    pub idempotency_key: Option<String>,
    envelope: PhantomData<E>,
}

impl<T: RequestBody, E: Envelope> FromRequest<AppState> for BearerSigned<T, E> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let edge = Edge::read(req, state).await?;
        let call = edge.bearer_signed::<E>(state).await?;
        edge.answer_once::<E>(state, &call, None).await?;
        let body = T::parse(&edge.body).map_err(|message| E::invalid_request("", message))?;
        let idempotency_key = edge.idempotency_key();
        Ok(Self { principal: call.principal, body, idempotency_key, envelope: PhantomData })
    }
}

/// A bearer request on one resource (`/provisioning/resources/{id}…`): bearer → signature →
/// API-Version → rate limit → the path's id → answered once → body, all in the status envelope.
pub struct ResourceCall<T> {
    pub id: i64,
    /// The id as the path spelled it, which the status envelope repeats.
    pub raw_id: String,
    pub principal: Principal,
    pub body: T,
    pub idempotency_key: Option<String>,
}

impl<T: RequestBody> FromRequest<AppState> for ResourceCall<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let edge = Edge::read(req, state).await?;
        let call = edge.bearer_signed::<InStatus>(state).await?;
        let id = resource_id(&edge.raw_id)?;
        edge.answer_once::<InStatus>(state, &call, Some(id)).await?;
        let body = T::parse(&edge.body)
            .map_err(|message| InStatus::invalid_request(&edge.raw_id, message))?;
        let idempotency_key = edge.idempotency_key();
        Ok(Self { id, principal: call.principal, body, idempotency_key, raw_id: edge.raw_id })
    }
}

/// A request that carries one of the operator tokens `T` names (`Authorization: Bearer`, any case
/// of the scheme, its hash compared with every configured one in constant time). A missing or wrong
/// token answers 401 flat `unauthorized` with `WWW-Authenticate`; where no token is configured and
/// `T` says so, the endpoint does not exist (404 flat, as an unknown path).
pub struct Operator<T>(PhantomData<T>);

/// Which operator tokens admit a request.
pub trait OperatorTokens: Send + Sync + 'static {
    fn tokens(state: &AppState) -> &[String];
    /// Whether the endpoints are absent (404) while no token is configured.
    const HIDDEN_WITHOUT_TOKENS: bool;
}

/// `[introspection] tokens`.
pub struct IntrospectionTokens;

impl OperatorTokens for IntrospectionTokens {
    fn tokens(state: &AppState) -> &[String] {
        &state.introspection_tokens
    }
    const HIDDEN_WITHOUT_TOKENS: bool = false;
}

/// The tokens with which the SaaS calls `/v1/connector/…`.
pub struct ConnectorTokens;

impl OperatorTokens for ConnectorTokens {
    fn tokens(state: &AppState) -> &[String] {
        &state.operator_tokens
    }
    const HIDDEN_WITHOUT_TOKENS: bool = true;
}

impl<T: OperatorTokens> FromRequestParts<AppState> for Operator<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let tokens = T::tokens(state);
        if tokens.is_empty() && T::HIDDEN_WITHOUT_TOKENS {
            return Err(
                ApiError::from(FlatError::new(FlatCode::NotFound, "No such endpoint")).into()
            );
        }
        if bearer_is_one_of(&parts.headers, tokens) {
            return Ok(Self(PhantomData));
        }
        let refused = FlatError::new(FlatCode::Unauthorized, "A valid operator token is required");
        let mut response = ApiError::from(refused).into_response();
        let challenge = HeaderValue::from_static("Bearer realm=\"provisio\"");
        response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        Err(response)
    }
}

/// Resource ids are the decimal ids of projects: 1 to 18 digits, above zero.
pub(crate) fn parse_resource_id(raw: &str) -> Option<i64> {
    (!raw.is_empty() && raw.len() <= 18 && raw.bytes().all(|b| b.is_ascii_digit()))
        .then(|| raw.parse::<i64>().ok())
        .flatten()
        .filter(|&id| id > 0)
}

fn resource_id(raw: &str) -> Result<i64, ApiError> {
    parse_resource_id(raw).ok_or_else(|| {
        StatusError::new(raw, StatusCode::InvalidResourceId, format!("Invalid resource id: {raw}"))
            .into()
    })
}

/// The envelope in which an endpoint answers the errors the edge raises after authentication.
pub trait Envelope: Send + Sync + 'static {
    fn invalid_request(id: &str, message: String) -> ApiError;
    fn rate_limited(id: &str, retry_after_secs: u64) -> ApiError;
    fn idempotency_conflict(id: &str) -> ApiError;
}

const RATE_LIMITED: &str = "Too many requests for this token; retry later";
const KEY_REUSED: &str = "Idempotency-Key was already used with a different request";

/// The status envelope, naming the resource (`resources*`).
pub struct InStatus;

impl Envelope for InStatus {
    fn invalid_request(id: &str, message: String) -> ApiError {
        StatusError::new(id, StatusCode::InvalidRequest, message).into()
    }

    fn rate_limited(id: &str, retry_after_secs: u64) -> ApiError {
        ApiError::from(StatusError::new(id, StatusCode::RateLimited, RATE_LIMITED))
            .retry_after(retry_after_secs)
    }

    fn idempotency_conflict(id: &str) -> ApiError {
        StatusError::new(id, StatusCode::IdempotencyConflict, KEY_REUSED).into()
    }
}

/// The flat envelope (`deep_links`, past its bearer).
pub struct InFlat;

impl Envelope for InFlat {
    fn invalid_request(_: &str, message: String) -> ApiError {
        FlatError::new(FlatCode::InvalidRequest, message).into()
    }

    fn rate_limited(_: &str, retry_after_secs: u64) -> ApiError {
        ApiError::from(FlatError::new(FlatCode::RateLimited, RATE_LIMITED))
            .retry_after(retry_after_secs)
    }

    fn idempotency_conflict(_: &str) -> ApiError {
        FlatError::new(FlatCode::IdempotencyConflict, KEY_REUSED).into()
    }
}

/// How an endpoint's body is read; the error is the message of its `invalid_request`.
pub trait RequestBody: Sized {
    fn parse(raw: &[u8]) -> Result<Self, String>;
}

/// An endpoint without a body: whatever is sent is ignored (the signature still covers it).
pub struct NoBody;

impl RequestBody for NoBody {
    fn parse(_: &[u8]) -> Result<Self, String> {
        Ok(Self)
    }
}

/// The resource bodies: an empty body is an empty object.
impl RequestBody for CreateResourceRequest {
    fn parse(raw: &[u8]) -> Result<Self, String> {
        object_or_empty(raw)
    }
}

impl RequestBody for UpdateServiceRequest {
    fn parse(raw: &[u8]) -> Result<Self, String> {
        object_or_empty(raw)
    }
}

impl RequestBody for DeepLinkRequest {
    fn parse(raw: &[u8]) -> Result<Self, String> {
        object(raw)
    }
}

fn object_or_empty<T: DeserializeOwned + Default>(raw: &[u8]) -> Result<T, String> {
    if raw.iter().all(u8::is_ascii_whitespace) { Ok(T::default()) } else { object(raw) }
}

/// A JSON object, then the endpoint's type.
pub(crate) fn object<T: DeserializeOwned>(raw: &[u8]) -> Result<T, String> {
    let value: serde_json::Value = serde_json::from_slice(raw)
        .ok()
        .filter(serde_json::Value::is_object)
        .ok_or_else(|| "Request body must be a JSON object".to_string())?;
    serde_json::from_value(value).map_err(|e| format!("Malformed request: {e}"))
}

//! `POST /oauth/token` (spec 5.4) and its RFC 8414 metadata.
//!
//! Order: API-Version (absence allowed) → body → grant parsing → signature, verified when present →
//! for `authorization_code`, no verifier and no signature → 401 before any lookup → the grant.

use axum::{
    extract::State,
    http::{HeaderMap, header},
    response::Response,
};
use provisio_protocol::{
    OAuthError,
    envelope::OAuthCode,
    signature::SIGNATURE_HEADER,
    types::{
        AuthorizationServerMetadata, PAYMENT_CREDENTIALS_ORCHESTRATOR, Team, TokenAccount,
        TokenRequest, TokenResponse,
    },
};

use super::{
    reply::{ApiError, json, no_store},
    request::{RawBody, Target, verify_signature},
};
use crate::{
    domain::{
        Internal,
        oauth::{self, GrantError},
        tokens::IssuedTokens,
    },
    orchestrators::Orchestrator,
    state::AppState,
};

pub async fn token(
    State(state): State<AppState>,
    target: Target,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let version = headers.get(provisio_protocol::API_VERSION_HEADER).map(|v| v.as_bytes());
    provisio_protocol::version::check_optional(version)?;
    let request = parse(&headers, &body)?;
    let now = state.clock.now();
    let answer = match request.grant_type.as_deref() {
        None | Some("") => return Err(invalid_request("grant_type is required")),
        Some("authorization_code") => {
            let code = required(request.code.as_deref(), "code is required")?;
            let signed_by = verified_if_present(&state, &headers, &body, &target).await?;
            let verifier = request.code_verifier.as_deref().filter(|v| !v.is_empty());
            if verifier.is_none() && signed_by.is_none() {
                return Err(OAuthError::unauthenticated("Authentication required").into());
            }
            let redeemed = oauth::redeem_code(
                &state.store,
                &state.orchestrators,
                code,
                verifier,
                signed_by,
                now,
            )
            .await
            .map_err(grant_error)?;
            let account = TokenAccount {
                id: redeemed.organization_id,
                payment_credentials: PAYMENT_CREDENTIALS_ORCHESTRATOR.into(),
                available_teams: redeemed
                    .available_teams
                    .into_iter()
                    .map(|t| Team {
                        id: t.id,
                        name: t.name,
                        organization_id: t.organization_id,
                        organization_name: t.organization_name,
                    })
                    .collect(),
            };
            token_response(redeemed.tokens, Some(account))
        }
        Some("refresh_token") => {
            let refresh_token =
                required(request.refresh_token.as_deref(), "refresh_token is required")?;
            verified_if_present(&state, &headers, &body, &target).await?;
            let tokens = oauth::refresh(&state.store, &state.orchestrators, refresh_token, now)
                .await
                .map_err(grant_error)?;
            token_response(tokens, None)
        }
        Some(other) => {
            return Err(OAuthError::new(
                OAuthCode::UnsupportedGrantType,
                format!("Unsupported grant_type: {other}"),
            )
            .into());
        }
    };
    Ok(no_store(json(200, &answer)))
}

/// Form-encoded per RFC 6749; JSON accepted when the content type says so.
pub(crate) fn parse(headers: &HeaderMap, body: &[u8]) -> Result<TokenRequest, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("application/json"));
    let parsed = if is_json {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .filter(serde_json::Value::is_object)
            .and_then(|v| serde_json::from_value(v).ok())
    } else {
        serde_urlencoded::from_bytes(body).ok()
    };
    parsed.ok_or_else(|| invalid_request("Malformed request body"))
}

fn required<'a>(value: Option<&'a str>, message: &str) -> Result<&'a str, ApiError> {
    value.filter(|v| !v.is_empty()).ok_or_else(|| invalid_request(message))
}

fn invalid_request(message: &str) -> ApiError {
    OAuthError::new(OAuthCode::InvalidRequest, message).into()
}

/// The signature is optional here, but a present one must be valid.
async fn verified_if_present<'s>(
    state: &'s AppState,
    headers: &HeaderMap,
    body: &[u8],
    target: &Target,
) -> Result<Option<&'s Orchestrator>, ApiError> {
    if headers.contains_key(SIGNATURE_HEADER) {
        let signed = verify_signature(state, headers, body, target, "").await?;
        Ok(Some(signed.orchestrator))
    } else {
        Ok(None)
    }
}

fn grant_error(e: GrantError) -> ApiError {
    match e {
        GrantError::InvalidGrant(message) => {
            OAuthError::new(OAuthCode::InvalidGrant, message).into()
        }
        GrantError::Unauthenticated(message) => OAuthError::unauthenticated(message).into(),
        GrantError::Internal(e) => internal(e),
    }
}

fn internal(e: Internal) -> ApiError {
    tracing::error!(error = %e, "token request failed");
    OAuthError::new(OAuthCode::ServerError, "The token could not be issued").into()
}

fn token_response(tokens: IssuedTokens, account: Option<TokenAccount>) -> TokenResponse {
    TokenResponse {
        token_type: "bearer".into(),
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        expires_in: tokens.expires_in,
        account,
    }
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414). The orchestrator authenticates with
/// its `Stripe-Signature` rather than a client secret, hence `none` as the auth method.
pub async fn metadata(State(state): State<AppState>) -> Response {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    json(
        200,
        &AuthorizationServerMetadata {
            issuer: state.public_url.clone(),
            token_endpoint: format!("{}/oauth/token", state.public_url),
            grant_types_supported: strings(&["authorization_code", "refresh_token"]),
            response_types_supported: strings(&["code"]),
            code_challenge_methods_supported: strings(&["S256"]),
            token_endpoint_auth_methods_supported: strings(&["none"]),
        },
    )
}

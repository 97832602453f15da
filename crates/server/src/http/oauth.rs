//! `POST /oauth/token` (spec 5.4) and its RFC 8414 metadata.
//!
//! Order: API-Version (absence allowed) → body → grant parsing → signature, verified when present →
//! for `authorization_code`, no verifier and no signature → 401 before any lookup → the grant.

use std::sync::Arc;

use axum::{
    extract::{FromRequest, Request, State},
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
    extract::Edge,
    reply::{ApiError, json, no_store},
    request::verify_signature,
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

/// A token request admitted in the spec's order (see the module).
pub struct Admitted {
    grant: Grant,
    /// The orchestrator whose signature the request carried, if it carried one.
    signed_by: Option<Arc<Orchestrator>>,
}

enum Grant {
    Code { code: String, verifier: Option<String> },
    Refresh { refresh_token: String },
}

impl FromRequest<AppState> for Admitted {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let edge = Edge::read(req, state).await?;
        let version = edge.headers.get(provisio_protocol::API_VERSION_HEADER);
        provisio_protocol::version::check_optional(version.map(|v| v.as_bytes()))
            .map_err(ApiError::from)?;
        let grant = grant(parse(&edge.headers, &edge.body)?)?;
        // Optional here, but a present signature must be valid.
        let signed_by = if edge.headers.contains_key(SIGNATURE_HEADER) {
            let signed =
                verify_signature(state, &edge.headers, &edge.body, &edge.target, "").await?;
            Some(signed.orchestrator)
        } else {
            None
        };
        if let Grant::Code { verifier: None, .. } = grant
            && signed_by.is_none()
        {
            return Err(
                ApiError::from(OAuthError::unauthenticated("Authentication required")).into()
            );
        }
        Ok(Self { grant, signed_by })
    }
}

/// The grant the body asks for, with its required fields.
fn grant(request: TokenRequest) -> Result<Grant, ApiError> {
    let required = |value: Option<String>, message: &str| {
        value.filter(|v| !v.is_empty()).ok_or_else(|| invalid_request(message))
    };
    match request.grant_type.as_deref() {
        None | Some("") => Err(invalid_request("grant_type is required")),
        Some("authorization_code") => Ok(Grant::Code {
            code: required(request.code, "code is required")?,
            verifier: request.code_verifier.filter(|v| !v.is_empty()),
        }),
        Some("refresh_token") => Ok(Grant::Refresh {
            refresh_token: required(request.refresh_token, "refresh_token is required")?,
        }),
        Some(other) => Err(OAuthError::new(
            OAuthCode::UnsupportedGrantType,
            format!("Unsupported grant_type: {other}"),
        )
        .into()),
    }
}

#[utoipa::path(
    post,
    path = "/oauth/token",
    tag = "protocol",
    summary = "Exchange a code or rotate a refresh token",
    security((), ("stripeSignature" = [])),
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "tokens", body = TokenResponse),
        (status = 400, description = "oauth error", body = OAuthError),
        (status = 401, description = "invalid_request (oauth): neither a verifier nor a signature", body = OAuthError),
        (status = 500, description = "server_error (oauth)", body = OAuthError),
    )
)]
pub async fn token(
    State(state): State<AppState>,
    Admitted { grant, signed_by }: Admitted,
) -> Result<Response, ApiError> {
    let (store, orchestrators, now) = (&state.store, &state.orchestrators, state.clock.now());
    let answer = match grant {
        Grant::Code { code, verifier } => {
            let signed_by = signed_by.as_deref();
            let redeemed = oauth::redeem_code(
                store,
                orchestrators,
                &code,
                verifier.as_deref(),
                signed_by,
                now,
            )
            .await
            .map_err(grant_error)?;
            let available_teams = redeemed.available_teams.into_iter().map(|t| Team {
                id: t.id,
                name: t.name,
                organization_id: t.organization_id,
                organization_name: t.organization_name,
            });
            let account = TokenAccount {
                id: redeemed.organization_id,
                payment_credentials: PAYMENT_CREDENTIALS_ORCHESTRATOR.into(),
                available_teams: available_teams.collect(),
            };
            token_response(redeemed.tokens, Some(account))
        }
        Grant::Refresh { refresh_token } => {
            let tokens = oauth::refresh(store, orchestrators, &refresh_token, now)
                .await
                .map_err(grant_error)?;
            token_response(tokens, None)
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

fn invalid_request(message: &str) -> ApiError {
    OAuthError::new(OAuthCode::InvalidRequest, message).into()
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
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "oauth",
    summary = "RFC 8414 metadata",
    responses((status = 200, description = "metadata", body = AuthorizationServerMetadata))
)]
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

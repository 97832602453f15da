//! `POST /provisioning/account_requests` (spec 5.3), in the spec's check order:
//! API-Version → body → signature present (401 typed) → signature valid (401 flat) →
//! `orchestrator.stripe.account` → `configuration.team_id` → account work.

use std::sync::Arc;

use axum::{
    extract::{FromRequest, Request, State},
    response::Response,
};
use provisio_protocol::{
    TypedError,
    envelope::TypedCode,
    types::{
        AccountOutcome, AccountRequest, AccountRequestResponse, BearerCredentials, Credentials,
        CredentialsAccount, OAuthCode, PAYMENT_CREDENTIALS_ORCHESTRATOR, Redirect, RequiresAuth,
    },
};
use serde_json::Value;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::{
    extract::{Edge, object},
    reply::{ApiError, json},
    request::{
        MAX_SCOPES, check_api_version, require_signature_header, too_long, verify_signature,
    },
};
use crate::{
    domain::accounts::{self, AccountError, Accounts, Outcome},
    orchestrators::Orchestrator,
    rate_limit::Scope,
    state::AppState,
};

/// An account request admitted in the spec's order: API-Version → body → signature present (401
/// typed) → signature valid (401 flat) → answered once per signature.
pub struct Admitted {
    orchestrator: Arc<Orchestrator>,
    request: AccountRequest,
}

impl FromRequest<AppState> for Admitted {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let edge = Edge::read(req, state).await?;
        check_api_version(&edge.headers)?;
        let request = validate_body(&edge.body, state.clock.now())?;
        let unsigned =
            || TypedError::anonymous(TypedCode::Unauthorized, "Authentication required").into();
        require_signature_header(state, &edge.headers, unsigned).await?;
        // No bearer here: the signature and the body are the whole request.
        let signed = verify_signature(state, &edge.headers, &edge.body, &edge.target, "").await?;
        edge.replay_safe(state, &signed.id, "", None).await?;
        Ok(Self { orchestrator: signed.orchestrator, request })
    }
}

/// Past the extractor: orchestrator account → rate limit → `team_id` and the configuration →
/// account work.
#[utoipa::path(
    post,
    path = "/provisioning/account_requests",
    tag = "protocol",
    summary = "Create or link an account for a verified email",
    security(("stripeSignature" = [])),
    request_body = AccountRequest,
    responses(
        (status = 200, description = "an oauth code, credentials or requires_auth", body = AccountRequestResponse),
        (status = 400, description = "typed error", body = TypedError),
        (status = 401, description = "unauthorized (typed): no signature", body = TypedError),
        (status = 429, description = "rate_limited (typed)", body = TypedError),
        (status = 500, description = "account_creation_failed (typed)", body = TypedError),
        (status = 503, description = "provider_unavailable (typed): the SaaS did not answer", body = TypedError),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Admitted { orchestrator, request }: Admitted,
) -> Result<Response, ApiError> {
    let Some(account) = request.orchestrator_account().map(String::from) else {
        return Err(invalid("orchestrator.stripe.account is required"));
    };
    let id = request.id.clone().unwrap_or_default();
    let refused = |code, message: &str| ApiError::from(TypedError::for_request(&id, code, message));
    limit(&state, &orchestrator, &account, request.email.as_deref()).await.map_err(|seconds| {
        refused(TypedCode::RateLimited, "Too many account requests; retry later")
            .retry_after(seconds)
    })?;
    let input =
        input(&state, request, account).map_err(|(code, message)| refused(code, &message))?;
    let accounts = Accounts {
        store: &state.store,
        connector: state.connector.as_deref(),
        public_url: &state.public_url,
    };
    let outcome = accounts.request(&orchestrator, input, state.clock.now()).await;
    let outcome = outcome.map_err(|e| account_error(&id, e))?;
    Ok(json(200, &AccountRequestResponse { id, outcome: wire_outcome(outcome) }))
}

/// The per orchestrator account limit, then the per email one; `Err` carries `Retry-After`.
async fn limit(
    state: &AppState,
    orchestrator: &Orchestrator,
    account: &str,
    email: Option<&str>,
) -> Result<(), u64> {
    let by_account = format!("{}\n{account}", orchestrator.name);
    state.limit(Scope::OrchestratorAccount, &by_account).await?;
    state.limit(Scope::Email, &accounts::normalize_email(email.unwrap_or_default())).await
}

/// The domain's input: `team_id`, `organization_name`, the scopes and the configuration checked;
/// `Err` is the typed code and message of the first that is wrong.
fn input(
    state: &AppState,
    request: AccountRequest,
    orchestrator_account: String,
) -> Result<accounts::AccountRequest, (TypedCode, String)> {
    let invalid = |message: &str| (TypedCode::InvalidRequest, message.to_string());
    let team_id = team_id(request.configuration_value("team_id"))
        .map_err(|()| invalid("configuration.team_id must be an integer"))?;
    let organization_name = match request.configuration_value("organization_name") {
        None => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(_) => {
            return Err(invalid("configuration.organization_name must be a non-empty string"));
        }
    };
    let scopes = request.scopes.unwrap_or_default();
    if let Some(scope) = state.accounts.unknown_scope(&scopes) {
        return Err(invalid(&format!("Unknown scope: {scope}")));
    }
    let configuration = state
        .accounts
        .check(request.configuration.as_ref())
        .map_err(|message| (TypedCode::InvalidConfiguration, message))?;
    Ok(accounts::AccountRequest {
        request_id: request.id.unwrap_or_default(),
        email: request.email.unwrap_or_default(),
        name: request.name.filter(|n| !n.trim().is_empty()),
        organization_name,
        team_id,
        scopes,
        configuration,
        code_challenge: request.code_challenge,
        confirmation_secret: request.confirmation_secret.filter(|s| !s.is_empty()),
        orchestrator_account,
    })
}

fn account_error(id: &str, e: AccountError) -> ApiError {
    let refused = |code, message: &str| ApiError::from(TypedError::for_request(id, code, message));
    match e {
        AccountError::TeamResolutionFailed => {
            refused(TypedCode::TeamResolutionFailed, &e.to_string())
        }
        AccountError::RequestIdReused => refused(TypedCode::InvalidRequest, &e.to_string()),
        AccountError::CreationRefused => ApiError::from(
            TypedError::for_request(id, TypedCode::AccountCreationFailed, e.to_string()).refusal(),
        ),
        AccountError::Unavailable { retry_after_secs } => {
            refused(TypedCode::ProviderUnavailable, &e.to_string()).retry_after(retry_after_secs)
        }
        AccountError::Internal(e) => {
            tracing::error!(error = %e, "account request failed");
            refused(TypedCode::AccountCreationFailed, "The account could not be created")
        }
    }
}

fn wire_outcome(outcome: Outcome) -> AccountOutcome {
    match outcome {
        Outcome::Code(code) => AccountOutcome::Oauth { oauth: OAuthCode { code } },
        Outcome::Credentials { tokens, organization_id } => AccountOutcome::Credentials {
            credentials: Credentials::Bearer {
                bearer: BearerCredentials {
                    access_token: tokens.access_token,
                    refresh_token: tokens.refresh_token,
                    expires_in: tokens.expires_in,
                    account: CredentialsAccount {
                        id: organization_id,
                        payment_credentials: PAYMENT_CREDENTIALS_ORCHESTRATOR.into(),
                    },
                },
            },
        },
        Outcome::RequiresAuth { url } => AccountOutcome::RequiresAuth {
            requires_auth: RequiresAuth::Redirect { redirect: Redirect { url } },
        },
    }
}

fn invalid(message: &str) -> ApiError {
    TypedError::anonymous(TypedCode::InvalidRequest, message).into()
}

/// Body validation: a JSON object; email present and well-formed; `expires_at` well-formed, then
/// not past; PKCE method and challenge.
pub(crate) fn validate_body(body: &[u8], now: i64) -> Result<AccountRequest, ApiError> {
    let request: AccountRequest = object(body).map_err(|message| invalid(&message))?;
    let stripe = request.orchestrator.as_ref().and_then(|o| o.stripe.as_ref());
    let scopes = request.scopes.as_deref().unwrap_or_default();
    if scopes.len() > MAX_SCOPES {
        return Err(invalid(&format!("scopes has too many entries (at most {MAX_SCOPES})")));
    }
    let mut fields = vec![
        ("id", request.id.as_deref()),
        ("name", request.name.as_deref()),
        ("phone", request.phone.as_deref()),
        ("country", request.country.as_deref()),
        ("confirmation_secret", request.confirmation_secret.as_deref()),
        ("orchestrator.stripe.account", stripe.and_then(|s| s.account.as_deref())),
        ("orchestrator.stripe.organization", stripe.and_then(|s| s.organization.as_deref())),
        (
            "configuration.organization_name",
            request.configuration_value("organization_name").and_then(Value::as_str),
        ),
    ];
    fields.extend(scopes.iter().map(|scope| ("scopes[]", Some(scope.as_str()))));
    if let Some(message) = too_long(&fields) {
        return Err(invalid(&message));
    }
    match request.email.as_deref().map(str::trim) {
        None | Some("") => return Err(invalid("email is required")),
        Some(email) if !accounts::is_well_formed_email(email) => {
            return Err(invalid("email is malformed"));
        }
        Some(_) => {}
    }
    if let Some(expires_at) = &request.expires_at {
        let at = OffsetDateTime::parse(expires_at, &Rfc3339)
            .map_err(|_| invalid("expires_at must be an RFC 3339 timestamp"))?;
        if at.unix_timestamp() <= now {
            return Err(
                TypedError::anonymous(TypedCode::Expired, "Account request has expired").into()
            );
        }
    }
    match (request.code_challenge.as_deref(), request.code_challenge_method.as_deref()) {
        (_, Some(method)) if method != "S256" => {
            return Err(invalid("code_challenge_method must be S256"));
        }
        (None, Some(_)) => {
            return Err(invalid("code_challenge is required with code_challenge_method"));
        }
        (Some(challenge), _) if !is_pkce_challenge(challenge) => {
            return Err(invalid("code_challenge must be 43 to 128 base64url characters"));
        }
        _ => {}
    }
    Ok(request)
}

fn is_pkce_challenge(challenge: &str) -> bool {
    (43..=128).contains(&challenge.len())
        && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// provisio's reading of "an integer" (spec 5.3): a JSON integer, or a string of ASCII digits with
/// surrounding whitespace. An integer too large for any project id resolves to no project.
pub(crate) fn team_id(value: Option<&Value>) -> Result<Option<i64>, ()> {
    match value {
        None => Ok(None),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => {
            Ok(Some(n.as_i64().unwrap_or(i64::MAX)))
        }
        Some(Value::String(s)) => {
            let digits = s.trim();
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(());
            }
            Ok(Some(digits.parse().unwrap_or(i64::MAX)))
        }
        Some(_) => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn team_id_reading() {
        assert_eq!(team_id(None), Ok(None));
        assert_eq!(team_id(Some(&json!(12))), Ok(Some(12)));
        assert_eq!(team_id(Some(&json!(" 12 "))), Ok(Some(12)));
        assert_eq!(team_id(Some(&json!("99999999999999999999999"))), Ok(Some(i64::MAX)));
        assert_eq!(team_id(Some(&json!(18446744073709551615u64))), Ok(Some(i64::MAX)));
        for bad in [
            json!("abc"),
            json!(1.5),
            json!(12.0),
            json!(true),
            json!([1]),
            json!({"a":1}),
            json!(""),
            json!("-3"),
            json!("1 2"),
        ] {
            assert_eq!(team_id(Some(&bad)), Err(()), "{bad}");
        }
    }

    #[test]
    fn pkce_challenge_shape() {
        assert!(is_pkce_challenge(&"a".repeat(43)));
        assert!(is_pkce_challenge(&"-_".repeat(64)));
        assert!(!is_pkce_challenge(&"a".repeat(42)));
        assert!(!is_pkce_challenge(&"a".repeat(129)));
        assert!(!is_pkce_challenge(&format!("{}=", "a".repeat(43))));
    }
}

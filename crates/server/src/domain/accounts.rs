//! Account requests: create the account for a new email, or link the existing one by email — the
//! orchestrator has verified the address and signed the request — and resolve which project the
//! grant is for (spec 5.3).

use super::{
    Internal,
    tokens::{IssuedTokens, issue_family},
};
use crate::{
    audit::Actor,
    crypto::{RandomError, random_id, random_secret, random_token, token_hash},
    orchestrators::{LinkingPolicy, Orchestrator, ResponseMode},
    store::{
        Conn, Store, StoreError,
        accounts::{self as sql, NewUser, ProjectRef, Resolution},
        oauth::{self as grants, Grant, PendingConsent},
    },
};

/// Authorization codes live this long (spec 5.3).
pub const CODE_TTL_SECS: i64 = 300;
/// A request id keeps resolving to the same account this long.
pub const REQUEST_ID_TTL_SECS: i64 = 24 * 3600;
/// A consent link stays open this long.
pub const CONSENT_TTL_SECS: i64 = 1800;

/// A validated account request.
#[derive(Debug, Clone, Default)]
pub struct AccountRequest {
    /// The orchestrator's request id (may be empty: then retries are not recognised).
    pub request_id: String,
    /// As given, trimmed.
    pub email: String,
    pub name: Option<String>,
    pub organization_name: Option<String>,
    pub team_id: Option<i64>,
    pub scopes: Vec<String>,
    pub code_challenge: Option<String>,
    pub orchestrator_account: String,
}

/// A successful answer.
#[derive(Debug, Clone)]
pub enum Outcome {
    Code(String),
    Credentials { tokens: IssuedTokens, organization_id: String },
    RequiresAuth { url: String },
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    // The messages are the wire messages.
    #[error("Could not resolve a project for this user")]
    TeamResolutionFailed,
    #[error("This request id was already used for a different email")]
    RequestIdReused,
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl From<StoreError> for AccountError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.into())
    }
}

impl From<RandomError> for AccountError {
    fn from(e: RandomError) -> Self {
        Self::Internal(e.into())
    }
}

/// The identity of an email: trimmed and lowercased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A plausible address: one `@`, a non-empty local part, a dotted domain, no spaces or controls.
/// Deliverability is the orchestrator's business; it has verified the address.
pub fn is_well_formed_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let clean = |s: &str| {
        !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control() || c == '@')
    };
    email.len() <= 254
        && local.len() <= 64
        && clean(local)
        && clean(domain)
        && domain.split('.').count() >= 2
        && domain
            .split('.')
            .all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'))
}

/// A user's first name: the first word of the name.
fn first_name(name: Option<&str>) -> Option<&str> {
    name.and_then(|n| n.split_whitespace().next())
}

/// Handles one account request in one write transaction. Across concurrent requests, one user per
/// email and one answer per request id rest on unique constraints.
pub async fn request_account(
    store: &Store,
    orchestrator: &Orchestrator,
    request: AccountRequest,
    public_url: &str,
    now: i64,
) -> Result<Outcome, AccountError> {
    let (orchestrator, public_url) = (orchestrator.clone(), public_url.to_string());
    let actor = Actor::current(&orchestrator.name);
    store.write(move |conn| decide(conn, &actor, &orchestrator, &request, &public_url, now)).await
}

fn decide(
    conn: &mut dyn Conn,
    actor: &Actor,
    orchestrator: &Orchestrator,
    request: &AccountRequest,
    public_url: &str,
    now: i64,
) -> Result<Outcome, AccountError> {
    let email_normalized = normalize_email(&request.email);
    let retried = if request.request_id.is_empty() {
        None
    } else {
        sql::find_account_request(conn, &orchestrator.name, &request.request_id, now)?
    };
    let resolution = match retried {
        Some((email, _)) if email != email_normalized => return Err(AccountError::RequestIdReused),
        Some((_, resolution)) => resolution,
        None => {
            let resolved = match create_user(conn, orchestrator, request, &email_normalized, now)? {
                Some(created) => {
                    let (user, org, project) =
                        (&created.user_id, &created.project.organization_id, created.project.id);
                    actor.record(
                        conn,
                        "account.created",
                        Some(user),
                        Some(org),
                        Some(project),
                        now,
                    )?;
                    created
                }
                None => {
                    let user_id = sql::find_user_by_email(conn, &email_normalized)?
                        .ok_or(AccountError::TeamResolutionFailed)?;
                    if orchestrator.linking == LinkingPolicy::Consent {
                        let url = pending_consent(
                            conn,
                            orchestrator,
                            request,
                            &user_id,
                            public_url,
                            now,
                        )?;
                        actor.record(conn, "consent.requested", Some(&user_id), None, None, now)?;
                        return Ok(Outcome::RequiresAuth { url });
                    }
                    let project =
                        resolve_project(conn, &user_id, request.team_id, orchestrator, now)?;
                    let (org, id) = (project.organization_id.clone(), project.id);
                    actor.record(
                        conn,
                        "account.linked",
                        Some(&user_id),
                        Some(&org),
                        Some(id),
                        now,
                    )?;
                    Resolution { project, user_id }
                }
            };
            if !request.request_id.is_empty() {
                sql::record_account_request(
                    conn,
                    &orchestrator.name,
                    &request.request_id,
                    &email_normalized,
                    &resolved,
                    now,
                    now + REQUEST_ID_TTL_SECS,
                )?;
            }
            resolved
        }
    };

    let grant = Grant {
        user_id: resolution.user_id,
        organization_id: resolution.project.organization_id,
        project_id: resolution.project.id,
        orchestrator: orchestrator.name.clone(),
        orchestrator_account: request.orchestrator_account.clone(),
        scopes: request.scopes.join(" "),
    };
    Ok(match orchestrator.response {
        ResponseMode::Oauth => {
            let code = random_secret()?;
            grants::insert_code(
                conn,
                &token_hash(&code),
                &grant,
                request.code_challenge.as_deref(),
                now,
                now + CODE_TTL_SECS,
            )?;
            actor.grant(conn, "code.issued", &grant, now)?;
            Outcome::Code(code)
        }
        ResponseMode::Credentials => {
            let tokens = issue_family(conn, &grant, None, &orchestrator.tokens, now)?;
            actor.grant(conn, "tokens.issued", &grant, now)?;
            Outcome::Credentials { tokens, organization_id: grant.organization_id }
        }
    })
}

/// The new-email path: user, organization, owner membership and default project. `None` when the
/// email already has a user (possibly created a moment ago by a concurrent request).
fn create_user(
    conn: &mut dyn Conn,
    orchestrator: &Orchestrator,
    request: &AccountRequest,
    email_normalized: &str,
    now: i64,
) -> Result<Option<Resolution>, AccountError> {
    let user_id = random_id("usr")?;
    let user = NewUser {
        id: &user_id,
        email: request.email.trim(),
        email_normalized,
        first_name: first_name(request.name.as_deref()),
        name: request.name.as_deref(),
    };
    if !sql::insert_user(conn, &user, now)? {
        return Ok(None);
    }
    let organization_id = random_id("org")?;
    let organization_name = request
        .organization_name
        .clone()
        .unwrap_or_else(|| format!("{} ({})", orchestrator.label, request.email.trim()));
    sql::insert_organization(conn, &organization_id, &organization_name, now)?;
    sql::insert_membership(conn, &user_id, &organization_id, "owner", now)?;
    let project = new_project(conn, &organization_id, "Default project", now)?;
    Ok(Some(Resolution { user_id, project }))
}

/// The existing-email path's project resolution (spec 5.3, rules 1–3).
fn resolve_project(
    conn: &mut dyn Conn,
    user_id: &str,
    team_id: Option<i64>,
    orchestrator: &Orchestrator,
    now: i64,
) -> Result<ProjectRef, AccountError> {
    let organizations = sql::organizations_of(conn, user_id)?;
    let Some(oldest) = organizations.first() else {
        return Err(AccountError::TeamResolutionFailed);
    };
    if let Some(team_id) = team_id {
        return sql::own_live_project(conn, user_id, team_id)?
            .ok_or(AccountError::TeamResolutionFailed);
    }
    if let [only] = sql::live_projects(conn, user_id, 2)?.as_slice() {
        return Ok(only.clone());
    }
    let name = format!("{} project", orchestrator.label);
    new_project(conn, oldest, &name, now)
}

fn new_project(
    conn: &mut dyn Conn,
    organization_id: &str,
    name: &str,
    now: i64,
) -> Result<ProjectRef, AccountError> {
    let api_key = random_token("pub")?;
    let id = sql::insert_project(conn, organization_id, name, false, &api_key, now)?;
    Ok(ProjectRef { id, organization_id: organization_id.to_string() })
}

/// Consent linking: remember the request and answer with the browser URL where the user confirms.
fn pending_consent(
    conn: &mut dyn Conn,
    orchestrator: &Orchestrator,
    request: &AccountRequest,
    user_id: &str,
    public_url: &str,
    now: i64,
) -> Result<String, AccountError> {
    let token = random_secret()?;
    let scopes = request.scopes.join(" ");
    let consent = PendingConsent {
        token_hash: &token_hash(&token),
        orchestrator: &orchestrator.name,
        orchestrator_account: &request.orchestrator_account,
        request_id: &request.request_id,
        user_id,
        scopes: &scopes,
        code_challenge: request.code_challenge.as_deref(),
        team_id: request.team_id,
    };
    grants::insert_pending_consent(conn, &consent, now, now + CONSENT_TTL_SECS)?;
    Ok(format!("{public_url}/consent?token={token}"))
}

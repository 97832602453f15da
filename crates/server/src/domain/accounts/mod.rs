//! Account requests: create the account for a new email, or link the existing one by email — the
//! orchestrator has verified the address and signed the request — and resolve which project the
//! grant is for (spec 5.3).
//!
//! The rules are written once, here ([`resolve`]), over the user's memberships as either seam
//! reports them: [`builtin`] reads and writes provisio's own tables in one transaction; [`connector`]
//! asks the SaaS (`users.lookup`, `users.create`, `projects.create`) and records the outcome.

mod builtin;
mod connector;
pub mod consent;

use super::{
    Internal,
    tokens::{IssuedTokens, issue_family},
};
use crate::{
    audit::Actor,
    connector::Connector,
    crypto::{RandomError, random_secret, token_hash},
    events::Event,
    orchestrators::{Orchestrator, ResponseMode},
    store::{
        Conn, Store, StoreError,
        accounts::{Membership, ProjectRef, Resolution},
        consent::{self as consents, NewConsent},
        oauth::{self as grants, Grant},
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
    /// The request's `configuration` as the account configuration schema passed it (without
    /// `team_id`); `None` when no schema is configured. Sent to the SaaS with `users.create`.
    pub configuration: Option<serde_json::Value>,
    pub code_challenge: Option<String>,
    pub orchestrator_account: String,
    /// Echoed to the orchestrator as `state` when a consent completes.
    pub confirmation_secret: Option<String>,
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
    /// Connector mode: the SaaS refused to create the user.
    #[error("The account could not be created")]
    CreationRefused,
    /// Connector mode: the SaaS did not answer in time; nothing was recorded.
    #[error("The provider's systems are unavailable; retry later")]
    Unavailable { retry_after_secs: u64 },
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl AccountError {
    /// A failed `users.lookup` or `projects.create`: a refusal says nothing more than APP allows.
    fn from_call(e: &crate::connector::CallError) -> Self {
        match e {
            crate::connector::CallError::Unavailable { retry_after_secs, .. } => {
                Self::Unavailable { retry_after_secs: *retry_after_secs }
            }
            crate::connector::CallError::Refused { .. } => Self::TeamResolutionFailed,
        }
    }
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

/// The identity of an email: trimmed; the local part lowercased in ASCII only, so no other
/// character folds into an ASCII one (`\u{212A}im` — a KELVIN SIGN — stays distinct from `kim`);
/// the domain in its IDNA ASCII form, lowercased, so `exämple.com` and `xn--exmple-cua.com` are one
/// domain.
pub fn normalize_email(email: &str) -> String {
    let email = email.trim();
    let Some((local, domain)) = email.rsplit_once('@') else {
        return email.to_ascii_lowercase();
    };
    let domain = reqwest::Url::parse(&format!("http://{domain}/"))
        .ok()
        .and_then(|url| url.host_str().map(str::to_string))
        .filter(|host| !host.starts_with('['))
        .unwrap_or_else(|| domain.to_ascii_lowercase());
    format!("{}@{domain}", local.to_ascii_lowercase())
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

/// Where accounts live, and what an answer needs.
pub struct Accounts<'a> {
    pub store: &'a Store,
    /// Connector mode: the SaaS owns the users; `None`: provisio's own tables.
    pub connector: Option<&'a Connector>,
    pub public_url: &'a str,
}

impl Accounts<'_> {
    /// Handles one account request.
    pub async fn request(
        &self,
        orchestrator: &Orchestrator,
        request: AccountRequest,
        now: i64,
    ) -> Result<Outcome, AccountError> {
        match self.connector {
            None => builtin::request(self.store, orchestrator, request, self.public_url, now).await,
            Some(saas) => {
                connector::request(self.store, saas, orchestrator, request, self.public_url, now)
                    .await
            }
        }
    }
}

/// Where the linking rules put the grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    Existing(ProjectRef),
    /// A new project in this organization (the user's oldest membership).
    NewIn(String),
}

/// The existing-email path's project resolution (spec 5.3, rules 1–3), over the user's memberships
/// oldest first: no organization fails; a `team_id` must name a non-demo project of one of them
/// (which check failed is not told); otherwise the one non-demo project, or a new project in the
/// oldest organization when there are none or several.
pub fn resolve(memberships: &[Membership], team_id: Option<i64>) -> Result<Resolved, AccountError> {
    let oldest = memberships.first().ok_or(AccountError::TeamResolutionFailed)?;
    let mut live = memberships.iter().flat_map(|m| {
        m.projects
            .iter()
            .filter(|(_, demo)| !demo)
            .map(move |(id, _)| ProjectRef { id: *id, organization_id: m.organization_id.clone() })
    });
    if let Some(team_id) = team_id {
        return live
            .find(|p| p.id == team_id)
            .map(Resolved::Existing)
            .ok_or(AccountError::TeamResolutionFailed);
    }
    match (live.next(), live.next()) {
        (Some(only), None) => Ok(Resolved::Existing(only)),
        _ => Ok(Resolved::NewIn(oldest.organization_id.clone())),
    }
}

/// What an account request did, for the audit log and the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    Created,
    Linked,
}

/// Records what the request did (audit and event), then answers the grant: a code, or tokens.
/// `teams` is the user's `available_teams` as the SaaS reported them (connector mode), kept with
/// the code.
#[allow(clippy::too_many_arguments)]
fn answer(
    conn: &mut dyn Conn,
    actor: &Actor,
    orchestrator: &Orchestrator,
    request: &AccountRequest,
    resolution: &Resolution,
    path: Option<Path>,
    teams: Option<&str>,
    now: i64,
) -> Result<Outcome, AccountError> {
    let (user, org, project) =
        (&resolution.user_id, &resolution.project.organization_id, resolution.project.id);
    let request_id = request.request_id.as_str();
    match path {
        Some(Path::Created) => {
            actor.record(conn, "account.created", Some(user), Some(org), Some(project), now)?;
            let event = Event::AccountCreated {
                user_id: user,
                email: request.email.trim(),
                organization_id: org,
                project_id: project,
                orchestrator: &orchestrator.name,
                request_id,
            };
            actor.emit(conn, &event, now)?;
        }
        Some(Path::Linked) => {
            actor.record(conn, "account.linked", Some(user), Some(org), Some(project), now)?;
            let event = Event::AccountLinked {
                user_id: user,
                organization_id: org,
                project_id: project,
                orchestrator: &orchestrator.name,
                request_id,
            };
            actor.emit(conn, &event, now)?;
        }
        None => {}
    }
    let grant = Grant {
        user_id: resolution.user_id.clone(),
        organization_id: resolution.project.organization_id.clone(),
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
                teams,
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

/// Remembers how a request id resolved, so a retry resolves alike and creates nothing.
fn remember(
    conn: &mut dyn Conn,
    orchestrator: &Orchestrator,
    request: &AccountRequest,
    email_normalized: &str,
    resolution: &Resolution,
    now: i64,
) -> Result<(), StoreError> {
    if request.request_id.is_empty() {
        return Ok(());
    }
    crate::store::accounts::record_account_request(
        conn,
        &orchestrator.name,
        &request.request_id,
        email_normalized,
        resolution,
        now,
        now + REQUEST_ID_TTL_SECS,
    )
}

/// Consent linking: remember the request and answer with the browser URL where the user proves the
/// email and confirms. Nothing is created or linked before that proof, so an orchestrator that is
/// not trusted to have verified the email cannot pre-register an account for it. A newer request
/// for the same email and orchestrator supersedes an open one. `user_id` is the user when it is
/// already known (built-in), so an operator's revocation reaches the consent too.
fn pending_consent(
    conn: &mut dyn Conn,
    actor: &Actor,
    orchestrator: &Orchestrator,
    request: &AccountRequest,
    user_id: Option<&str>,
    public_url: &str,
    now: i64,
) -> Result<Outcome, AccountError> {
    let token = random_secret()?;
    let scopes = request.scopes.join(" ");
    let email = request.email.trim();
    let configuration = request.configuration.as_ref().map(serde_json::Value::to_string);
    let consent = NewConsent {
        token_hash: &token_hash(&token),
        orchestrator: &orchestrator.name,
        orchestrator_account: &request.orchestrator_account,
        request_id: &request.request_id,
        user_id,
        scopes: &scopes,
        code_challenge: request.code_challenge.as_deref(),
        team_id: request.team_id,
        email,
        email_normalized: &normalize_email(email),
        name: request.name.as_deref(),
        organization_name: request.organization_name.as_deref(),
        state: request.confirmation_secret.as_deref(),
        configuration: configuration.as_deref(),
    };
    consents::insert(conn, &consent, now, now + CONSENT_TTL_SECS)?;
    actor.record(conn, "consent.requested", user_id, None, None, now)?;
    Ok(Outcome::RequiresAuth { url: format!("{public_url}/consent?token={token}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn membership(org: &str, projects: &[(i64, bool)]) -> Membership {
        Membership { organization_id: org.into(), projects: projects.to_vec() }
    }

    fn existing(id: i64, org: &str) -> Result<Resolved, ()> {
        Ok(Resolved::Existing(ProjectRef { id, organization_id: org.into() }))
    }

    fn run(memberships: &[Membership], team_id: Option<i64>) -> Result<Resolved, ()> {
        resolve(memberships, team_id)
            .map_err(|e| assert!(matches!(e, AccountError::TeamResolutionFailed)))
    }

    #[test]
    fn emails_fold_ascii_only_and_domains_to_idna() {
        assert_eq!(normalize_email(" Ada@Example.COM "), "ada@example.com");
        assert_ne!(normalize_email("\u{212A}im@example.com"), normalize_email("kim@example.com"));
        assert_eq!(normalize_email("Ünal@example.com"), "Ünal@example.com");
        assert_eq!(normalize_email("a@EXÄMPLE.com"), normalize_email("a@xn--exmple-cua.com"));
        assert_eq!(normalize_email("a@xn--exmple-cua.com"), "a@xn--exmple-cua.com");
    }

    #[test]
    fn the_linking_rules() {
        // 1. No organization.
        assert_eq!(run(&[], None), Err(()));
        let two_orgs =
            [membership("o1", &[(1, true), (2, false)]), membership("o2", &[(3, false)])];
        // 2. team_id: a non-demo project of one of the user's organizations, else the same refusal.
        assert_eq!(run(&two_orgs, Some(3)), existing(3, "o2"));
        assert_eq!(run(&two_orgs, Some(1)), Err(()));
        assert_eq!(run(&two_orgs, Some(99)), Err(()));
        // 3. The one non-demo project; none or several: a new one in the oldest organization.
        assert_eq!(run(&[membership("o1", &[(1, true), (2, false)])], None), existing(2, "o1"));
        assert_eq!(run(&two_orgs, None), Ok(Resolved::NewIn("o1".into())));
        assert_eq!(run(&[membership("o1", &[(1, true)])], None), Ok(Resolved::NewIn("o1".into())));
        assert_eq!(
            run(&[membership("o1", &[]), membership("o2", &[(5, false)])], None),
            existing(5, "o2")
        );
    }
}

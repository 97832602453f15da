//! One-time dashboard links (spec 5.10) and the browser sessions they open.

use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::{Internal, auth::Principal};
use crate::{
    audit::Actor,
    connector::Connector,
    crypto::{RandomError, random_secret, token_hash},
    store::{
        Conn, Store, StoreError,
        dashboard::{self as sql, ProjectPage, ProjectSummary, UsedLink},
    },
};

/// A dashboard link is good for this long, once.
pub const DEEP_LINK_TTL_SECS: i64 = 600;
/// A dashboard session lasts this long.
pub const SESSION_TTL_SECS: i64 = 12 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("Resource not accessible with this token")]
    Forbidden,
    #[error("expired_or_invalid_token")]
    InvalidLink,
    /// Connector mode: the SaaS did not sign the user in.
    #[error("the SaaS refused or failed the dashboard login: {0}")]
    Saas(String),
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl From<StoreError> for DashboardError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.into())
    }
}

impl From<RandomError> for DashboardError {
    fn from(e: RandomError) -> Self {
        Self::Internal(e.into())
    }
}

/// An issued link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeepLink {
    pub url: String,
    pub expires_at: String,
}

/// Issues a single-use link into the dashboard of `project_id` (default: the token's primary project).
pub async fn issue_link(
    store: &Store,
    principal: &Principal,
    project_id: Option<i64>,
    public_url: &str,
    now: i64,
) -> Result<DeepLink, DashboardError> {
    let project_id = project_id.unwrap_or(principal.primary_project_id);
    if !principal.can_reach(project_id) {
        return Err(DashboardError::Forbidden);
    }
    let token = random_secret()?;
    let (hash, user, org) =
        (token_hash(&token), principal.user_id.clone(), principal.organization_id.clone());
    let expires = now + DEEP_LINK_TTL_SECS;
    let actor = Actor::current(&principal.orchestrator);
    store
        .write(move |conn| -> Result<(), StoreError> {
            sql::insert_deep_link(conn, &hash, &user, &org, project_id, now, expires)?;
            actor.record(conn, "deep_link.issued", Some(&user), Some(&org), Some(project_id), now)
        })
        .await?;
    let expires_at = OffsetDateTime::from_unix_timestamp(expires)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default();
    Ok(DeepLink {
        url: format!("{public_url}/login?token={token}&project_id={project_id}"),
        expires_at,
    })
}

/// A new session from a link: `(session id, project id)`. The link is consumed atomically, so of
/// many concurrent uses exactly one opens a session.
pub async fn open_session(
    store: &Store,
    link_token: &str,
    now: i64,
) -> Result<(String, i64), DashboardError> {
    let session = random_secret()?;
    let (link_hash, session_hash) = (token_hash(link_token), token_hash(&session));
    let actor = Actor::current("");
    let project = store
        .write(move |conn| -> Result<Option<i64>, DashboardError> {
            let Some(link) = use_link(conn, &actor, &link_hash, now)? else {
                return Ok(None);
            };
            sql::insert_session(conn, &session_hash, &link.user_id, now, now + SESSION_TTL_SECS)?;
            Ok(Some(link.project_id))
        })
        .await?
        .ok_or(DashboardError::InvalidLink)?;
    Ok((session, project))
}

/// Connector mode: uses the link, then asks the SaaS for a sign-in URL into its own dashboard (on
/// the configured origin). The link is spent either way: a refused or failed login is an error
/// page, never a half-signed-in state.
pub async fn open_in_saas(
    store: &Store,
    saas: &Connector,
    link_token: &str,
    now: i64,
) -> Result<String, DashboardError> {
    let link_hash = token_hash(link_token);
    let actor = Actor::current("");
    let link = store
        .write(move |conn| use_link(conn, &actor, &link_hash, now))
        .await?
        .ok_or(DashboardError::InvalidLink)?;
    saas.dashboard_login(
        &link.user_id,
        &link.organization_id,
        Some(link.project_id),
        saas.deadline(),
    )
    .await
    .map_err(|e| DashboardError::Saas(e.to_string()))
}

/// Consumes a live link and records its use.
fn use_link(
    conn: &mut dyn Conn,
    actor: &Actor,
    link_hash: &str,
    now: i64,
) -> Result<Option<UsedLink>, StoreError> {
    let Some(link) = sql::consume_deep_link(conn, link_hash, now)? else { return Ok(None) };
    let (user, org) = (Some(link.user_id.as_str()), Some(link.organization_id.as_str()));
    actor.record(conn, "deep_link.used", user, org, Some(link.project_id), now)?;
    Ok(Some(link))
}

/// The user behind a session cookie, if the session is live.
pub async fn session_user(
    store: &Store,
    session: &str,
    now: i64,
) -> Result<Option<String>, DashboardError> {
    let hash = token_hash(session);
    Ok(store.read(move |conn| sql::session_user(conn, &hash, now)).await?)
}

pub async fn close_session(store: &Store, session: &str) -> Result<(), DashboardError> {
    let hash = token_hash(session);
    Ok(store.write(move |conn| sql::delete_session(conn, &hash)).await?)
}

pub async fn projects(store: &Store, user_id: &str) -> Result<Vec<ProjectSummary>, DashboardError> {
    let user = user_id.to_string();
    Ok(store.read(move |conn| sql::projects_of_user(conn, &user)).await?)
}

pub async fn project(
    store: &Store,
    user_id: &str,
    project_id: i64,
) -> Result<Option<ProjectPage>, DashboardError> {
    let user = user_id.to_string();
    Ok(store.read(move |conn| sql::project_page(conn, &user, project_id)).await?)
}

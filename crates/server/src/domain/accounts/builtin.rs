//! Built-in accounts: provisio's own users, organizations and projects, decided and written in one
//! transaction. Across concurrent requests, one user per email and one answer per request id rest
//! on unique constraints.

use super::{
    AccountError, AccountRequest, Outcome, Path, Resolved, answer, first_name, normalize_email,
    pending_consent, remember, resolve,
};
use crate::{
    audit::Actor,
    crypto::{ordered_token, random_id},
    orchestrators::{LinkingPolicy, Orchestrator},
    store::{
        Conn, Store,
        accounts::{self as sql, NewUser, ProjectRef, Resolution},
    },
};

pub(super) async fn request(
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
    let (resolution, path) = match retried {
        Some((email, _)) if email != email_normalized => return Err(AccountError::RequestIdReused),
        Some((_, resolution)) => (resolution, None),
        None if orchestrator.linking == LinkingPolicy::Consent => {
            // Proof of the email first, for a new address too: then the account is created.
            let user = sql::find_user_by_email(conn, &email_normalized)?;
            return pending_consent(
                conn,
                actor,
                orchestrator,
                request,
                user.as_deref(),
                public_url,
                now,
            );
        }
        None => {
            let (resolution, path) =
                match create_user(conn, orchestrator, request, &email_normalized, now)? {
                    Some(created) => (created, Path::Created),
                    None => {
                        let user_id = sql::find_user_by_email(conn, &email_normalized)?
                            .ok_or(AccountError::TeamResolutionFailed)?;
                        let project =
                            resolve_project(conn, &user_id, request.team_id, orchestrator, now)?;
                        (Resolution { project, user_id }, Path::Linked)
                    }
                };
            remember(conn, orchestrator, request, &email_normalized, &resolution, now)?;
            (resolution, Some(path))
        }
    };
    answer(conn, actor, orchestrator, request, &resolution, path, None, now)
}

/// The new-email path: user, organization, owner membership and default project. `None` when the
/// email already has a user (possibly created a moment ago by a concurrent request).
pub(super) fn create_user(
    conn: &mut dyn Conn,
    orchestrator: &Orchestrator,
    request: &AccountRequest,
    email_normalized: &str,
    now: i64,
) -> Result<Option<Resolution>, AccountError> {
    let user_id = random_id("usr", now)?;
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
    let organization_id = random_id("org", now)?;
    let organization_name = request
        .organization_name
        .clone()
        .unwrap_or_else(|| format!("{} ({})", orchestrator.label, request.email.trim()));
    sql::insert_organization(conn, &organization_id, &organization_name, now)?;
    sql::insert_membership(conn, &user_id, &organization_id, "owner", now)?;
    let project = new_project(conn, &organization_id, "Default project", now)?;
    Ok(Some(Resolution { user_id, project }))
}

/// The linking rules over provisio's own memberships.
fn resolve_project(
    conn: &mut dyn Conn,
    user_id: &str,
    team_id: Option<i64>,
    orchestrator: &Orchestrator,
    now: i64,
) -> Result<ProjectRef, AccountError> {
    match resolve(&sql::memberships(conn, user_id)?, team_id)? {
        Resolved::Existing(project) => Ok(project),
        Resolved::NewIn(organization_id) => {
            let name = format!("{} project", orchestrator.label);
            new_project(conn, &organization_id, &name, now)
        }
    }
}

pub(super) fn new_project(
    conn: &mut dyn Conn,
    organization_id: &str,
    name: &str,
    now: i64,
) -> Result<ProjectRef, AccountError> {
    let api_key = ordered_token("pub")?;
    let id = sql::insert_project(conn, organization_id, name, false, &api_key, now)?;
    Ok(ProjectRef { id, organization_id: organization_id.to_string() })
}

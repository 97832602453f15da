//! Operator views and actions on accounts: find users, show what they own, add a demo project,
//! revoke a user's tokens, erase a user.

use serde::Serialize;

pub use crate::store::admin::{ProjectView, UserSummary};
use crate::{
    crypto::ordered_token,
    domain::accounts::normalize_email,
    store::{Query, Store, StoreError, accounts as sql, admin as admin_sql},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrganizationView {
    pub id: String,
    pub name: String,
    pub role: String,
    pub plan: Option<String>,
    pub projects: Vec<ProjectView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserView {
    pub user: UserSummary,
    pub organizations: Vec<OrganizationView>,
    pub live_token_families: i64,
}

/// Users whose email contains `filter` (all when empty), newest first.
pub async fn list_users(
    store: &Store,
    filter: &str,
    limit: i64,
) -> Result<Vec<UserSummary>, StoreError> {
    let pattern = format!("%{}%", normalize_email(filter));
    store.read(move |conn| admin_sql::users_matching(conn, &pattern, limit)).await
}

/// A user by id or email, with organizations, projects and live token families.
pub async fn show_user(store: &Store, who: &str) -> Result<Option<UserView>, StoreError> {
    let who = who.to_string();
    store.read(move |conn| user_view(conn, &who)).await
}

fn resolve(conn: &mut dyn Query, who: &str) -> Result<Option<String>, StoreError> {
    if who.contains('@') {
        sql::find_user_by_email(conn, &normalize_email(who))
    } else {
        admin_sql::user_id(conn, who)
    }
}

fn user_view(conn: &mut dyn Query, who: &str) -> Result<Option<UserView>, StoreError> {
    let Some(id) = resolve(conn, who)? else { return Ok(None) };
    let user = admin_sql::user(conn, &id)?;
    let mut organizations = Vec::new();
    for org in admin_sql::memberships(conn, &id)? {
        let projects = admin_sql::projects_of_organization(conn, &org.organization_id)?;
        organizations.push(OrganizationView {
            id: org.organization_id,
            name: org.name,
            role: org.role,
            plan: org.plan,
            projects,
        });
    }
    let live_token_families = admin_sql::live_token_families(conn, &id)?;
    Ok(Some(UserView { user, organizations, live_token_families }))
}

/// Adds a demo project (never linked to, never in `available_teams`) to an organization.
pub async fn create_demo_project(
    store: &Store,
    organization_id: &str,
    name: &str,
    now: i64,
) -> Result<i64, AdminError> {
    let (org, name) = (organization_id.to_string(), name.to_string());
    store
        .write(move |conn| -> Result<i64, AdminError> {
            if !admin_sql::organization_exists(conn, &org)? {
                return Err(AdminError::NotFound(format!("organization {org}")));
            }
            Ok(sql::insert_project(conn, &org, &name, true, &ordered_token("pub")?, now)?)
        })
        .await
}

/// Revokes every live token family of a user; returns how many.
pub async fn revoke_user_tokens(store: &Store, who: &str, now: i64) -> Result<usize, AdminError> {
    let who = who.to_string();
    store
        .write(move |conn| -> Result<usize, AdminError> {
            let id =
                resolve(conn, &who)?.ok_or_else(|| AdminError::NotFound(format!("user {who}")))?;
            // Codes, consents, dashboard links and sessions die with the tokens: each is a way in.
            let actor = crate::audit::Actor::default();
            let families = crate::domain::inbound::revoke(conn, &actor, &id, false, now)?;
            actor.record(conn, "tokens.revoked_by_admin", Some(&id), None, None, now)?;
            Ok(families)
        })
        .await
}

/// Erases a user of provisio's own (built-in mode), found by id or email: every way in revoked,
/// the address and names removed, what the audit must keep kept under a pseudonym — the rules of
/// [`crate::domain::inbound::erase`], the same as the SaaS's erase. By id it can be run again (it
/// finds nothing more to do); by email it cannot, the address being gone.
pub async fn erase_user(
    store: &Store,
    who: &str,
    now: i64,
) -> Result<crate::domain::inbound::Erasure, AdminError> {
    let (who, backend) = (who.to_string(), store.backend());
    store
        .write(move |conn| -> Result<_, AdminError> {
            let id = resolve(conn, &who)?.ok_or_else(|| {
                let what = if who.contains('@') { "user with that email" } else { "user" };
                AdminError::NotFound(format!("{what}: {}", shown(&who)))
            })?;
            let actor = crate::audit::Actor::default();
            Ok(crate::domain::inbound::erase(
                conn,
                &actor,
                backend,
                &id,
                "user.erased_by_admin",
                now,
            )?)
        })
        .await
}

/// How an unknown user is named in an error: an address masked (errors end up in logs), an id as
/// given.
fn shown(who: &str) -> String {
    match who.trim().rsplit_once('@') {
        Some((local, domain)) => {
            format!("{}***@{domain}", local.chars().next().map(String::from).unwrap_or_default())
        }
        None => who.to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no such {0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Random(#[from] crate::crypto::RandomError),
}

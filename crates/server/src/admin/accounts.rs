//! Operator views and actions on accounts: find users, show what they own, add a demo project,
//! revoke a user's tokens, erase a user.

use serde::Serialize;

use crate::{
    crypto::random_token,
    domain::accounts::normalize_email,
    store::{Conn, Store, StoreError, accounts as sql},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserSummary {
    pub id: String,
    pub email: String,
    pub created_at: i64,
    pub deleted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectView {
    pub id: i64,
    pub name: String,
    pub is_demo: bool,
    pub service_id: Option<String>,
    pub status: Option<String>,
}

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
    store
        .read(move |conn| {
            conn.query(
                "SELECT id, email, created_at, deleted_at IS NOT NULL FROM users WHERE email_normalized LIKE $1 ORDER BY created_at DESC, id LIMIT $2",
                &[(&pattern).into(), limit.into()],
            )?
            .iter()
            .map(|r| Ok(UserSummary { id: r.text(0)?, email: r.text(1)?, created_at: r.int(2)?, deleted: r.int(3)? == 1 }))
            .collect()
        })
        .await
}

/// A user by id or email, with organizations, projects and live token families.
pub async fn show_user(store: &Store, who: &str) -> Result<Option<UserView>, StoreError> {
    let who = who.to_string();
    store.read(move |conn| user_view(conn, &who)).await
}

fn resolve(conn: &mut dyn Conn, who: &str) -> Result<Option<String>, StoreError> {
    if who.contains('@') {
        sql::find_user_by_email(conn, &normalize_email(who))
    } else {
        conn.query_opt("SELECT id FROM users WHERE id = $1", &[who.into()])?
            .map(|r| r.text(0))
            .transpose()
    }
}

fn user_view(conn: &mut dyn Conn, who: &str) -> Result<Option<UserView>, StoreError> {
    let Some(id) = resolve(conn, who)? else { return Ok(None) };
    let row = conn.query_one(
        "SELECT id, email, created_at, deleted_at IS NOT NULL FROM users WHERE id = $1",
        &[(&id).into()],
    )?;
    let user = UserSummary {
        id: row.text(0)?,
        email: row.text(1)?,
        created_at: row.int(2)?,
        deleted: row.int(3)? == 1,
    };
    let mut organizations = Vec::new();
    for org in conn.query(
        "SELECT o.id, o.name, m.role, b.plan FROM memberships m JOIN organizations o ON o.id = m.organization_id \
         LEFT JOIN billing b ON b.organization_id = o.id WHERE m.user_id = $1 ORDER BY m.created_at, m.id",
        &[(&id).into()],
    )? {
        let org_id = org.text(0)?;
        let projects = conn
            .query(
                "SELECT p.id, p.name, p.is_demo, r.service_id, r.status FROM projects p LEFT JOIN resources r ON r.project_id = p.id \
                 WHERE p.organization_id = $1 ORDER BY p.id",
                &[(&org_id).into()],
            )?
            .iter()
            .map(|p| {
                Ok(ProjectView { id: p.int(0)?, name: p.text(1)?, is_demo: p.int(2)? == 1, service_id: p.opt_text(3)?, status: p.opt_text(4)? })
            })
            .collect::<Result<_, StoreError>>()?;
        organizations.push(OrganizationView { id: org_id, name: org.text(1)?, role: org.text(2)?, plan: org.opt_text(3)?, projects });
    }
    let live_token_families = conn
        .query_one(
            "SELECT COUNT(*) FROM token_families WHERE user_id = $1 AND revoked_at IS NULL",
            &[(&id).into()],
        )?
        .int(0)?;
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
            if conn
                .query_opt("SELECT 1 FROM organizations WHERE id = $1", &[(&org).into()])?
                .is_none()
            {
                return Err(AdminError::NotFound(format!("organization {org}")));
            }
            Ok(sql::insert_project(conn, &org, &name, true, &random_token("pub")?, now)?)
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

//! SQL for the operator's views of accounts (`admin/accounts.rs`): users, their organizations,
//! projects and live token families.

use super::{Query, Row, StoreError};

/// A user as the operator lists them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserSummary {
    pub id: String,
    pub email: String,
    pub created_at: i64,
    pub deleted: bool,
}

impl UserSummary {
    fn from_row(r: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.text(0)?,
            email: r.text(1)?,
            created_at: r.int(2)?,
            deleted: r.int(3)? == 1,
        })
    }
}

/// A project of an organization, with its resource if it has one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProjectView {
    pub id: i64,
    pub name: String,
    pub is_demo: bool,
    pub service_id: Option<String>,
    pub status: Option<String>,
}

/// An organization a user belongs to, with the user's role and the organization's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub organization_id: String,
    pub name: String,
    pub role: String,
    pub plan: Option<String>,
}

/// Users whose normalized email is `LIKE` `pattern`, newest first, at most `limit`.
pub fn users_matching(
    conn: &mut dyn Query,
    pattern: &str,
    limit: i64,
) -> Result<Vec<UserSummary>, StoreError> {
    conn.query(
        "SELECT id, email, created_at, deleted_at IS NOT NULL FROM users WHERE email_normalized LIKE $1 ORDER BY created_at DESC, id LIMIT $2",
        &[pattern.into(), limit.into()],
    )?
    .iter()
    .map(UserSummary::from_row)
    .collect()
}

/// The user's id if a user has this id.
pub fn user_id(conn: &mut dyn Query, id: &str) -> Result<Option<String>, StoreError> {
    conn.query_opt("SELECT id FROM users WHERE id = $1", &[id.into()])?
        .map(|r| r.text(0))
        .transpose()
}

/// The user with this id (an error if there is none).
pub fn user(conn: &mut dyn Query, id: &str) -> Result<UserSummary, StoreError> {
    let row = conn.query_one(
        "SELECT id, email, created_at, deleted_at IS NOT NULL FROM users WHERE id = $1",
        &[id.into()],
    )?;
    UserSummary::from_row(&row)
}

/// The user's organizations, in the order they were joined.
pub fn memberships(conn: &mut dyn Query, user_id: &str) -> Result<Vec<Membership>, StoreError> {
    conn.query(
        "SELECT o.id, o.name, m.role, b.plan FROM memberships m JOIN organizations o ON o.id = m.organization_id \
         LEFT JOIN billing b ON b.organization_id = o.id WHERE m.user_id = $1 ORDER BY m.created_at, m.id",
        &[user_id.into()],
    )?
    .iter()
    .map(|r| {
        Ok(Membership {
            organization_id: r.text(0)?,
            name: r.text(1)?,
            role: r.text(2)?,
            plan: r.opt_text(3)?,
        })
    })
    .collect()
}

/// The organization's projects, by id.
pub fn projects_of_organization(
    conn: &mut dyn Query,
    organization_id: &str,
) -> Result<Vec<ProjectView>, StoreError> {
    conn.query(
        "SELECT p.id, p.name, p.is_demo, r.service_id, r.status FROM projects p LEFT JOIN resources r ON r.project_id = p.id \
         WHERE p.organization_id = $1 ORDER BY p.id",
        &[organization_id.into()],
    )?
    .iter()
    .map(|p| {
        Ok(ProjectView { id: p.int(0)?, name: p.text(1)?, is_demo: p.int(2)? == 1, service_id: p.opt_text(3)?, status: p.opt_text(4)? })
    })
    .collect()
}

/// How many of the user's token families are not revoked.
pub fn live_token_families(conn: &mut dyn Query, user_id: &str) -> Result<i64, StoreError> {
    conn.query_one(
        "SELECT COUNT(*) FROM token_families WHERE user_id = $1 AND revoked_at IS NULL",
        &[user_id.into()],
    )?
    .int(0)
}

pub fn organization_exists(conn: &mut dyn Query, id: &str) -> Result<bool, StoreError> {
    Ok(conn.query_opt("SELECT 1 FROM organizations WHERE id = $1", &[id.into()])?.is_some())
}

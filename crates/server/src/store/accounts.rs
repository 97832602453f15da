//! SQL for users, organizations, memberships, projects and account-request records.

use super::{Conn, Query, Row, StoreError};

/// A project as the account and token logic sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRef {
    pub id: i64,
    pub organization_id: String,
}

impl ProjectRef {
    fn from_row(row: &Row) -> Result<Self, StoreError> {
        Ok(Self { id: row.int(0)?, organization_id: row.text(1)? })
    }
}

/// One entry of `available_teams`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Team {
    pub id: i64,
    pub name: String,
    pub organization_id: String,
    pub organization_name: String,
}

/// What an account request resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub user_id: String,
    pub project: ProjectRef,
}

pub struct NewUser<'a> {
    pub id: &'a str,
    pub email: &'a str,
    pub email_normalized: &'a str,
    pub first_name: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// Inserts the user unless the email exists; `false` when another request got there first.
pub fn insert_user(conn: &mut dyn Conn, user: &NewUser<'_>, now: i64) -> Result<bool, StoreError> {
    let inserted = conn.execute(
        "INSERT INTO users (id, email, email_normalized, first_name, name, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (email_normalized) DO NOTHING",
        &[
            user.id.into(),
            user.email.into(),
            user.email_normalized.into(),
            user.first_name.into(),
            user.name.into(),
            now.into(),
        ],
    )?;
    Ok(inserted == 1)
}

pub fn find_user_by_email(
    conn: &mut dyn Query,
    email_normalized: &str,
) -> Result<Option<String>, StoreError> {
    conn.query_opt("SELECT id FROM users WHERE email_normalized = $1", &[email_normalized.into()])?
        .map(|r| r.text(0))
        .transpose()
}

pub fn insert_organization(
    conn: &mut dyn Conn,
    id: &str,
    name: &str,
    now: i64,
) -> Result<(), StoreError> {
    conn.defer(
        "INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3)",
        &[id.into(), name.into(), now.into()],
    )
}

pub fn insert_membership(
    conn: &mut dyn Conn,
    user_id: &str,
    organization_id: &str,
    role: &str,
    now: i64,
) -> Result<(), StoreError> {
    conn.defer(
        "INSERT INTO memberships (user_id, organization_id, role, created_at) VALUES ($1, $2, $3, $4)",
        &[user_id.into(), organization_id.into(), role.into(), now.into()],
    )
}

pub fn insert_project(
    conn: &mut dyn Conn,
    organization_id: &str,
    name: &str,
    is_demo: bool,
    api_key: &str,
    now: i64,
) -> Result<i64, StoreError> {
    conn.query_one(
        "INSERT INTO projects (organization_id, name, is_demo, api_key, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
        &[organization_id.into(), name.into(), is_demo.into(), api_key.into(), now.into()],
    )?
    .int(0)
}

/// The user's organizations, oldest membership first.
pub fn organizations_of(conn: &mut dyn Query, user_id: &str) -> Result<Vec<String>, StoreError> {
    conn.query(
        "SELECT organization_id FROM memberships WHERE user_id = $1 ORDER BY created_at, id",
        &[user_id.into()],
    )?
    .iter()
    .map(|r| r.text(0))
    .collect()
}

/// A non-demo project of one of the user's organizations, by id.
pub fn own_live_project(
    conn: &mut dyn Conn,
    user_id: &str,
    project_id: i64,
) -> Result<Option<ProjectRef>, StoreError> {
    conn.query_opt(
        "SELECT p.id, p.organization_id FROM projects p \
         JOIN memberships m ON m.organization_id = p.organization_id \
         WHERE p.id = $1 AND m.user_id = $2 AND p.is_demo = 0",
        &[project_id.into(), user_id.into()],
    )?
    .map(|r| ProjectRef::from_row(&r))
    .transpose()
}

/// Up to `limit` non-demo projects across the user's organizations, by id.
pub fn live_projects(
    conn: &mut dyn Conn,
    user_id: &str,
    limit: i64,
) -> Result<Vec<ProjectRef>, StoreError> {
    conn.query(
        "SELECT p.id, p.organization_id FROM projects p \
         JOIN memberships m ON m.organization_id = p.organization_id \
         WHERE m.user_id = $1 AND p.is_demo = 0 ORDER BY p.id LIMIT $2",
        &[user_id.into(), limit.into()],
    )?
    .iter()
    .map(ProjectRef::from_row)
    .collect()
}

/// `available_teams`: every non-demo project of every organization of the user, by id.
pub fn available_teams(conn: &mut dyn Query, user_id: &str) -> Result<Vec<Team>, StoreError> {
    conn.query(
        "SELECT p.id, p.name, o.id, o.name FROM projects p \
         JOIN organizations o ON o.id = p.organization_id \
         JOIN memberships m ON m.organization_id = o.id \
         WHERE m.user_id = $1 AND p.is_demo = 0 ORDER BY p.id",
        &[user_id.into()],
    )?
    .iter()
    .map(|r| {
        Ok(Team {
            id: r.int(0)?,
            name: r.text(1)?,
            organization_id: r.text(2)?,
            organization_name: r.text(3)?,
        })
    })
    .collect()
}

/// The earlier resolution of this request id, if still live: `(email_normalized, resolution)`.
pub fn find_account_request(
    conn: &mut dyn Query,
    orchestrator: &str,
    request_id: &str,
    now: i64,
) -> Result<Option<(String, Resolution)>, StoreError> {
    conn.query_opt(
        "SELECT email_normalized, user_id, project_id, organization_id FROM account_requests \
         WHERE orchestrator = $1 AND request_id = $2 AND expires_at > $3",
        &[orchestrator.into(), request_id.into(), now.into()],
    )?
    .map(|r| {
        Ok((
            r.text(0)?,
            Resolution {
                user_id: r.text(1)?,
                project: ProjectRef { id: r.int(2)?, organization_id: r.text(3)? },
            },
        ))
    })
    .transpose()
}

/// Records (or, once expired, replaces) the resolution of a request id.
pub fn record_account_request(
    conn: &mut dyn Conn,
    orchestrator: &str,
    request_id: &str,
    email_normalized: &str,
    resolution: &Resolution,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    conn.defer(
        "INSERT INTO account_requests (orchestrator, request_id, email_normalized, user_id, organization_id, project_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (orchestrator, request_id) DO UPDATE SET email_normalized = $3, user_id = $4, \
         organization_id = $5, project_id = $6, created_at = $7, expires_at = $8",
        &[
            orchestrator.into(),
            request_id.into(),
            email_normalized.into(),
            (&resolution.user_id).into(),
            (&resolution.project.organization_id).into(),
            resolution.project.id.into(),
            now.into(),
            expires_at.into(),
        ],
    )
}

/// The user's organizations, oldest membership first, each with its projects (`(id, demo)`), as
/// the linking rules read them.
pub fn memberships(conn: &mut dyn Query, user_id: &str) -> Result<Vec<Membership>, StoreError> {
    let rows = conn.query(
        "SELECT m.organization_id, p.id, p.is_demo FROM memberships m \
         LEFT JOIN projects p ON p.organization_id = m.organization_id \
         WHERE m.user_id = $1 ORDER BY m.created_at, m.id, p.id",
        &[user_id.into()],
    )?;
    let mut memberships: Vec<Membership> = Vec::new();
    for row in &rows {
        let organization_id = row.text(0)?;
        if memberships.last().is_none_or(|m| m.organization_id != organization_id) {
            memberships.push(Membership { organization_id, projects: Vec::new() });
        }
        if let (Some(id), Some(membership)) = (row.opt_int(1)?, memberships.last_mut()) {
            membership.projects.push((id, row.int(2)? != 0));
        }
    }
    Ok(memberships)
}

/// One organization of a user as the linking rules see it: its projects as `(id, demo)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub organization_id: String,
    pub projects: Vec<(i64, bool)>,
}

/// An organization's name (empty if it is gone).
pub fn organization_name(conn: &mut dyn Query, id: &str) -> Result<String, StoreError> {
    conn.query_opt("SELECT name FROM organizations WHERE id = $1", &[id.into()])?
        .map_or_else(|| Ok(String::new()), |r| r.text(0))
}

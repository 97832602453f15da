//! SQL for users, organizations, memberships, projects and account-request records.

use sqlx::{AnyConnection, Row};

/// A project as the account and token logic sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRef {
    pub id: i64,
    pub organization_id: String,
}

/// One entry of `available_teams`.
#[derive(Debug, Clone, PartialEq, Eq)]
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
pub async fn insert_user(
    conn: &mut AnyConnection,
    user: &NewUser<'_>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO users (id, email, email_normalized, first_name, name, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (email_normalized) DO NOTHING",
    )
    .bind(user.id)
    .bind(user.email)
    .bind(user.email_normalized)
    .bind(user.first_name)
    .bind(user.name)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

pub async fn find_user_by_email(
    conn: &mut AnyConnection,
    email_normalized: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM users WHERE email_normalized = $1")
        .bind(email_normalized)
        .fetch_optional(conn)
        .await
}

/// Whether the user exists and is not deleted.
pub async fn user_is_live(conn: &mut AnyConnection, user_id: &str) -> Result<bool, sqlx::Error> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM users WHERE id = $1 AND deleted_at IS NULL")
            .bind(user_id)
            .fetch_optional(conn)
            .await?;
    Ok(found.is_some())
}

pub async fn insert_organization(
    conn: &mut AnyConnection,
    id: &str,
    name: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(name)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn insert_membership(
    conn: &mut AnyConnection,
    user_id: &str,
    organization_id: &str,
    role: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO memberships (user_id, organization_id, role, created_at) VALUES ($1, $2, $3, $4)")
        .bind(user_id)
        .bind(organization_id)
        .bind(role)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn insert_project(
    conn: &mut AnyConnection,
    organization_id: &str,
    name: &str,
    is_demo: bool,
    api_key: &str,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO projects (organization_id, name, is_demo, api_key, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(organization_id)
    .bind(name)
    .bind(i64::from(is_demo))
    .bind(api_key)
    .bind(now)
    .fetch_one(conn)
    .await
}

/// The user's organizations, oldest membership first.
pub async fn organizations_of(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT organization_id FROM memberships WHERE user_id = $1 ORDER BY created_at, id",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await
}

/// A non-demo project of one of the user's organizations, by id.
pub async fn own_live_project(
    conn: &mut AnyConnection,
    user_id: &str,
    project_id: i64,
) -> Result<Option<ProjectRef>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT p.id, p.organization_id FROM projects p \
         JOIN memberships m ON m.organization_id = p.organization_id \
         WHERE p.id = $1 AND m.user_id = $2 AND p.is_demo = 0",
    )
    .bind(project_id)
    .bind(user_id)
    .fetch_optional(conn)
    .await?;
    row.map(|r| project_ref(&r)).transpose()
}

/// Up to `limit` non-demo projects across the user's organizations, by id.
pub async fn live_projects(
    conn: &mut AnyConnection,
    user_id: &str,
    limit: i64,
) -> Result<Vec<ProjectRef>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT p.id, p.organization_id FROM projects p \
         JOIN memberships m ON m.organization_id = p.organization_id \
         WHERE m.user_id = $1 AND p.is_demo = 0 ORDER BY p.id LIMIT $2",
    )
    .bind(user_id)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(project_ref).collect()
}

/// `available_teams`: every non-demo project of every organization of the user, by id.
pub async fn available_teams(
    conn: &mut AnyConnection,
    user_id: &str,
) -> Result<Vec<Team>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT p.id, p.name, o.id AS organization_id, o.name AS organization_name FROM projects p \
         JOIN organizations o ON o.id = p.organization_id \
         JOIN memberships m ON m.organization_id = o.id \
         WHERE m.user_id = $1 AND p.is_demo = 0 ORDER BY p.id",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Team {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                organization_id: r.try_get("organization_id")?,
                organization_name: r.try_get("organization_name")?,
            })
        })
        .collect()
}

fn project_ref(row: &sqlx::any::AnyRow) -> Result<ProjectRef, sqlx::Error> {
    Ok(ProjectRef { id: row.try_get("id")?, organization_id: row.try_get("organization_id")? })
}

/// The earlier resolution of this request id, if still live: `(email_normalized, resolution)`.
pub async fn find_account_request(
    conn: &mut AnyConnection,
    orchestrator: &str,
    request_id: &str,
    now: i64,
) -> Result<Option<(String, Resolution)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT email_normalized, user_id, organization_id, project_id FROM account_requests \
         WHERE orchestrator = $1 AND request_id = $2 AND expires_at > $3",
    )
    .bind(orchestrator)
    .bind(request_id)
    .bind(now)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok((
            r.try_get("email_normalized")?,
            Resolution {
                user_id: r.try_get("user_id")?,
                project: ProjectRef {
                    id: r.try_get("project_id")?,
                    organization_id: r.try_get("organization_id")?,
                },
            },
        ))
    })
    .transpose()
}

/// Records (or, once expired, replaces) the resolution of a request id.
pub async fn record_account_request(
    conn: &mut AnyConnection,
    orchestrator: &str,
    request_id: &str,
    email_normalized: &str,
    resolution: &Resolution,
    now: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO account_requests (orchestrator, request_id, email_normalized, user_id, organization_id, project_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (orchestrator, request_id) DO UPDATE SET email_normalized = $3, user_id = $4, \
         organization_id = $5, project_id = $6, created_at = $7, expires_at = $8",
    )
    .bind(orchestrator)
    .bind(request_id)
    .bind(email_normalized)
    .bind(&resolution.user_id)
    .bind(&resolution.project.organization_id)
    .bind(resolution.project.id)
    .bind(now)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

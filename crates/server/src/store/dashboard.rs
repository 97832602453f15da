//! SQL for one-time dashboard links, browser sessions, and what the dashboard pages show.

use super::{Conn, Query, StoreError, resources::PersonalKeyInfo};

pub fn insert_deep_link(
    conn: &mut dyn Conn,
    token_hash: &str,
    user_id: &str,
    organization_id: &str,
    project_id: i64,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO deep_links (token_hash, user_id, organization_id, project_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        &[token_hash.into(), user_id.into(), organization_id.into(), project_id.into(), now.into(), expires_at.into()],
    )?;
    Ok(())
}

/// What a used link was for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedLink {
    pub user_id: String,
    pub organization_id: String,
    pub project_id: i64,
}

/// Uses a live link, atomically; `None` when unknown, used or expired.
pub fn consume_deep_link(
    conn: &mut dyn Conn,
    token_hash: &str,
    now: i64,
) -> Result<Option<UsedLink>, StoreError> {
    conn.query_opt(
        "UPDATE deep_links SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 \
         RETURNING user_id, organization_id, project_id",
        &[token_hash.into(), now.into()],
    )?
    .map(|r| Ok(UsedLink { user_id: r.text(0)?, organization_id: r.text(1)?, project_id: r.int(2)? }))
    .transpose()
}

pub fn insert_session(
    conn: &mut dyn Conn,
    id_hash: &str,
    user_id: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        &[id_hash.into(), user_id.into(), now.into(), expires_at.into()],
    )?;
    Ok(())
}

/// The user of a live session.
pub fn session_user(
    conn: &mut dyn Query,
    id_hash: &str,
    now: i64,
) -> Result<Option<String>, StoreError> {
    conn.query_opt(
        "SELECT s.user_id FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.id_hash = $1 AND s.expires_at > $2 AND u.deleted_at IS NULL",
        &[id_hash.into(), now.into()],
    )?
    .map(|r| r.text(0))
    .transpose()
}

pub fn delete_session(conn: &mut dyn Conn, id_hash: &str) -> Result<(), StoreError> {
    conn.execute("DELETE FROM sessions WHERE id_hash = $1", &[id_hash.into()])?;
    Ok(())
}

/// A project as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectSummary {
    pub id: i64,
    pub name: String,
    pub organization_name: String,
    pub service_id: Option<String>,
    pub status: Option<String>,
}

/// Every project of every organization of the user, by id.
pub fn projects_of_user(
    conn: &mut dyn Query,
    user_id: &str,
) -> Result<Vec<ProjectSummary>, StoreError> {
    conn.query(
        "SELECT p.id, p.name, o.name, r.service_id, r.status FROM projects p \
         JOIN organizations o ON o.id = p.organization_id JOIN memberships m ON m.organization_id = o.id \
         LEFT JOIN resources r ON r.project_id = p.id WHERE m.user_id = $1 ORDER BY p.id",
        &[user_id.into()],
    )?
    .iter()
    .map(|r| {
        Ok(ProjectSummary {
            id: r.int(0)?,
            name: r.text(1)?,
            organization_name: r.text(2)?,
            service_id: r.opt_text(3)?,
            status: r.opt_text(4)?,
        })
    })
    .collect()
}

/// One project of the user's, with what its page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectPage {
    pub summary: ProjectSummary,
    pub plan: Option<String>,
    pub api_key: String,
    pub personal_keys: Vec<PersonalKeyInfo>,
}

pub fn project_page(
    conn: &mut dyn Query,
    user_id: &str,
    project_id: i64,
) -> Result<Option<ProjectPage>, StoreError> {
    let Some(row) = conn.query_opt(
        "SELECT p.id, p.name, o.name, r.service_id, r.status, b.plan, p.api_key FROM projects p \
         JOIN organizations o ON o.id = p.organization_id JOIN memberships m ON m.organization_id = o.id \
         LEFT JOIN resources r ON r.project_id = p.id LEFT JOIN billing b ON b.organization_id = o.id \
         WHERE m.user_id = $1 AND p.id = $2",
        &[user_id.into(), project_id.into()],
    )?
    else {
        return Ok(None);
    };
    let summary = ProjectSummary {
        id: row.int(0)?,
        name: row.text(1)?,
        organization_name: row.text(2)?,
        service_id: row.opt_text(3)?,
        status: row.opt_text(4)?,
    };
    Ok(Some(ProjectPage {
        summary,
        plan: row.opt_text(5)?,
        api_key: row.text(6)?,
        personal_keys: super::resources::personal_keys(conn, project_id)?,
    }))
}

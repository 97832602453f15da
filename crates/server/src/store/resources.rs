//! SQL for resources, their keys and the organization's billing state.

use super::{Conn, Query, Row, StoreError};

/// A provisioned resource (for the analytics backend: a project).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRow {
    pub project_id: i64,
    pub organization_id: String,
    pub service_id: String,
    pub removed: bool,
    /// The project's public key (built-in; empty in connector mode).
    pub api_key: String,
    /// Connector mode: the non-secret access configuration the SaaS answered, as JSON.
    pub public_access: Option<String>,
    /// How many operations were recorded on the resource (see the `connector` module).
    pub generation: i64,
}

const RESOURCE_COLUMNS: &str = "r.project_id, r.organization_id, r.service_id, r.status, \
     COALESCE(p.api_key, ''), r.public_access, r.generation \
     FROM resources r LEFT JOIN projects p ON p.id = r.project_id";

impl ResourceRow {
    fn from_row(row: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            project_id: row.int(0)?,
            organization_id: row.text(1)?,
            service_id: row.text(2)?,
            removed: row.text(3)? == "removed",
            api_key: row.text(4)?,
            public_access: row.opt_text(5)?,
            generation: row.int(6)?,
        })
    }
}

pub fn find_resource(
    conn: &mut dyn Query,
    project_id: i64,
) -> Result<Option<ResourceRow>, StoreError> {
    let sql = format!("SELECT {RESOURCE_COLUMNS} WHERE r.project_id = $1");
    conn.query_opt(&sql, &[project_id.into()])?.map(|r| ResourceRow::from_row(&r)).transpose()
}

/// The resource an orchestrator project id names in an organization (the idempotency key).
pub fn find_by_orchestrator_project(
    conn: &mut dyn Query,
    organization_id: &str,
    orchestrator: &str,
    orchestrator_project_id: &str,
) -> Result<Option<ResourceRow>, StoreError> {
    let sql = format!(
        "SELECT {RESOURCE_COLUMNS} WHERE r.organization_id = $1 AND r.orchestrator = $2 AND r.orchestrator_project_id = $3"
    );
    conn.query_opt(
        &sql,
        &[organization_id.into(), orchestrator.into(), orchestrator_project_id.into()],
    )?
    .map(|r| ResourceRow::from_row(&r))
    .transpose()
}

/// What a create records about the resource.
pub struct NewResource<'a> {
    pub project_id: i64,
    pub organization_id: &'a str,
    pub service_id: &'a str,
    pub orchestrator: &'a str,
    pub orchestrator_project_id: Option<&'a str>,
    pub orchestrator_resource_id: Option<&'a str>,
    pub environment: Option<&'a str>,
    pub configuration: Option<&'a str>,
}

/// Inserts an active resource and returns it as `find_resource` would.
pub fn insert_resource(
    conn: &mut dyn Conn,
    r: &NewResource<'_>,
    now: i64,
) -> Result<ResourceRow, StoreError> {
    let row = conn.query_one(
        "INSERT INTO resources (project_id, organization_id, service_id, orchestrator, orchestrator_project_id, \
         orchestrator_resource_id, environment, configuration, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'active', $9, $9) \
         RETURNING project_id, organization_id, service_id, status, \
         COALESCE((SELECT api_key FROM projects WHERE id = $1), ''), public_access, generation",
        &[
            r.project_id.into(),
            r.organization_id.into(),
            r.service_id.into(),
            r.orchestrator.into(),
            r.orchestrator_project_id.into(),
            r.orchestrator_resource_id.into(),
            r.environment.into(),
            r.configuration.into(),
            now.into(),
        ],
    )?;
    ResourceRow::from_row(&row)
}

/// Records what the SaaS answered for a resource (connector mode): active again, its non-secret
/// access configuration, its service, and one more operation counted.
pub fn record_saas_outcome(
    conn: &mut dyn Conn,
    project_id: i64,
    service_id: &str,
    public_access: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE resources SET status = 'active', removed_at = NULL, service_id = $2, \
         public_access = COALESCE($3, public_access), generation = generation + 1, updated_at = $4 \
         WHERE project_id = $1",
        &[project_id.into(), service_id.into(), public_access.into(), now.into()],
    )?;
    Ok(())
}

/// Counts one more operation on a resource (connector mode), so the next call gets a new id.
pub fn bump_generation(conn: &mut dyn Conn, project_id: i64, now: i64) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE resources SET generation = generation + 1, updated_at = $2 WHERE project_id = $1",
        &[project_id.into(), now.into()],
    )?;
    Ok(())
}

/// Marks a removed resource active again.
pub fn reactivate(conn: &mut dyn Conn, project_id: i64, now: i64) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE resources SET status = 'active', removed_at = NULL, updated_at = $2 WHERE project_id = $1",
        &[project_id.into(), now.into()],
    )?;
    Ok(())
}

/// Marks a resource removed; `false` when it already was.
pub fn mark_removed(conn: &mut dyn Conn, project_id: i64, now: i64) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE resources SET status = 'removed', removed_at = $2, updated_at = $2 WHERE project_id = $1 AND status = 'active'",
        &[project_id.into(), now.into()],
    )? == 1)
}

pub fn set_service(
    conn: &mut dyn Conn,
    project_id: i64,
    service_id: &str,
    configuration: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE resources SET service_id = $2, configuration = COALESCE($3, configuration), updated_at = $4 WHERE project_id = $1",
        &[project_id.into(), service_id.into(), configuration.into(), now.into()],
    )?;
    Ok(())
}

/// Replaces a project's public key, remembering the old one as retired. A compare-and-set: if a
/// concurrent rotation replaced `old_key` first, the transaction is attempted again from there.
pub fn replace_project_key(
    conn: &mut dyn Conn,
    project_id: i64,
    old_key: &str,
    new_key: &str,
    now: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO retired_project_keys (api_key, project_id, retired_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        &[old_key.into(), project_id.into(), now.into()],
    )?;
    let replaced = conn.execute(
        "UPDATE projects SET api_key = $2 WHERE id = $1 AND api_key = $3",
        &[project_id.into(), new_key.into(), old_key.into()],
    )?;
    if replaced == 0 {
        return Err(conn.conflict("the project key was replaced concurrently"));
    }
    Ok(())
}

pub fn insert_personal_key(
    conn: &mut dyn Conn,
    project_id: i64,
    label: &str,
    prefix: &str,
    key_hash: &str,
    source: &str,
    now: i64,
) -> Result<(), StoreError> {
    conn.defer(
        "INSERT INTO personal_keys (project_id, label, prefix, key_hash, source, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        &[project_id.into(), label.into(), prefix.into(), key_hash.into(), source.into(), now.into()],
    )
}

/// Revokes a project's live keys; reads only those (index `personal_keys_project`), however many
/// the project had before.
pub const REVOKE_PERSONAL_KEYS: &str = "UPDATE personal_keys SET revoked_at = $2 WHERE project_id = $1 AND revoked_at IS NULL AND source = COALESCE($3, source)";

/// Revokes a project's live personal keys, or only those from `source` when given.
pub fn revoke_personal_keys(
    conn: &mut dyn Conn,
    project_id: i64,
    source: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    conn.defer(REVOKE_PERSONAL_KEYS, &[project_id.into(), now.into(), source.into()])
}

/// A personal key as the dashboard lists it (never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalKeyInfo {
    pub label: String,
    pub prefix: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

pub fn personal_keys(
    conn: &mut dyn Query,
    project_id: i64,
) -> Result<Vec<PersonalKeyInfo>, StoreError> {
    conn.query(
        "SELECT label, prefix, created_at, revoked_at FROM personal_keys WHERE project_id = $1 ORDER BY id DESC",
        &[project_id.into()],
    )?
    .iter()
    .map(|r| Ok(PersonalKeyInfo { label: r.text(0)?, prefix: r.text(1)?, created_at: r.int(2)?, revoked_at: r.opt_int(3)? }))
    .collect()
}

/// What a key reaches, for introspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    pub project_id: i64,
    pub organization_id: String,
    pub active: bool,
}

/// A personal key by hash: live when neither it is revoked nor its resource removed.
pub fn personal_key_owner(
    conn: &mut dyn Query,
    key_hash: &str,
) -> Result<Option<KeyOwner>, StoreError> {
    conn.query_opt(
        "SELECT k.project_id, p.organization_id, k.revoked_at IS NULL AND COALESCE(r.status, 'active') = 'active' \
         FROM personal_keys k JOIN projects p ON p.id = k.project_id LEFT JOIN resources r ON r.project_id = p.id \
         WHERE k.key_hash = $1",
        &[key_hash.into()],
    )?
    .map(|r| Ok(KeyOwner { project_id: r.int(0)?, organization_id: r.text(1)?, active: r.int(2)? == 1 }))
    .transpose()
}

/// A current project key: live unless its resource is removed.
pub fn project_key_owner(
    conn: &mut dyn Query,
    api_key: &str,
) -> Result<Option<KeyOwner>, StoreError> {
    conn.query_opt(
        "SELECT p.id, p.organization_id, COALESCE(r.status, 'active') = 'active' \
         FROM projects p LEFT JOIN resources r ON r.project_id = p.id WHERE p.api_key = $1",
        &[api_key.into()],
    )?
    .map(|r| {
        Ok(KeyOwner { project_id: r.int(0)?, organization_id: r.text(1)?, active: r.int(2)? == 1 })
    })
    .transpose()
}

/// The organization's current plan (`None`: never set, i.e. the catalog's free default).
pub fn plan(conn: &mut dyn Conn, organization_id: &str) -> Result<Option<String>, StoreError> {
    conn.query_opt(
        "SELECT plan FROM billing WHERE organization_id = $1",
        &[organization_id.into()],
    )?
    .map(|r| r.text(0))
    .transpose()
}

/// Records an activated payment (and the plan it put the organization on).
pub fn record_billing(
    conn: &mut dyn Conn,
    organization_id: &str,
    plan: &str,
    payment_token_hash: Option<&str>,
    backend_reference: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO billing (organization_id, plan, payment_token_hash, backend_reference, updated_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (organization_id) DO UPDATE SET plan = $2, payment_token_hash = COALESCE($3, billing.payment_token_hash), \
         backend_reference = COALESCE($4, billing.backend_reference), updated_at = $5",
        &[organization_id.into(), plan.into(), payment_token_hash.into(), backend_reference.into(), now.into()],
    )?;
    Ok(())
}

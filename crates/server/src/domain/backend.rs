//! Where a resource lives in built-in mode. provisio's own bookkeeping (the `resources` table,
//! `project_id` idempotency, token scope, billing) is the same for every backend; what backs a
//! resource and what its credentials are is the backend's. The built-in `analytics` backend makes a
//! resource a project of provisio's database with a public project key and personal secret keys.
//!
//! Every method runs inside the resource operation's one write transaction, so a backend may only
//! touch the database. The SaaS's systems are therefore not a backend: connector mode
//! (`resources::saas`) calls the SaaS between transactions — intent, call, outcome.

use std::collections::BTreeMap;

use super::resources::ResourceError;
use crate::{
    crypto::{ordered_token, token_hash},
    store::{
        Conn, accounts as accounts_sql,
        resources::{self as sql, ResourceRow},
    },
};

/// What a new resource is made from.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// The token's primary project (a create without `project_id`).
    Primary(i64),
    /// Something new in the organization, with this display name.
    New { name: &'a str },
}

/// Access configuration: flat string values, as the protocol answers them.
pub type Access = BTreeMap<String, String>;

pub trait ResourceBackend: Send + Sync {
    /// Creates what backs a new resource; returns the resource id.
    fn create(
        &self,
        conn: &mut dyn Conn,
        organization_id: &str,
        target: Target<'_>,
        now: i64,
    ) -> Result<i64, ResourceError>;
    /// The non-secret part of the access configuration, answered on every read.
    fn public_access(&self, resource: &ResourceRow, host: &str) -> Access;
    /// Secret credentials for the orchestrator after a create; those provisioning issued before die.
    fn issue(
        &self,
        conn: &mut dyn Conn,
        resource: &ResourceRow,
        label: &str,
        now: i64,
    ) -> Result<Access, ResourceError>;
    /// Replaces every credential of the resource; all previous ones die at once.
    fn rotate(
        &self,
        conn: &mut dyn Conn,
        resource: &ResourceRow,
        now: i64,
    ) -> Result<(), ResourceError>;
    /// Makes a removed resource usable again (with credentials unlike the old ones).
    fn reactivate(
        &self,
        conn: &mut dyn Conn,
        resource: &ResourceRow,
        now: i64,
    ) -> Result<(), ResourceError>;
    /// Revokes every credential of a removed resource; its data stays.
    fn revoke(
        &self,
        conn: &mut dyn Conn,
        resource: &ResourceRow,
        now: i64,
    ) -> Result<(), ResourceError>;
}

/// The personal key prefix; keys are `pvpk_<43 base64url>`.
pub const PERSONAL_KEY_PREFIX: &str = "pvpk";
const PROVISIONING: &str = "provisioning";

/// The built-in backend: a resource is a project.
#[derive(Debug, Default, Clone, Copy)]
pub struct Analytics;

impl ResourceBackend for Analytics {
    fn create(
        &self,
        conn: &mut dyn Conn,
        organization_id: &str,
        target: Target<'_>,
        now: i64,
    ) -> Result<i64, ResourceError> {
        match target {
            Target::Primary(project_id) => Ok(project_id),
            Target::New { name } => Ok(accounts_sql::insert_project(
                conn,
                organization_id,
                name,
                false,
                &ordered_token("pub")?,
                now,
            )?),
        }
    }

    fn public_access(&self, resource: &ResourceRow, host: &str) -> Access {
        BTreeMap::from([
            ("api_key".to_string(), resource.api_key.clone()),
            ("host".to_string(), host.to_string()),
        ])
    }

    fn issue(
        &self,
        conn: &mut dyn Conn,
        resource: &ResourceRow,
        label: &str,
        now: i64,
    ) -> Result<Access, ResourceError> {
        sql::revoke_personal_keys(conn, resource.project_id, Some(PROVISIONING), now)?;
        let key = ordered_token(PERSONAL_KEY_PREFIX)?;
        // Shown in the dashboard: the prefix, when the key was made (nearly unique on its own)
        // and 4 of its random characters.
        let prefix: String = key.chars().take(PERSONAL_KEY_PREFIX.len() + 1 + 12 + 4).collect();
        let label = format!("Provisioned by {label}");
        sql::insert_personal_key(
            conn,
            resource.project_id,
            &label,
            &prefix,
            &token_hash(&key),
            PROVISIONING,
            now,
        )?;
        Ok(BTreeMap::from([("personal_api_key".to_string(), key)]))
    }

    fn rotate(
        &self,
        conn: &mut dyn Conn,
        resource: &ResourceRow,
        now: i64,
    ) -> Result<(), ResourceError> {
        new_project_key(conn, resource, now)?;
        sql::revoke_personal_keys(conn, resource.project_id, None, now)?;
        Ok(())
    }

    fn reactivate(
        &self,
        conn: &mut dyn Conn,
        resource: &ResourceRow,
        now: i64,
    ) -> Result<(), ResourceError> {
        new_project_key(conn, resource, now)
    }

    fn revoke(
        &self,
        conn: &mut dyn Conn,
        resource: &ResourceRow,
        now: i64,
    ) -> Result<(), ResourceError> {
        sql::revoke_personal_keys(conn, resource.project_id, None, now)?;
        Ok(())
    }
}

/// Replaces the project's public key; the old one is retired (introspection says inactive).
fn new_project_key(
    conn: &mut dyn Conn,
    resource: &ResourceRow,
    now: i64,
) -> Result<(), ResourceError> {
    sql::replace_project_key(
        conn,
        resource.project_id,
        &resource.api_key,
        &ordered_token("pub")?,
        now,
    )?;
    Ok(())
}

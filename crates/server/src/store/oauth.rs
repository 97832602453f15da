//! SQL for authorization codes, token families, access and refresh tokens, and consent requests.
//! Every single-use value is consumed by one conditional `UPDATE`, never find-then-write.

use super::{Conn, Param, Query, Row, StoreError};

/// What a code, a family and a pending consent are bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub user_id: String,
    pub organization_id: String,
    pub project_id: i64,
    pub orchestrator: String,
    pub orchestrator_account: String,
    pub scopes: String,
}

impl Grant {
    /// The grant's columns as parameters, in the order of [`Grant::from_row`].
    fn params(&self) -> [Param<'_>; 6] {
        [
            (&self.user_id).into(),
            (&self.organization_id).into(),
            self.project_id.into(),
            (&self.orchestrator).into(),
            (&self.orchestrator_account).into(),
            (&self.scopes).into(),
        ]
    }

    /// Reads `user_id, organization_id, project_id, orchestrator, orchestrator_account, scopes`
    /// starting at column `offset`.
    fn from_row(row: &Row, offset: usize) -> Result<Self, StoreError> {
        Ok(Self {
            user_id: row.text(offset)?,
            organization_id: row.text(offset + 1)?,
            project_id: row.int(offset + 2)?,
            orchestrator: row.text(offset + 3)?,
            orchestrator_account: row.text(offset + 4)?,
            scopes: row.text(offset + 5)?,
        })
    }
}

pub fn insert_code(
    conn: &mut dyn Conn,
    code_hash: &str,
    grant: &Grant,
    code_challenge: Option<&str>,
    available_teams: Option<&str>,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    conn.defer(
        "INSERT INTO authorization_codes (code_hash, user_id, organization_id, project_id, orchestrator, \
         orchestrator_account, scopes, code_challenge, created_at, expires_at, available_teams) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            &[code_hash.into()],
            &grant.params()[..],
            &[code_challenge.into(), now.into(), expires_at.into(), available_teams.into()],
        ]
        .concat(),
    )
}

/// A code as stored.
#[derive(Debug, Clone)]
pub struct StoredCode {
    pub grant: Grant,
    pub code_challenge: Option<String>,
    pub expires_at: i64,
    pub consumed: bool,
    /// Its user is not deleted (in connector mode provisio holds no users: the SaaS's revocation
    /// kills the codes instead).
    pub user_live: bool,
    /// Connector mode: the user's `available_teams` when the code was issued (JSON).
    pub available_teams: Option<String>,
}

/// The columns `StoredCode::from_row` reads, for a statement on `authorization_codes`.
const CODE_COLUMNS: &str = "user_id, organization_id, project_id, orchestrator, orchestrator_account, scopes, \
     code_challenge, expires_at, consumed_at, \
     NOT EXISTS (SELECT 1 FROM users u WHERE u.id = authorization_codes.user_id AND u.deleted_at IS NOT NULL), \
     available_teams";

impl StoredCode {
    fn from_row(r: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            grant: Grant::from_row(r, 0)?,
            code_challenge: r.opt_text(6)?,
            expires_at: r.int(7)?,
            consumed: r.opt_int(8)?.is_some(),
            user_live: r.int(9)? != 0,
            available_teams: r.opt_text(10)?,
        })
    }
}

/// A code as stored, looked up without consuming it.
pub fn find_code(conn: &mut dyn Conn, code_hash: &str) -> Result<Option<StoredCode>, StoreError> {
    conn.query_opt(
        &format!("SELECT {CODE_COLUMNS} FROM authorization_codes WHERE code_hash = $1"),
        &[code_hash.into()],
    )?
    .map(|r| StoredCode::from_row(&r))
    .transpose()
}

/// Consumes the code if it is live (neither consumed nor expired) and returns it as it was;
/// `None` says it is unknown, consumed or expired (`find_code` tells which). Rolling back the
/// transaction gives the code back.
pub fn claim_code(
    conn: &mut dyn Conn,
    code_hash: &str,
    now: i64,
) -> Result<Option<StoredCode>, StoreError> {
    conn.query_opt(
        &format!(
            "UPDATE authorization_codes SET consumed_at = $2 \
             WHERE code_hash = $1 AND consumed_at IS NULL AND expires_at > $2 RETURNING {CODE_COLUMNS}"
        ),
        &[code_hash.into(), now.into()],
    )?
    .map(|r| Ok(StoredCode { consumed: false, ..StoredCode::from_row(&r)? }))
    .transpose()
}

pub fn insert_family(
    conn: &mut dyn Conn,
    family_id: &str,
    grant: &Grant,
    code_hash: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    conn.defer(
        "INSERT INTO token_families (id, user_id, organization_id, project_id, orchestrator, orchestrator_account, \
         scopes, code_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[&[family_id.into()], &grant.params()[..], &[code_hash.into(), now.into()]].concat(),
    )?;
    if let Some(code_hash) = code_hash {
        // The code's row was just claimed: naming the family there writes no other page.
        conn.defer(
            "UPDATE authorization_codes SET family_id = $2 WHERE code_hash = $1",
            &[code_hash.into(), family_id.into()],
        )?;
    }
    add_family_project(conn, family_id, grant.project_id)
}

/// Widens a family's reach to one more project.
pub fn add_family_project(
    conn: &mut dyn Conn,
    family_id: &str,
    project_id: i64,
) -> Result<(), StoreError> {
    conn.defer(
        "INSERT INTO token_family_projects (family_id, project_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &[family_id.into(), project_id.into()],
    )
}

pub fn insert_access_token(
    conn: &mut dyn Conn,
    token_hash: &str,
    family_id: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    conn.defer(
        "INSERT INTO access_tokens (token_hash, family_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        &[token_hash.into(), family_id.into(), now.into(), expires_at.into()],
    )
}

pub fn insert_refresh_token(
    conn: &mut dyn Conn,
    token_hash: &str,
    family_id: &str,
    now: i64,
    expires_at: Option<i64>,
) -> Result<(), StoreError> {
    conn.defer(
        "INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        &[token_hash.into(), family_id.into(), now.into(), expires_at.into()],
    )
}

/// Marks a live refresh token rotated and returns its family; `None` when it is not live.
pub fn rotate_refresh_token(
    conn: &mut dyn Conn,
    token_hash: &str,
    now: i64,
) -> Result<Option<String>, StoreError> {
    conn.query_opt(
        "UPDATE refresh_tokens SET rotated_at = $2 WHERE token_hash = $1 AND rotated_at IS NULL \
         AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2) RETURNING family_id",
        &[token_hash.into(), now.into()],
    )?
    .map(|r| r.text(0))
    .transpose()
}

/// The family of a refresh token that was already rotated (a reuse), if it is one.
pub fn rotated_refresh_family(
    conn: &mut dyn Conn,
    token_hash: &str,
) -> Result<Option<String>, StoreError> {
    conn.query_opt(
        "SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND rotated_at IS NOT NULL",
        &[token_hash.into()],
    )?
    .map(|r| r.text(0))
    .transpose()
}

/// The families issued from a code: the one its row names. A code redeemed before codes named
/// their family (by a version older than migration `code_family`, which named them for the codes
/// it found; afterwards only by an older instance still running beside a newer one) is looked up
/// the old way, among the families that remember it: a scan, since that index is gone, for a
/// code that is deleted a week after it expired.
pub fn families_of_code(conn: &mut dyn Conn, code_hash: &str) -> Result<Vec<String>, StoreError> {
    let named = conn.query_opt(
        "SELECT family_id FROM authorization_codes WHERE code_hash = $1 AND family_id IS NOT NULL",
        &[code_hash.into()],
    )?;
    if let Some(row) = named {
        return Ok(vec![row.text(0)?]);
    }
    conn.query("SELECT id FROM token_families WHERE code_hash = $1", &[code_hash.into()])?
        .iter()
        .map(|r| r.text(0))
        .collect()
}

/// A live family's grant (not revoked, user not deleted).
pub fn live_family(conn: &mut dyn Conn, family_id: &str) -> Result<Option<Grant>, StoreError> {
    conn.query_opt(
        "SELECT f.user_id, f.organization_id, f.project_id, f.orchestrator, f.orchestrator_account, f.scopes \
         FROM token_families f LEFT JOIN users u ON u.id = f.user_id \
         WHERE f.id = $1 AND f.revoked_at IS NULL AND u.deleted_at IS NULL",
        &[family_id.into()],
    )?
    .map(|r| Grant::from_row(&r, 0))
    .transpose()
}

/// Revokes a family and every token in it.
pub fn revoke_family(
    conn: &mut dyn Conn,
    family_id: &str,
    reason: &str,
    now: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE token_families SET revoked_at = $2, revoked_reason = $3 WHERE id = $1 AND revoked_at IS NULL",
        &[family_id.into(), now.into(), reason.into()],
    )?;
    revoke_access_tokens(conn, family_id, now)?;
    conn.execute(
        "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
        &[family_id.into(), now.into()],
    )?;
    Ok(())
}

/// Kills a family's live access tokens (after a refresh, the old one dies at once).
pub fn revoke_access_tokens(
    conn: &mut dyn Conn,
    family_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE access_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
        &[family_id.into(), now.into()],
    )?;
    Ok(())
}

/// How long a rotated refresh token is kept, so that presenting it again is recognised as a reuse
/// (and revokes its family), and a replaced access token is kept at all. A stolen token that the
/// thief rotated first shows when the rightful client next refreshes — within an access token's
/// life, hours — so a week is far beyond any real detection; past it a rotated token is merely
/// unknown (`invalid_grant`, nothing revoked).
pub const ROTATED_KEPT_SECS: i64 = 7 * 24 * 3600;

/// Deletes the family's refresh tokens rotated, and access tokens replaced, more than
/// [`ROTATED_KEPT_SECS`] before `now`. Run at each refresh, through the family's indexes: a family
/// refreshed every hour for years keeps a week of rows, and its refreshes do not read the rest.
pub fn prune_family(conn: &mut dyn Conn, family_id: &str, now: i64) -> Result<(), StoreError> {
    let before = now - ROTATED_KEPT_SECS;
    conn.execute(
        "DELETE FROM refresh_tokens WHERE family_id = $1 AND rotated_at <= $2",
        &[family_id.into(), before.into()],
    )?;
    conn.execute(
        "DELETE FROM access_tokens WHERE family_id = $1 AND revoked_at <= $2",
        &[family_id.into(), before.into()],
    )?;
    Ok(())
}

/// What a live access token reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerRow {
    pub family_id: String,
    pub grant: Grant,
    pub expires_at: i64,
    /// Every project the family reaches, ascending.
    pub project_ids: Vec<i64>,
    /// The organization's plan (`None`: never set, i.e. the catalog's free default).
    pub plan: Option<String>,
}

/// The access token's family, with the projects it reaches and its organization's plan, if the
/// token and its family are live and the user exists. One statement: it runs before every
/// resource call, and a create or an update would otherwise read the plan on its own.
pub fn find_bearer(
    conn: &mut dyn Query,
    token_hash: &str,
) -> Result<Option<BearerRow>, StoreError> {
    let rows = conn.query(
        "SELECT f.id, f.user_id, f.organization_id, f.project_id, f.orchestrator, f.orchestrator_account, \
         f.scopes, a.expires_at, p.project_id, b.plan FROM access_tokens a \
         JOIN token_families f ON f.id = a.family_id LEFT JOIN users u ON u.id = f.user_id \
         LEFT JOIN token_family_projects p ON p.family_id = f.id \
         LEFT JOIN billing b ON b.organization_id = f.organization_id \
         WHERE a.token_hash = $1 AND a.revoked_at IS NULL AND f.revoked_at IS NULL AND u.deleted_at IS NULL \
         ORDER BY p.project_id",
        &[token_hash.into()],
    )?;
    let Some(first) = rows.first() else { return Ok(None) };
    Ok(Some(BearerRow {
        family_id: first.text(0)?,
        grant: Grant::from_row(first, 1)?,
        expires_at: first.int(7)?,
        project_ids: rows
            .iter()
            .filter_map(|r| r.opt_int(8).transpose())
            .collect::<Result<_, _>>()?,
        plan: first.opt_text(9)?,
    }))
}

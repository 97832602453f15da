//! SQL for authorization codes, token families, access and refresh tokens, and consent requests.
//! Every single-use value is consumed by one conditional `UPDATE … RETURNING`, never find-then-write.

use sqlx::{AnyConnection, Row, any::AnyRow};

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
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            user_id: row.try_get("user_id")?,
            organization_id: row.try_get("organization_id")?,
            project_id: row.try_get("project_id")?,
            orchestrator: row.try_get("orchestrator")?,
            orchestrator_account: row.try_get("orchestrator_account")?,
            scopes: row.try_get("scopes")?,
        })
    }
}

pub async fn insert_code(
    conn: &mut AnyConnection,
    code_hash: &str,
    grant: &Grant,
    code_challenge: Option<&str>,
    now: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO authorization_codes (code_hash, user_id, organization_id, project_id, orchestrator, \
         orchestrator_account, scopes, code_challenge, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(code_hash)
    .bind(&grant.user_id)
    .bind(&grant.organization_id)
    .bind(grant.project_id)
    .bind(&grant.orchestrator)
    .bind(&grant.orchestrator_account)
    .bind(&grant.scopes)
    .bind(code_challenge)
    .bind(now)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A code as stored, looked up without consuming it.
#[derive(Debug, Clone)]
pub struct StoredCode {
    pub grant: Grant,
    pub code_challenge: Option<String>,
    pub expires_at: i64,
    pub consumed: bool,
}

pub async fn find_code(
    conn: &mut AnyConnection,
    code_hash: &str,
) -> Result<Option<StoredCode>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT user_id, organization_id, project_id, orchestrator, orchestrator_account, scopes, \
         code_challenge, expires_at, consumed_at FROM authorization_codes WHERE code_hash = $1",
    )
    .bind(code_hash)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(StoredCode {
            grant: Grant::from_row(&r)?,
            code_challenge: r.try_get("code_challenge")?,
            expires_at: r.try_get("expires_at")?,
            consumed: r.try_get::<Option<i64>, _>("consumed_at")?.is_some(),
        })
    })
    .transpose()
}

/// Consumes a live code; `false` when it was already consumed or has expired.
pub async fn consume_code(
    conn: &mut AnyConnection,
    code_hash: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE authorization_codes SET consumed_at = $2 WHERE code_hash = $1 AND consumed_at IS NULL AND expires_at > $2",
    )
    .bind(code_hash)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn insert_family(
    conn: &mut AnyConnection,
    family_id: &str,
    grant: &Grant,
    code_hash: Option<&str>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO token_families (id, user_id, organization_id, project_id, orchestrator, orchestrator_account, \
         scopes, code_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(family_id)
    .bind(&grant.user_id)
    .bind(&grant.organization_id)
    .bind(grant.project_id)
    .bind(&grant.orchestrator)
    .bind(&grant.orchestrator_account)
    .bind(&grant.scopes)
    .bind(code_hash)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    add_family_project(conn, family_id, grant.project_id).await
}

/// Widens a family's reach to one more project.
pub async fn add_family_project(
    conn: &mut AnyConnection,
    family_id: &str,
    project_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO token_family_projects (family_id, project_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(family_id)
        .bind(project_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn insert_access_token(
    conn: &mut AnyConnection,
    token_hash: &str,
    family_id: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO access_tokens (token_hash, family_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(token_hash)
        .bind(family_id)
        .bind(now)
        .bind(expires_at)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn insert_refresh_token(
    conn: &mut AnyConnection,
    token_hash: &str,
    family_id: &str,
    now: i64,
    expires_at: Option<i64>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(token_hash)
        .bind(family_id)
        .bind(now)
        .bind(expires_at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks a live refresh token rotated and returns its family; `None` when it is not live.
pub async fn rotate_refresh_token(
    conn: &mut AnyConnection,
    token_hash: &str,
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE refresh_tokens SET rotated_at = $2 WHERE token_hash = $1 AND rotated_at IS NULL \
         AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2) RETURNING family_id",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(conn)
    .await
}

/// The family of a refresh token that was already rotated (a reuse), if it is one.
pub async fn rotated_refresh_family(
    conn: &mut AnyConnection,
    token_hash: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND rotated_at IS NOT NULL",
    )
    .bind(token_hash)
    .fetch_optional(conn)
    .await
}

/// The families issued from a code.
pub async fn families_of_code(
    conn: &mut AnyConnection,
    code_hash: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM token_families WHERE code_hash = $1")
        .bind(code_hash)
        .fetch_all(conn)
        .await
}

/// A live family's grant (not revoked, user not deleted).
pub async fn live_family(
    conn: &mut AnyConnection,
    family_id: &str,
) -> Result<Option<Grant>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT f.user_id, f.organization_id, f.project_id, f.orchestrator, f.orchestrator_account, f.scopes \
         FROM token_families f JOIN users u ON u.id = f.user_id \
         WHERE f.id = $1 AND f.revoked_at IS NULL AND u.deleted_at IS NULL",
    )
    .bind(family_id)
    .fetch_optional(conn)
    .await?;
    row.map(|r| Grant::from_row(&r)).transpose()
}

/// Revokes a family and every token in it.
pub async fn revoke_family(
    conn: &mut AnyConnection,
    family_id: &str,
    reason: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE token_families SET revoked_at = $2, revoked_reason = $3 WHERE id = $1 AND revoked_at IS NULL")
        .bind(family_id)
        .bind(now)
        .bind(reason)
        .execute(&mut *conn)
        .await?;
    revoke_access_tokens(conn, family_id, now).await?;
    sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// Kills a family's live access tokens (after a refresh, the old one dies at once).
pub async fn revoke_access_tokens(
    conn: &mut AnyConnection,
    family_id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE access_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family_id)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

/// What a live access token reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerRow {
    pub family_id: String,
    pub grant: Grant,
    pub expires_at: i64,
}

/// The access token's family if the token and its family are live and the user exists.
pub async fn find_bearer(
    conn: &mut AnyConnection,
    token_hash: &str,
) -> Result<Option<BearerRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT f.id AS family_id, f.user_id, f.organization_id, f.project_id, f.orchestrator, \
         f.orchestrator_account, f.scopes, a.expires_at FROM access_tokens a \
         JOIN token_families f ON f.id = a.family_id JOIN users u ON u.id = f.user_id \
         WHERE a.token_hash = $1 AND a.revoked_at IS NULL AND f.revoked_at IS NULL AND u.deleted_at IS NULL",
    )
    .bind(token_hash)
    .fetch_optional(conn)
    .await?;
    row.map(|r| {
        Ok(BearerRow {
            family_id: r.try_get("family_id")?,
            grant: Grant::from_row(&r)?,
            expires_at: r.try_get("expires_at")?,
        })
    })
    .transpose()
}

pub async fn family_projects(
    conn: &mut AnyConnection,
    family_id: &str,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT project_id FROM token_family_projects WHERE family_id = $1 ORDER BY project_id",
    )
    .bind(family_id)
    .fetch_all(conn)
    .await
}

/// A consent request waiting for the user in a browser.
pub struct PendingConsent<'a> {
    pub token_hash: &'a str,
    pub orchestrator: &'a str,
    pub orchestrator_account: &'a str,
    pub request_id: &'a str,
    pub user_id: &'a str,
    pub scopes: &'a str,
    pub code_challenge: Option<&'a str>,
    pub team_id: Option<i64>,
}

pub async fn insert_pending_consent(
    conn: &mut AnyConnection,
    consent: &PendingConsent<'_>,
    now: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO pending_consents (token_hash, orchestrator, orchestrator_account, request_id, user_id, scopes, \
         code_challenge, team_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(consent.token_hash)
    .bind(consent.orchestrator)
    .bind(consent.orchestrator_account)
    .bind(consent.request_id)
    .bind(consent.user_id)
    .bind(consent.scopes)
    .bind(consent.code_challenge)
    .bind(consent.team_id)
    .bind(now)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

//! SQL for the signing secrets kept in the database (sealed; see [`crate::signing_secrets`]).

use super::{Conn, Query, StoreError};

/// A row as stored: the secret still sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub id: i64,
    pub orchestrator: String,
    pub hint: String,
    pub label: Option<String>,
    pub nonce: String,
    pub secret_sealed: String,
    pub created_at: i64,
    pub retire_at: Option<i64>,
}

const COLUMNS: &str = "id, orchestrator, hint, label, nonce, secret_sealed, created_at, retire_at";

fn decode(r: &super::Row) -> Result<SealedSecret, StoreError> {
    Ok(SealedSecret {
        id: r.int(0)?,
        orchestrator: r.text(1)?,
        hint: r.text(2)?,
        label: r.opt_text(3)?,
        nonce: r.text(4)?,
        secret_sealed: r.text(5)?,
        created_at: r.int(6)?,
        retire_at: r.opt_int(7)?,
    })
}

/// Stores a sealed secret; its id.
#[allow(clippy::too_many_arguments)]
pub fn insert(
    conn: &mut dyn Conn,
    orchestrator: &str,
    hint: &str,
    label: Option<&str>,
    nonce: &str,
    secret_sealed: &str,
    now: i64,
) -> Result<i64, StoreError> {
    conn.query_one(
        "INSERT INTO signing_secrets (orchestrator, hint, label, nonce, secret_sealed, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        &[
            orchestrator.into(),
            hint.into(),
            label.into(),
            nonce.into(),
            secret_sealed.into(),
            now.into(),
        ],
    )?
    .int(0)
}

/// Every stored secret, retired ones included, oldest first; only `orchestrator`'s when given.
pub fn list(
    conn: &mut dyn Query,
    orchestrator: Option<&str>,
) -> Result<Vec<SealedSecret>, StoreError> {
    conn.query(
        &format!(
            "SELECT {COLUMNS} FROM signing_secrets WHERE orchestrator = COALESCE($1, orchestrator) ORDER BY id"
        ),
        &[orchestrator.into()],
    )?
    .iter()
    .map(decode)
    .collect()
}

/// The secrets still valid at `now` (not retired, or retiring later).
pub fn valid(conn: &mut dyn Query, now: i64) -> Result<Vec<SealedSecret>, StoreError> {
    conn.query(
        &format!(
            "SELECT {COLUMNS} FROM signing_secrets WHERE retire_at IS NULL OR retire_at > $1 ORDER BY id"
        ),
        &[now.into()],
    )?
    .iter()
    .map(decode)
    .collect()
}

/// One secret by id.
pub fn find(conn: &mut dyn Conn, id: i64) -> Result<Option<SealedSecret>, StoreError> {
    conn.query_opt(&format!("SELECT {COLUMNS} FROM signing_secrets WHERE id = $1"), &[id.into()])?
        .as_ref()
        .map(decode)
        .transpose()
}

/// Sets when a secret stops being valid, unless it already has (a retired secret stays retired);
/// whether a row changed.
pub fn retire(conn: &mut dyn Conn, id: i64, retire_at: i64, now: i64) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE signing_secrets SET retire_at = $2 WHERE id = $1 AND (retire_at IS NULL OR retire_at > $3)",
        &[id.into(), retire_at.into(), now.into()],
    )? == 1)
}

//! SQL for the consent leg: pending consents (keyed by the hash of the token in the consent URL),
//! the one-time sign-in links that prove their email, and the single-use closing of a consent. A
//! consent is open while it is neither completed, declined nor superseded, and not expired.

use super::{Conn, Param, Query, Row, StoreError};

/// A consent to record.
pub struct NewConsent<'a> {
    pub token_hash: &'a str,
    pub orchestrator: &'a str,
    pub orchestrator_account: &'a str,
    pub request_id: &'a str,
    /// The user, when already known (an existing built-in user).
    pub user_id: Option<&'a str>,
    pub scopes: &'a str,
    pub code_challenge: Option<&'a str>,
    pub team_id: Option<i64>,
    pub email: &'a str,
    pub email_normalized: &'a str,
    pub name: Option<&'a str>,
    pub organization_name: Option<&'a str>,
    pub state: Option<&'a str>,
    /// The request's checked `configuration`, as JSON.
    pub configuration: Option<&'a str>,
}

/// Records a consent; an open one for the same email and orchestrator is superseded by it.
pub fn insert(
    conn: &mut dyn Conn,
    c: &NewConsent<'_>,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE pending_consents SET superseded_at = $3 WHERE orchestrator = $1 AND email_normalized = $2 \
         AND completed_at IS NULL AND superseded_at IS NULL",
        &[c.orchestrator.into(), c.email_normalized.into(), now.into()],
    )?;
    let params: [Param<'_>; 16] = [
        c.token_hash.into(),
        c.orchestrator.into(),
        c.orchestrator_account.into(),
        c.request_id.into(),
        c.user_id.into(),
        c.scopes.into(),
        c.code_challenge.into(),
        c.team_id.into(),
        now.into(),
        expires_at.into(),
        c.email.into(),
        c.email_normalized.into(),
        c.name.into(),
        c.organization_name.into(),
        c.state.into(),
        c.configuration.into(),
    ];
    conn.defer(
        "INSERT INTO pending_consents (token_hash, orchestrator, orchestrator_account, request_id, user_id, \
         scopes, code_challenge, team_id, created_at, expires_at, email, email_normalized, name, \
         organization_name, state, configuration) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        &params,
    )
}

/// A consent as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRow {
    pub token_hash: String,
    pub orchestrator: String,
    pub orchestrator_account: String,
    pub request_id: String,
    pub scopes: String,
    pub code_challenge: Option<String>,
    pub email: String,
    pub email_normalized: String,
    pub name: Option<String>,
    pub organization_name: Option<String>,
    pub state: Option<String>,
    pub expires_at: i64,
    pub completed: bool,
    pub declined: bool,
    pub superseded: bool,
    pub proof_hash: Option<String>,
    /// The request's checked `configuration`, as JSON.
    pub configuration: Option<String>,
}

impl ConsentRow {
    fn from_row(r: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            token_hash: r.text(0)?,
            orchestrator: r.text(1)?,
            orchestrator_account: r.text(2)?,
            request_id: r.text(3)?,
            scopes: r.text(4)?,
            code_challenge: r.opt_text(5)?,
            email: r.text(6)?,
            email_normalized: r.text(7)?,
            name: r.opt_text(8)?,
            organization_name: r.opt_text(9)?,
            state: r.opt_text(10)?,
            expires_at: r.int(11)?,
            completed: r.opt_int(12)?.is_some(),
            declined: r.opt_int(13)?.is_some(),
            superseded: r.opt_int(14)?.is_some(),
            proof_hash: r.opt_text(15)?,
            configuration: r.opt_text(16)?,
        })
    }
}

pub fn find(conn: &mut dyn Query, token_hash: &str) -> Result<Option<ConsentRow>, StoreError> {
    conn.query_opt(
        "SELECT token_hash, orchestrator, orchestrator_account, request_id, scopes, code_challenge, email, \
         email_normalized, name, organization_name, state, expires_at, completed_at, declined_at, \
         superseded_at, proof_hash, configuration FROM pending_consents WHERE token_hash = $1",
        &[token_hash.into()],
    )?
    .map(|r| ConsentRow::from_row(&r))
    .transpose()
}

pub fn insert_link(
    conn: &mut dyn Conn,
    link_hash: &str,
    consent_hash: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO consent_links (token_hash, consent_hash, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        &[link_hash.into(), consent_hash.into(), now.into(), expires_at.into()],
    )?;
    Ok(())
}

/// Uses a live sign-in link, atomically; the consent it proves, or `None` (unknown, used, expired).
pub fn use_link(
    conn: &mut dyn Conn,
    link_hash: &str,
    now: i64,
) -> Result<Option<String>, StoreError> {
    conn.query_opt(
        "UPDATE consent_links SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 \
         RETURNING consent_hash",
        &[link_hash.into(), now.into()],
    )?
    .map(|r| r.text(0))
    .transpose()
}

/// Records the proof of the email on an open consent (the hash of the browser's cookie); `false`
/// when the consent is no longer open.
pub fn set_proof(
    conn: &mut dyn Conn,
    consent_hash: &str,
    proof_hash: &str,
    now: i64,
) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE pending_consents SET proof_hash = $2 WHERE token_hash = $1 AND completed_at IS NULL \
         AND superseded_at IS NULL AND expires_at > $3",
        &[consent_hash.into(), proof_hash.into(), now.into()],
    )? == 1)
}

/// Closes an open consent once: confirmed (with the proof) or declined. `false` when it was no
/// longer open (used, declined, superseded or expired) or the proof does not match.
pub fn close(
    conn: &mut dyn Conn,
    consent_hash: &str,
    proof_hash: Option<&str>,
    declined: bool,
    now: i64,
) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE pending_consents SET completed_at = $2, declined_at = CASE WHEN $4 = 1 THEN $2 ELSE NULL END \
         WHERE token_hash = $1 AND completed_at IS NULL AND superseded_at IS NULL AND expires_at > $2 \
         AND (CAST($3 AS TEXT) IS NULL OR proof_hash = $3)",
        &[consent_hash.into(), now.into(), proof_hash.into(), i64::from(declined).into()],
    )? == 1)
}

//! Issuing OAuth tokens: a family per grant, an access/refresh pair per issue.

use super::Internal;
use crate::{
    crypto::{ordered_token, random_id, token_hash},
    orchestrators::TokenSettings,
    store::{
        Conn,
        oauth::{self as sql, Grant},
    },
};

/// Tokens as handed to the orchestrator, the only time they exist in plaintext.
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    pub family_id: String,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
}

/// Starts a token family for a grant (remembering the code it came from, if any) and issues its
/// first pair.
pub fn issue_family(
    conn: &mut dyn Conn,
    grant: &Grant,
    code_hash: Option<&str>,
    settings: &TokenSettings,
    now: i64,
) -> Result<IssuedTokens, Internal> {
    let family_id = random_id("fam", now)?;
    sql::insert_family(conn, &family_id, grant, code_hash, now)?;
    issue_pair(conn, family_id, settings, now)
}

/// Issues a new access/refresh pair in an existing family.
pub fn issue_pair(
    conn: &mut dyn Conn,
    family_id: String,
    settings: &TokenSettings,
    now: i64,
) -> Result<IssuedTokens, Internal> {
    let access_token = ordered_token(&settings.access_token_prefix)?;
    let refresh_token = ordered_token(&settings.refresh_token_prefix)?;
    let expires_in = settings.access_token_ttl_secs;
    sql::insert_access_token(
        conn,
        &token_hash(&access_token),
        &family_id,
        now,
        now.saturating_add_unsigned(expires_in),
    )?;
    let refresh_expiry =
        settings.refresh_token_ttl_secs.map(|ttl| now.saturating_add_unsigned(ttl));
    sql::insert_refresh_token(conn, &token_hash(&refresh_token), &family_id, now, refresh_expiry)?;
    Ok(IssuedTokens { family_id, access_token, refresh_token, expires_in })
}

//! SQL for what the SaaS tells provisio (`/v1/connector/…`): a user's grants killed, a project's
//! resources removed, a user's personal data pseudonymized. Every kill is one conditional
//! statement, so two concurrent calls never both count (or report) the same row.

use super::{Conn, Query, StoreError};

/// Revokes every live token family of a user (every orchestrator) with `reason`, and every token
/// in the user's families; returns `(family id, organization id)` of the families this call revoked.
pub fn revoke_families_of_user(
    conn: &mut dyn Conn,
    user_id: &str,
    reason: &str,
    now: i64,
) -> Result<Vec<(String, String)>, StoreError> {
    let revoked = conn
        .query(
            "UPDATE token_families SET revoked_at = $2, revoked_reason = $3 \
             WHERE user_id = $1 AND revoked_at IS NULL RETURNING id, organization_id",
            &[user_id.into(), now.into(), reason.into()],
        )?
        .iter()
        .map(|r| Ok((r.text(0)?, r.text(1)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    conn.execute(
        "UPDATE access_tokens SET revoked_at = $2 WHERE revoked_at IS NULL \
         AND family_id IN (SELECT id FROM token_families WHERE user_id = $1)",
        &[user_id.into(), now.into()],
    )?;
    conn.execute(
        "UPDATE refresh_tokens SET revoked_at = $2 WHERE revoked_at IS NULL \
         AND family_id IN (SELECT id FROM token_families WHERE user_id = $1)",
        &[user_id.into(), now.into()],
    )?;
    Ok(revoked)
}

/// Kills the user's unused codes by making them expire now (a code that is killed is not "used":
/// presenting it later is answered as an expired code, not as a replay); how many.
pub fn expire_codes_of_user(
    conn: &mut dyn Conn,
    user_id: &str,
    now: i64,
) -> Result<u64, StoreError> {
    conn.execute(
        "UPDATE authorization_codes SET expires_at = $2 \
         WHERE user_id = $1 AND consumed_at IS NULL AND expires_at > $2",
        &[user_id.into(), now.into()],
    )
}

/// Deletes the user's consent requests: the open ones, or every one when `all`.
pub fn delete_consents_of_user(
    conn: &mut dyn Conn,
    user_id: &str,
    all: bool,
) -> Result<u64, StoreError> {
    conn.execute(
        "DELETE FROM pending_consents WHERE user_id = $1 AND ($2 = 1 OR completed_at IS NULL)",
        &[user_id.into(), all.into()],
    )
}

/// Deletes the user's dashboard links: the unused ones, or every one when `all`.
pub fn delete_deep_links_of_user(
    conn: &mut dyn Conn,
    user_id: &str,
    all: bool,
) -> Result<u64, StoreError> {
    conn.execute(
        "DELETE FROM deep_links WHERE user_id = $1 AND ($2 = 1 OR used_at IS NULL)",
        &[user_id.into(), all.into()],
    )
}

/// Ends every dashboard session of the user.
pub fn delete_sessions_of_user(conn: &mut dyn Conn, user_id: &str) -> Result<u64, StoreError> {
    conn.execute("DELETE FROM sessions WHERE user_id = $1", &[user_id.into()])
}

/// Replaces the email of the user's account requests.
pub fn pseudonymize_account_requests(
    conn: &mut dyn Conn,
    user_id: &str,
    email: &str,
) -> Result<u64, StoreError> {
    conn.execute(
        "UPDATE account_requests SET email_normalized = $2 WHERE user_id = $1 AND email_normalized <> $2",
        &[user_id.into(), email.into()],
    )
}

/// Forgets the `available_teams` the SaaS reported with the user's codes (organization and project
/// names, which may carry the address); only a live code needs them, and the user has none left.
pub fn forget_code_teams(conn: &mut dyn Conn, user_id: &str) -> Result<u64, StoreError> {
    conn.execute(
        "UPDATE authorization_codes SET available_teams = NULL WHERE user_id = $1 AND available_teams IS NOT NULL",
        &[user_id.into()],
    )
}

/// Rewrites the user's audit records under `pseudonym`, without their detail.
pub fn pseudonymize_audit(
    conn: &mut dyn Conn,
    user_id: &str,
    pseudonym: &str,
) -> Result<u64, StoreError> {
    conn.execute(
        "UPDATE audit_events SET user_id = $2, detail = NULL WHERE user_id = $1",
        &[user_id.into(), pseudonym.into()],
    )
}

/// The outbox events whose data may mention `needle` (`sequence`, `data`): a superset (`_` matches
/// any character), for the caller to parse and check. `needle` must not contain `%` or `\`.
pub fn events_mentioning(
    conn: &mut dyn Conn,
    needle: &str,
) -> Result<Vec<(i64, String)>, StoreError> {
    let pattern = format!("%{needle}%");
    conn.query(
        "SELECT sequence, data FROM events WHERE data LIKE $1 ORDER BY sequence",
        &[pattern.as_str().into()],
    )?
    .iter()
    .map(|r| Ok((r.int(0)?, r.text(1)?)))
    .collect()
}

/// Replaces an outbox event's data.
pub fn set_event_data(conn: &mut dyn Conn, sequence: i64, data: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE events SET data = $2 WHERE sequence = $1",
        &[sequence.into(), data.into()],
    )?;
    Ok(())
}

/// The email of provisio's own user (built-in mode), if there is such a user.
pub fn user_email(conn: &mut dyn Query, user_id: &str) -> Result<Option<String>, StoreError> {
    conn.query_opt("SELECT email FROM users WHERE id = $1", &[user_id.into()])?
        .map(|r| r.text(0))
        .transpose()
}

/// What an erase reads of provisio's own user (built-in mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// As written.
    pub email: String,
    pub email_normalized: String,
    pub first_name: Option<String>,
    pub name: Option<String>,
}

pub fn user_row(conn: &mut dyn Conn, user_id: &str) -> Result<Option<UserRow>, StoreError> {
    conn.query_opt(
        "SELECT email, email_normalized, first_name, name FROM users WHERE id = $1",
        &[user_id.into()],
    )?
    .map(|r| {
        Ok(UserRow {
            email: r.text(0)?,
            email_normalized: r.text(1)?,
            first_name: r.opt_text(2)?,
            name: r.opt_text(3)?,
        })
    })
    .transpose()
}

/// The normalized addresses provisio knows the user by: the user's own row (built-in mode) and
/// the account requests made for the user (either mode).
pub fn addresses_of_user(conn: &mut dyn Conn, user_id: &str) -> Result<Vec<String>, StoreError> {
    conn.query(
        "SELECT email_normalized FROM users WHERE id = $1 \
         UNION SELECT email_normalized FROM account_requests WHERE user_id = $1",
        &[user_id.into()],
    )?
    .iter()
    .map(|r| r.text(0))
    .collect()
}

/// Deletes the sign-in links emailed for the user's consent requests.
pub fn delete_consent_links_of_user(conn: &mut dyn Conn, user_id: &str) -> Result<u64, StoreError> {
    conn.execute(
        "DELETE FROM consent_links WHERE consent_hash IN \
         (SELECT token_hash FROM pending_consents WHERE user_id = $1)",
        &[user_id.into()],
    )
}

/// Deletes every consent request for `email_normalized` (any orchestrator, open or answered; a
/// consent for a new address has no user) and the sign-in links emailed for them.
pub fn delete_consents_of_address(
    conn: &mut dyn Conn,
    email_normalized: &str,
) -> Result<u64, StoreError> {
    conn.execute(
        "DELETE FROM consent_links WHERE consent_hash IN \
         (SELECT token_hash FROM pending_consents WHERE email_normalized = $1)",
        &[email_normalized.into()],
    )?;
    conn.execute(
        "DELETE FROM pending_consents WHERE email_normalized = $1",
        &[email_normalized.into()],
    )
}

/// An organization of the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserOrganization {
    pub id: String,
    pub name: String,
}

pub fn organizations_of_user(
    conn: &mut dyn Conn,
    user_id: &str,
) -> Result<Vec<UserOrganization>, StoreError> {
    conn.query(
        "SELECT o.id, o.name FROM organizations o JOIN memberships m ON m.organization_id = o.id \
         WHERE m.user_id = $1 ORDER BY o.id",
        &[user_id.into()],
    )?
    .iter()
    .map(|r| Ok(UserOrganization { id: r.text(0)?, name: r.text(1)? }))
    .collect()
}

pub fn rename_organization(conn: &mut dyn Conn, id: &str, name: &str) -> Result<(), StoreError> {
    conn.execute("UPDATE organizations SET name = $2 WHERE id = $1", &[id.into(), name.into()])?;
    Ok(())
}

/// Built-in mode: the user's row as a tombstone: `erased_email` for the address (which frees the
/// real one), no names, marked deleted (the first erase's time is kept).
pub fn erase_user_row(
    conn: &mut dyn Conn,
    user_id: &str,
    erased_email: &str,
    now: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE users SET email = $2, email_normalized = $2, first_name = NULL, name = NULL, \
         deleted_at = COALESCE(deleted_at, $3) WHERE id = $1",
        &[user_id.into(), erased_email.into(), now.into()],
    )?;
    Ok(())
}

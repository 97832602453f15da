//! SQL for what the SaaS tells provisio (`/v1/connector/…`): a user's grants killed, a project's
//! resources removed, a user's personal data pseudonymized. Every kill is one conditional
//! statement, so two concurrent calls never both count (or report) the same row.

use super::{Conn, StoreError};

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
pub fn user_email(conn: &mut dyn Conn, user_id: &str) -> Result<Option<String>, StoreError> {
    conn.query_opt("SELECT email FROM users WHERE id = $1", &[user_id.into()])?
        .map(|r| r.text(0))
        .transpose()
}

/// Built-in mode: replaces the user's address (also where it was written into the name of an
/// organization the user belongs to) with `erased_email`, drops the names and marks the user
/// deleted.
pub fn erase_user_row(
    conn: &mut dyn Conn,
    user_id: &str,
    email: &str,
    erased_email: &str,
    now: i64,
) -> Result<(), StoreError> {
    if !email.is_empty() && email != erased_email {
        conn.execute(
            "UPDATE organizations SET name = REPLACE(name, $2, $3) \
             WHERE id IN (SELECT organization_id FROM memberships WHERE user_id = $1)",
            &[user_id.into(), email.into(), erased_email.into()],
        )?;
    }
    conn.execute(
        "UPDATE users SET email = $2, email_normalized = $2, first_name = NULL, name = NULL, \
         deleted_at = COALESCE(deleted_at, $3) WHERE id = $1",
        &[user_id.into(), erased_email.into(), now.into()],
    )?;
    Ok(())
}

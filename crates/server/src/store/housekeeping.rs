//! Deleting rows that have expired: recorded responses, browser sessions, refilled rate-limit
//! buckets, signatures' bindings (PostgreSQL) and account requests once they expired; consents and
//! their sign-in links a day after; authorization codes, delivered events and the record of
//! connector calls a week after. Lookups already ignore expired rows; this keeps the tables small,
//! and what holds an email no longer than it is useful.

use super::{Backend, Conn, StoreError, rate_limits};

/// Delivered events and connector calls are kept this long: time for an operator to look, far
/// beyond the 24 h in which the SaaS dedupes a call's id (a pending call older than that can no
/// longer be completed under the same id anyway).
pub const RETAIN_SECS: i64 = 7 * 24 * 3600;

/// Deletes what expired before `now` (seconds; `now_ms` for buckets); the number of rows.
pub fn sweep(
    conn: &mut dyn Conn,
    backend: Backend,
    now: i64,
    now_ms: i64,
) -> Result<u64, StoreError> {
    let mut deleted =
        conn.execute("DELETE FROM idempotency_records WHERE expires_at <= $1", &[now.into()])?;
    deleted += conn.execute("DELETE FROM sessions WHERE expires_at <= $1", &[now.into()])?;
    let before = now - RETAIN_SECS;
    deleted += conn.execute(
        "DELETE FROM events WHERE state = 'delivered' AND delivered_at <= $1",
        &[before.into()],
    )?;
    deleted +=
        conn.execute("DELETE FROM connector_calls WHERE updated_at <= $1", &[before.into()])?;
    // Consents hold an email: gone a day after they expired (answered ones expire too), with
    // their sign-in links.
    let day_ago = now - 24 * 3600;
    deleted +=
        conn.execute("DELETE FROM consent_links WHERE expires_at <= $1", &[day_ago.into()])?;
    deleted +=
        conn.execute("DELETE FROM pending_consents WHERE expires_at <= $1", &[day_ago.into()])?;
    // An account request's id means nothing once expired (a new request may take it), and it
    // holds an email. A code is kept a week past its expiry, so that one redeemed again within
    // that time still revokes what it issued (spec: a reused code revokes its tokens).
    deleted +=
        conn.execute("DELETE FROM account_requests WHERE expires_at <= $1", &[now.into()])?;
    deleted +=
        conn.execute("DELETE FROM authorization_codes WHERE expires_at <= $1", &[before.into()])?;
    if backend == Backend::Postgres {
        deleted += rate_limits::forget_full(conn, now_ms)?;
        deleted +=
            conn.execute("DELETE FROM signature_uses WHERE expires_at <= $1", &[now.into()])?;
    }
    Ok(deleted)
}

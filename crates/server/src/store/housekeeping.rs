//! Deleting rows that have expired: recorded responses, browser sessions, refilled rate-limit
//! buckets, signatures' bindings (PostgreSQL), consents and their sign-in links a day after they expired, and — after a week —
//! delivered events and the record of connector calls. Lookups
//! already ignore expired rows; this only keeps the tables small (and delivered events, which hold
//! emails, no longer than they are useful).

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
    if backend == Backend::Postgres {
        deleted += rate_limits::forget_full(conn, now_ms)?;
        deleted +=
            conn.execute("DELETE FROM signature_uses WHERE expires_at <= $1", &[now.into()])?;
    }
    Ok(deleted)
}

//! Deleting rows that have expired: recorded responses, browser sessions, refilled rate-limit
//! buckets. Lookups already ignore expired rows; this only keeps the tables small.

use super::{Backend, Conn, StoreError, rate_limits};

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
    if backend == Backend::Postgres {
        deleted += rate_limits::forget_full(conn, now_ms)?;
    }
    Ok(deleted)
}

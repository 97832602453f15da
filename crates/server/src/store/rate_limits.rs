//! SQL for rate-limit buckets shared by instances (PostgreSQL only; see `rate_limit.rs`).

use super::{Conn, StoreError};

/// A bucket as stored: the units it held at `at_ms` (milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredBucket {
    pub units: u64,
    pub at_ms: i64,
}

/// Makes sure the bucket's row exists, then locks it until the transaction ends; `None` for a
/// bucket not seen before (or forgotten once full).
pub fn lock(
    conn: &mut dyn Conn,
    scope: &str,
    key: &str,
) -> Result<Option<StoredBucket>, StoreError> {
    // The row is created first so that two first calls for a key queue on one row lock instead
    // of both counting against a full bucket.
    conn.execute(
        "INSERT INTO rate_limit_buckets (scope, key, units, at_ms, full_at_ms) \
         VALUES ($1, $2, -1, 0, 0) ON CONFLICT (scope, key) DO NOTHING",
        &[scope.into(), key.into()],
    )?;
    let row = conn.query_one(
        "SELECT units, at_ms FROM rate_limit_buckets WHERE scope = $1 AND key = $2 FOR UPDATE",
        &[scope.into(), key.into()],
    )?;
    let units = row.int(0)?;
    Ok(u64::try_from(units)
        .ok()
        .map(|units| StoredBucket { units, at_ms: row.int(1).unwrap_or(0) }))
}

pub fn save(
    conn: &mut dyn Conn,
    scope: &str,
    key: &str,
    bucket: StoredBucket,
    full_at_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE rate_limit_buckets SET units = $3, at_ms = $4, full_at_ms = $5 WHERE scope = $1 AND key = $2",
        &[
            scope.into(),
            key.into(),
            i64::try_from(bucket.units).unwrap_or(i64::MAX).into(),
            bucket.at_ms.into(),
            full_at_ms.into(),
        ],
    )?;
    Ok(())
}

/// Forgets buckets that have refilled: they carry no information.
pub fn forget_full(conn: &mut dyn Conn, now_ms: i64) -> Result<u64, StoreError> {
    conn.execute("DELETE FROM rate_limit_buckets WHERE full_at_ms < $1", &[now_ms.into()])
}

/// Deletes one bucket (erasing a user: the buckets keyed by an address).
pub fn forget(conn: &mut dyn Conn, scope: &str, key: &str) -> Result<u64, StoreError> {
    conn.execute(
        "DELETE FROM rate_limit_buckets WHERE scope = $1 AND key = $2",
        &[scope.into(), key.into()],
    )
}

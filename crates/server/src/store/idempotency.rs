//! SQL for recorded idempotent responses.

use super::{Conn, StoreError};

/// A recorded response, still sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub request_hash: String,
    pub status: u16,
    pub nonce: String,
    pub sealed_body: String,
}

pub fn find(conn: &mut dyn Conn, key_hash: &str, now: i64) -> Result<Option<Recorded>, StoreError> {
    conn.query_opt(
        "SELECT request_hash, status, nonce, sealed_body FROM idempotency_records WHERE key_hash = $1 AND expires_at > $2",
        &[key_hash.into(), now.into()],
    )?
    .map(|r| {
        Ok(Recorded {
            request_hash: r.text(0)?,
            status: u16::try_from(r.int(1)?).unwrap_or(200),
            nonce: r.text(2)?,
            sealed_body: r.text(3)?,
        })
    })
    .transpose()
}

/// Records a response (the first one wins; an expired record is replaced).
pub fn insert(
    conn: &mut dyn Conn,
    key_hash: &str,
    recorded: &Recorded,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO idempotency_records (key_hash, request_hash, status, nonce, sealed_body, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (key_hash) DO UPDATE SET request_hash = $2, status = $3, nonce = $4, sealed_body = $5, created_at = $6, expires_at = $7 \
         WHERE idempotency_records.expires_at <= $6",
        &[
            key_hash.into(),
            (&recorded.request_hash).into(),
            i64::from(recorded.status).into(),
            (&recorded.nonce).into(),
            (&recorded.sealed_body).into(),
            now.into(),
            expires_at.into(),
        ],
    )?;
    Ok(())
}

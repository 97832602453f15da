//! Recorded idempotent responses, and the claim that lets one request with a key run at a time.
//!
//! A request first claims its key. On PostgreSQL the claim is a row in `idempotency_records` with
//! status `PENDING`, so it holds across instances; its lease (chosen by the caller: longer than a
//! request may run) ends it in case its instance dies mid-request. On SQLite (one process) it is an entry in memory, which costs the
//! single writer nothing. The winner runs and then records its answer (`complete`) or gives the
//! key back (`release`); others see `Claim::InFlight` meanwhile, then the recorded answer.

use super::{Conn, Engine, Query, Store, StoreError};

/// A recorded response, still sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub request_hash: String,
    pub status: u16,
    pub nonce: String,
    pub sealed_body: String,
}

/// The status of a claim row whose request is still running (PostgreSQL).
const PENDING: i64 = 0;

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This request runs; it must `complete` or `release` the key.
    Won,
    /// An answer is recorded for the key.
    Recorded(Recorded),
    /// Another request holds the key; `same_request` when its body hash is this one's.
    InFlight { same_request: bool },
}

impl Store {
    /// Claims `key_hash` for a request whose body hashes to `request_hash`. On PostgreSQL the
    /// claim lapses at `lease_until` if it is never completed or released (its instance died).
    pub async fn claim_key(
        &self,
        key_hash: &str,
        request_hash: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<Claim, StoreError> {
        match &self.engine {
            Engine::Sqlite(db) => {
                {
                    let mut in_flight = db.in_flight.lock().map_err(|_| StoreError::Closed)?;
                    if let Some(running) = in_flight.get(key_hash) {
                        return Ok(Claim::InFlight { same_request: running == request_hash });
                    }
                    in_flight.insert(key_hash.to_string(), request_hash.to_string());
                }
                // An answer is written before its claim is dropped, so this read sees it.
                let lookup = key_hash.to_string();
                let found = self.read(move |conn| find(conn, &lookup, now)).await;
                if !matches!(found, Ok(None)) {
                    self.release_key(key_hash).await?;
                }
                Ok(found?.map_or(Claim::Won, Claim::Recorded))
            }
            Engine::Postgres(_) => {
                // A record that disappears between the two statements (released, expired) is
                // claimed on the next turn.
                for _ in 0..3 {
                    let (key, request) = (key_hash.to_string(), request_hash.to_string());
                    let claim = move |conn: &mut dyn Conn| {
                        claim_row(conn, &key, &request, now, lease_until)
                    };
                    if self.write_each(claim).await? {
                        return Ok(Claim::Won);
                    }
                    let lookup = key_hash.to_string();
                    match self.read(move |conn| find(conn, &lookup, now)).await? {
                        Some(r) if i64::from(r.status) == PENDING => {
                            return Ok(Claim::InFlight {
                                same_request: r.request_hash == request_hash,
                            });
                        }
                        Some(recorded) => return Ok(Claim::Recorded(recorded)),
                        None => {}
                    }
                }
                Ok(Claim::InFlight { same_request: true })
            }
        }
    }

    /// Records the answer of the request that won `key_hash`, and ends its claim.
    pub async fn complete_key(
        &self,
        key_hash: &str,
        recorded: Recorded,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let key = key_hash.to_string();
        let stored =
            self.write_each(move |conn| record(conn, &key, &recorded, now, expires_at)).await;
        if let Engine::Sqlite(_) = self.engine {
            self.release_key(key_hash).await?;
        }
        stored
    }

    /// Gives up a claim without an answer (the request failed or was cancelled): the next
    /// request with the key runs.
    pub async fn release_key(&self, key_hash: &str) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Sqlite(db) => {
                db.in_flight.lock().map_err(|_| StoreError::Closed)?.remove(key_hash);
                Ok(())
            }
            Engine::Postgres(_) => {
                let key = key_hash.to_string();
                self.write_each(move |conn| {
                    conn.execute(
                        "DELETE FROM idempotency_records WHERE key_hash = $1 AND status = $2",
                        &[key.as_str().into(), PENDING.into()],
                    )
                })
                .await?;
                Ok(())
            }
        }
    }
}

fn find(conn: &mut dyn Query, key_hash: &str, now: i64) -> Result<Option<Recorded>, StoreError> {
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

/// A pending claim row, unless a live record (answer or claim) holds the key.
fn claim_row(
    conn: &mut dyn Conn,
    key_hash: &str,
    request_hash: &str,
    now: i64,
    lease_until: i64,
) -> Result<bool, StoreError> {
    let claimed = conn.execute(
        "INSERT INTO idempotency_records (key_hash, request_hash, status, nonce, sealed_body, created_at, expires_at) \
         VALUES ($1, $2, $3, '', '', $4, $5) \
         ON CONFLICT (key_hash) DO UPDATE SET request_hash = $2, status = $3, nonce = '', sealed_body = '', created_at = $4, expires_at = $5 \
         WHERE idempotency_records.expires_at <= $4",
        &[key_hash.into(), request_hash.into(), PENDING.into(), now.into(), lease_until.into()],
    )?;
    Ok(claimed == 1)
}

/// Records a response over the request's own claim (PostgreSQL) or as a new row (SQLite); an
/// expired record is replaced, a live answer is kept.
fn record(
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
         WHERE idempotency_records.status = $8 OR idempotency_records.expires_at <= $6",
        &[
            key_hash.into(),
            (&recorded.request_hash).into(),
            i64::from(recorded.status).into(),
            (&recorded.nonce).into(),
            (&recorded.sealed_body).into(),
            now.into(),
            expires_at.into(),
            PENDING.into(),
        ],
    )?;
    Ok(())
}

//! Which request each signature was first used for. The protocol's signature covers a timestamp and
//! the body, not the method, the path or the token, so the same signature would verify on any
//! endpoint; provisio binds it to the first request it is seen on and refuses it on another
//! state-changing one (see `http::request::verify_signature`).
//!
//! On PostgreSQL the binding is a row, so it holds across instances; a row never changes while it
//! lives, so each instance keeps a copy of the rows it has written or read and answers from it
//! without a round trip (repeated reads in one second cost one statement). On SQLite (one process)
//! it is an entry in memory, which costs the single writer nothing. Either way it is kept only while
//! the signature could still verify.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::{Conn, Engine, Store, StoreError};

/// A signed request's name as kept in memory: SHA-256 of its use hash (fixed size, no allocation).
type Key = [u8; 32];
/// A target as kept in memory: the first 16 bytes of SHA-256 of `METHOD path`. Equal targets
/// give equal ids; two different ones agree with probability 2⁻¹²⁸.
type TargetId = [u8; 16];

fn key(use_hash: &str) -> Key {
    Sha256::digest(use_hash.as_bytes()).into()
}

fn target_id(target: &str) -> TargetId {
    let digest = Sha256::digest(target.as_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id
}

/// The bindings of one SQLite process (or a PostgreSQL instance's copy of rows): 56 bytes an entry,
/// which a busy process keeps for every signed request of the last signature tolerance.
#[derive(Default)]
pub(super) struct Bindings {
    by_use: HashMap<Key, (TargetId, i64)>,
    /// When the map has grown to this size, expired entries are swept (amortised: the next sweep
    /// waits until the map has doubled again).
    sweep_at: usize,
}

impl Bindings {
    const MIN_SWEEP_AT: usize = 1024;

    fn bind(&mut self, use_hash: &str, target: &str, now: i64, expires_at: i64) -> bool {
        let (key, target) = (key(use_hash), target_id(target));
        match self.get(&key, now) {
            Some(bound) => bound == target,
            None => {
                self.remember(key, target, now, expires_at);
                true
            }
        }
    }

    /// The live binding of `key`, if this map holds one.
    fn get(&self, key: &Key, now: i64) -> Option<TargetId> {
        self.by_use.get(key).filter(|(_, expires)| *expires > now).map(|(bound, _)| *bound)
    }

    fn remember(&mut self, key: Key, target: TargetId, now: i64, expires_at: i64) {
        if self.by_use.len() >= self.sweep_at {
            self.by_use.retain(|_, (_, expires)| *expires > now);
            self.sweep_at = (self.by_use.len() * 2).max(Self::MIN_SWEEP_AT);
        }
        self.by_use.insert(key, (target, expires_at));
    }
}

impl Store {
    /// Binds the signed request `use_hash` to `target` unless it is already bound: answers whether
    /// it is bound to `target`. The first request wins, on every instance. `use_hash` names a
    /// timestamp, so a binding can only be met again while it is live (`expires_at`, when the
    /// signature stops verifying).
    pub async fn bind_signature(
        &self,
        use_hash: &str,
        target: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        match &self.engine {
            Engine::Sqlite(db) => {
                let mut bindings = db.signature_uses.lock().map_err(|_| StoreError::Closed)?;
                Ok(bindings.bind(use_hash, target, now, expires_at))
            }
            Engine::Postgres(db) => {
                let copy = key(use_hash);
                let known = {
                    let copies = db.signature_uses.lock().map_err(|_| StoreError::Closed)?;
                    let known = copies.get(&copy, now).filter(|bound| *bound != READ_NOTED);
                    known.map(|bound| bound == target_id(target))
                };
                if let Some(same) = known {
                    return Ok(same);
                }
                let (key, target_owned) = (use_hash.to_string(), target.to_string());
                let bound = self
                    .write_each(move |conn| bind_row(conn, &key, &target_owned, expires_at))
                    .await?;
                let mut copies = db.signature_uses.lock().map_err(|_| StoreError::Closed)?;
                copies.remember(copy, target_id(&bound), now, expires_at);
                Ok(bound == target)
            }
        }
    }

    /// Binds `use_hash` to `target` if it is not bound yet, without asking to what (a read, which
    /// is never refused: on PostgreSQL this takes no row lock, so reads in one second do not queue
    /// behind each other).
    pub async fn note_signature(
        &self,
        use_hash: &str,
        target: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        match &self.engine {
            Engine::Sqlite(db) => {
                let mut bindings = db.signature_uses.lock().map_err(|_| StoreError::Closed)?;
                bindings.bind(use_hash, target, now, expires_at);
                Ok(())
            }
            Engine::Postgres(db) => {
                let copy = key(use_hash);
                let known = {
                    let copies = db.signature_uses.lock().map_err(|_| StoreError::Closed)?;
                    copies.get(&copy, now).is_some()
                };
                if known {
                    return Ok(());
                }
                let (key, target) = (use_hash.to_string(), target.to_string());
                self.write_each(move |conn| {
                    conn.execute(
                        "INSERT INTO signature_uses (use_hash, target, expires_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (use_hash) DO NOTHING",
                        &[key.as_str().into(), target.as_str().into(), expires_at.into()],
                    )
                })
                .await?;
                // Whatever the row says now, it says it for as long as it lives: a later read
                // needs no statement. (Its target is not known here; reads never ask.)
                let mut copies = db.signature_uses.lock().map_err(|_| StoreError::Closed)?;
                if copies.get(&copy, now).is_none() {
                    copies.remember(copy, READ_NOTED, now, expires_at);
                }
                Ok(())
            }
        }
    }
}

/// What a PostgreSQL instance's copy holds for a signature it noted on a read without learning its
/// row's target (`DO NOTHING` answers nothing): enough for the next read, while a state-changing
/// request asks the row itself. (No target's id is all zeros but with probability 2⁻¹²⁸.)
const READ_NOTED: TargetId = [0; 16];

/// One statement: a new row takes this target; an existing one keeps its own (the no-op update
/// makes it answer, and holds a racing twin until this transaction ends). Either way the row's
/// target is answered.
fn bind_row(
    conn: &mut dyn Conn,
    use_hash: &str,
    target: &str,
    expires_at: i64,
) -> Result<String, StoreError> {
    conn.query_one(
        "INSERT INTO signature_uses (use_hash, target, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (use_hash) DO UPDATE SET target = signature_uses.target \
         RETURNING target",
        &[use_hash.into(), target.into(), expires_at.into()],
    )?
    .text(0)
}

#[cfg(test)]
mod tests {
    use super::Bindings;

    #[test]
    fn first_target_wins_until_it_expires() {
        let mut b = Bindings::default();
        assert!(b.bind("u", "GET /a", 100, 200));
        assert!(b.bind("u", "GET /a", 150, 250));
        assert!(!b.bind("u", "POST /b", 199, 300));
        assert!(b.bind("u", "POST /b", 200, 300), "an expired binding is replaced");
        assert!(!b.bind("u", "GET /a", 201, 400));
    }

    #[test]
    fn expired_entries_are_swept_as_the_map_grows() {
        let mut b = Bindings::default();
        for i in 0..5000 {
            assert!(b.bind(&i.to_string(), "t", i, i + 10));
        }
        assert!(b.by_use.len() < 2 * Bindings::MIN_SWEEP_AT, "{}", b.by_use.len());
    }
}

//! Signing timestamps that never give two different requests one signature.
//!
//! The protocol's signature covers the timestamp and the body only, so two requests with the same
//! token and body signed in the same second carry the same signature; a careful provider binds a
//! signature to the first request it sees it on and refuses it on another method or path. This
//! client therefore moves such a request to the next second not yet used for it (a timestamp a
//! little ahead is inside every provider's tolerance). Repeats of one request keep their second:
//! those are the same request.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

use sha2::{Digest, Sha256};

/// How far ahead of now a timestamp may be moved; past it the request is signed at now + this.
const MAX_AHEAD: i64 = 60;

#[derive(Debug, Default)]
pub struct Stamps(Mutex<Used>);

#[derive(Debug, Default)]
struct Used {
    /// (token, body, timestamp) hashed → the request (method and URL) it was used for, and the
    /// timestamp.
    by_key: HashMap<[u8; 32], (String, i64)>,
    /// The size at which past seconds are dropped (only `now` and later are ever looked up).
    sweep_at: usize,
}

impl Stamps {
    /// The timestamp to sign `method url` with, for `bearer` and `body`, at `now`.
    pub fn next(
        &self,
        now: i64,
        bearer: Option<&str>,
        method: &str,
        url: &str,
        body: &[u8],
    ) -> i64 {
        let target = format!("{method} {url}");
        let mut used = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if used.by_key.len() >= used.sweep_at {
            used.by_key.retain(|_, (_, at)| *at >= now);
            used.sweep_at = (used.by_key.len() * 2).max(4096);
        }
        let mut at = now;
        while at < now + MAX_AHEAD {
            match used.by_key.get(&key(bearer, body, at)) {
                None => break,
                Some((bound, _)) if *bound == target => return at,
                Some(_) => at += 1,
            }
        }
        used.by_key.insert(key(bearer, body, at), (target, at));
        at
    }

    /// The provider says the signature for `at` was used for another request (another process
    /// of ours signed it): the next request with this token and body moves past it.
    pub fn taken(&self, bearer: Option<&str>, body: &[u8], at: i64) {
        let mut used = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        used.by_key.insert(key(bearer, body, at), (String::new(), at));
    }
}

fn key(bearer: Option<&str>, body: &[u8], at: i64) -> [u8; 32] {
    let bearer = bearer.unwrap_or("");
    let mut hash = Sha256::new();
    hash.update((bearer.len() as u64).to_be_bytes());
    hash.update(bearer.as_bytes());
    hash.update(at.to_be_bytes());
    hash.update(body);
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::Stamps;

    #[test]
    fn another_request_with_the_same_token_and_body_moves_to_the_next_second() {
        let s = Stamps::default();
        assert_eq!(s.next(100, Some("a"), "GET", "/r/8", b""), 100);
        assert_eq!(s.next(100, Some("a"), "GET", "/r/8", b""), 100, "a repeat keeps its second");
        assert_eq!(s.next(100, Some("a"), "POST", "/r/8/rotate", b""), 101);
        assert_eq!(s.next(100, Some("a"), "POST", "/r/8/remove", b""), 102);
        assert_eq!(s.next(100, Some("b"), "POST", "/r/8/remove", b""), 100, "another token");
        assert_eq!(s.next(100, Some("a"), "POST", "/r/8/remove", b"{}"), 100, "another body");
        assert_eq!(s.next(101, Some("a"), "POST", "/r/8/rotate", b""), 101);
        s.taken(Some("c"), b"", 100);
        assert_eq!(s.next(100, Some("c"), "GET", "/r/9", b""), 101, "refused by the provider");
    }
}

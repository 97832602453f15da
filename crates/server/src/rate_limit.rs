//! Rate limits (token buckets): per orchestrator account and per email on account requests, per
//! token on resource and deep-link calls, per client address on dashboard logins. A refused call
//! answers 429 with `Retry-After` in its endpoint's own envelope.
//!
//! Every limited answer, success or 429, also says where its caller stands: the IETF
//! `RateLimit-Policy` and `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers), one item per
//! limit the call counted against — see `request_scope::note_allowance` and [`header_values`].
//!
//! On SQLite (one instance) buckets live in this process's memory. On PostgreSQL they live in the
//! database, so that every instance counts against the same buckets: each call locks its bucket's
//! row, applies [`Bucket::take`] and writes it back.

use std::{collections::HashMap, sync::Mutex};

use serde::Deserialize;

use crate::{
    client_addr::TrustedProxies,
    store::{
        Backend, Store, StoreError,
        rate_limits::{self as sql, StoredBucket},
    },
};

/// One limit: `burst` calls at once, refilled at `per_minute` calls a minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub burst: u32,
    pub per_minute: u32,
}

/// `[rate_limits]` in the config file; each limit can be tuned, `enabled = false` turns all off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    pub enabled: bool,
    pub account_requests_per_orchestrator_account: Rate,
    pub account_requests_per_email: Rate,
    pub resource_calls_per_token: Rate,
    pub dashboard_logins_per_ip: Rate,
    /// Sign-in emails of the consent leg, per pending consent and per address.
    pub consent_emails_per_consent: Rate,
    pub consent_emails_per_address: Rate,
    /// Peers whose `X-Forwarded-For` names the client for `dashboard_logins_per_ip`: the load
    /// balancers in front of provisio (`client_addr.rs`). Empty: the TCP peer is the client.
    pub trusted_proxies: TrustedProxies,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            enabled: true,
            account_requests_per_orchestrator_account: Rate { burst: 2000, per_minute: 60_000 },
            account_requests_per_email: Rate { burst: 20, per_minute: 60 },
            resource_calls_per_token: Rate { burst: 1000, per_minute: 30_000 },
            dashboard_logins_per_ip: Rate { burst: 20, per_minute: 60 },
            consent_emails_per_consent: Rate { burst: 3, per_minute: 1 },
            consent_emails_per_address: Rate { burst: 5, per_minute: 1 },
            trusted_proxies: TrustedProxies::default(),
        }
    }
}

/// Which limit a call counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    OrchestratorAccount,
    Email,
    Token,
    LoginIp,
    ConsentEmail,
    ConsentAddress,
}

/// A call is this many units; a bucket refills `per_minute` units each millisecond, so the
/// arithmetic is exact in integers.
const CALL: u64 = 60_000;

impl Scope {
    pub const fn label(self) -> &'static str {
        match self {
            Self::OrchestratorAccount => "orchestrator_account",
            Self::Email => "email",
            Self::Token => "token",
            Self::LoginIp => "login_ip",
            Self::ConsentEmail => "consent_email",
            Self::ConsentAddress => "consent_address",
        }
    }
}

/// A token bucket; the one place its arithmetic lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// Units left (see [`CALL`]).
    pub units: u64,
    /// When `units` was last brought up to date, in milliseconds.
    pub at_ms: i64,
}

impl Bucket {
    fn full(rate: Rate, now_ms: i64) -> Self {
        Self { units: capacity(rate), at_ms: now_ms }
    }

    /// Refills for the time since `at_ms`, then takes one call or says how long to wait.
    fn take(&mut self, rate: Rate, now_ms: i64) -> Result<(), RetryAfter> {
        self.units = self.level(rate, now_ms);
        self.at_ms = self.at_ms.max(now_ms);
        if self.units >= CALL {
            self.units -= CALL;
            return Ok(());
        }
        let wait_ms = (CALL - self.units).div_ceil(u64::from(rate.per_minute.max(1)));
        Err(RetryAfter(wait_ms.div_ceil(1000).max(1)))
    }

    /// The units the bucket holds at `now_ms`.
    fn level(&self, rate: Rate, now_ms: i64) -> u64 {
        let elapsed = u64::try_from(now_ms.saturating_sub(self.at_ms)).unwrap_or(0);
        let refill = elapsed.saturating_mul(u64::from(rate.per_minute));
        self.units.saturating_add(refill).min(capacity(rate))
    }

    /// When the bucket will be full again (and can be forgotten), in milliseconds.
    fn full_at_ms(&self, rate: Rate) -> i64 {
        let missing = capacity(rate).saturating_sub(self.units);
        let wait = missing.div_ceil(u64::from(rate.per_minute.max(1)));
        self.at_ms.saturating_add(i64::try_from(wait).unwrap_or(i64::MAX))
    }
}

impl From<StoredBucket> for Bucket {
    fn from(StoredBucket { units, at_ms }: StoredBucket) -> Self {
        Self { units, at_ms }
    }
}

impl From<Bucket> for StoredBucket {
    fn from(Bucket { units, at_ms }: Bucket) -> Self {
        Self { units, at_ms }
    }
}

fn capacity(rate: Rate) -> u64 {
    u64::from(rate.burst.max(1)) * CALL
}

/// Where a caller stands with one limit after a call counted against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    pub scope: Scope,
    pub rate: Rate,
    /// Whole calls left now.
    pub remaining: u64,
    /// Seconds until the bucket is full again.
    pub reset_secs: u64,
}

impl Allowance {
    fn of(scope: Scope, rate: Rate, bucket: &Bucket, now_ms: i64) -> Self {
        let until_full = bucket.full_at_ms(rate).saturating_sub(now_ms).max(0);
        Self {
            scope,
            rate,
            remaining: bucket.level(rate, now_ms) / CALL,
            reset_secs: u64::try_from(until_full).unwrap_or(0).div_ceil(1000),
        }
    }
}

fn note(allowance: Allowance) {
    crate::request_scope::note_allowance(allowance);
}

/// `RateLimit-Policy` and `RateLimit` values for the limits a request counted against: a policy
/// per limit, named by its scope, with its quota `q` (the burst) and window `w` (seconds to refill
/// the burst); then `r` calls remaining and `t` seconds until the bucket is full again.
pub fn header_values(seen: &[Allowance]) -> Option<(String, String)> {
    if seen.is_empty() {
        return None;
    }
    let policy = seen
        .iter()
        .map(|a| {
            let window =
                (u64::from(a.rate.burst.max(1)) * 60).div_ceil(u64::from(a.rate.per_minute.max(1)));
            format!("\"{}\";q={};w={}", a.scope.label(), a.rate.burst.max(1), window.max(1))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let state = seen
        .iter()
        .map(|a| format!("\"{}\";r={};t={}", a.scope.label(), a.remaining, a.reset_secs))
        .collect::<Vec<_>>()
        .join(", ");
    Some((policy, state))
}

/// Seconds to wait before the call would be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

#[derive(Debug, Default)]
pub struct RateLimiter {
    config: Option<RateLimits>,
    buckets: Mutex<HashMap<(Scope, String), Bucket>>,
    /// Where buckets live when several instances share them.
    shared: Option<Store>,
}

/// Above this many buckets, full ones are dropped (they carry no information).
const MAX_BUCKETS: usize = 100_000;

impl RateLimiter {
    /// Buckets in this process's memory.
    pub fn new(config: &RateLimits) -> Self {
        Self { config: config.enabled.then(|| config.clone()), ..Self::default() }
    }

    /// Buckets where `store` keeps them: in memory for SQLite, in the database for PostgreSQL.
    pub fn for_store(config: &RateLimits, store: &Store) -> Self {
        let shared = (store.backend() == Backend::Postgres).then(|| store.clone());
        Self { shared, ..Self::new(config) }
    }

    fn rate(&self, scope: Scope) -> Option<Rate> {
        let c = self.config.as_ref()?;
        Some(match scope {
            Scope::OrchestratorAccount => c.account_requests_per_orchestrator_account,
            Scope::Email => c.account_requests_per_email,
            Scope::Token => c.resource_calls_per_token,
            Scope::LoginIp => c.dashboard_logins_per_ip,
            Scope::ConsentEmail => c.consent_emails_per_consent,
            Scope::ConsentAddress => c.consent_emails_per_address,
        })
    }

    /// Takes one call from `key`'s bucket at time `now_ms`, or says how long to wait.
    pub async fn take(&self, scope: Scope, key: &str, now_ms: i64) -> Result<(), RetryAfter> {
        let (Some(store), Some(rate)) = (&self.shared, self.rate(scope)) else {
            return self.check(scope, key, now_ms);
        };
        let key = key.to_string();
        let taken = store
            .write_atomic(move |conn| -> Result<_, StoreError> {
                let mut bucket = sql::lock(conn, scope.label(), &key)?
                    .map_or(Bucket::full(rate, now_ms), Bucket::from);
                let taken = bucket.take(rate, now_ms);
                sql::save(conn, scope.label(), &key, bucket.into(), bucket.full_at_ms(rate))?;
                Ok((taken, Allowance::of(scope, rate, &bucket, now_ms)))
            })
            .await;
        // A limiter that cannot reach its store lets the call through: the call itself will
        // meet the same database and fail or succeed on its own.
        match taken {
            Ok((taken, allowance)) => {
                note(allowance);
                taken
            }
            Err(e) => {
                tracing::warn!(error = %e, "rate-limit bucket unavailable");
                Ok(())
            }
        }
    }

    /// [`RateLimiter::take`] on this process's buckets.
    pub fn check(&self, scope: Scope, key: &str, now_ms: i64) -> Result<(), RetryAfter> {
        let Some(rate) = self.rate(scope) else { return Ok(()) };
        let Ok(mut buckets) = self.buckets.lock() else { return Ok(()) };
        if buckets.len() > MAX_BUCKETS {
            buckets.retain(|_, b| b.level(rate, now_ms) < capacity(rate));
        }
        let bucket = buckets.entry((scope, key.to_string())).or_insert(Bucket::full(rate, now_ms));
        let taken = bucket.take(rate, now_ms);
        note(Allowance::of(scope, rate, bucket, now_ms));
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `work` as a request; the limits it counted against.
    async fn noting(work: impl std::future::Future<Output = ()>) -> ((), Vec<Allowance>) {
        crate::request_scope::run("-".into(), false, work).await
    }

    fn limiter(burst: u32, per_minute: u32) -> RateLimiter {
        let rate = Rate { burst, per_minute };
        RateLimiter::new(&RateLimits {
            enabled: true,
            account_requests_per_orchestrator_account: rate,
            account_requests_per_email: rate,
            resource_calls_per_token: rate,
            dashboard_logins_per_ip: rate,
            consent_emails_per_consent: rate,
            consent_emails_per_address: rate,
            trusted_proxies: TrustedProxies::default(),
        })
    }

    #[test]
    fn burst_then_refill() {
        let l = limiter(2, 60);
        assert!(l.check(Scope::Email, "a", 0).is_ok());
        assert!(l.check(Scope::Email, "a", 0).is_ok());
        assert_eq!(l.check(Scope::Email, "a", 0), Err(RetryAfter(1)));
        assert!(l.check(Scope::Email, "b", 0).is_ok(), "keys are independent");
        assert!(l.check(Scope::Token, "a", 0).is_ok(), "scopes are independent");
        assert!(l.check(Scope::Email, "a", 1000).is_ok(), "one call a second comes back");
        assert!(l.check(Scope::Email, "a", 1000).is_err());
    }

    #[test]
    fn retry_after_reflects_the_rate() {
        let l = limiter(1, 2);
        assert!(l.check(Scope::LoginIp, "ip", 0).is_ok());
        assert_eq!(l.check(Scope::LoginIp, "ip", 0), Err(RetryAfter(30)));
        assert_eq!(l.check(Scope::LoginIp, "ip", 20_000), Err(RetryAfter(10)), "10 s left");
        assert!(l.check(Scope::LoginIp, "ip", 30_000).is_ok());
    }

    #[tokio::test]
    async fn a_request_learns_where_it_stands_with_each_limit() {
        let l = limiter(3, 60);
        let ((), seen) = noting(async {
            assert!(l.check(Scope::Email, "a", 0).is_ok());
            assert!(l.check(Scope::Email, "a", 0).is_ok());
            assert!(l.check(Scope::Token, "t", 0).is_ok());
        })
        .await;
        let rate = Rate { burst: 3, per_minute: 60 };
        assert_eq!(
            seen,
            [
                Allowance { scope: Scope::Email, rate, remaining: 1, reset_secs: 2 },
                Allowance { scope: Scope::Token, rate, remaining: 2, reset_secs: 1 },
            ]
        );
        let (policy, state) = header_values(&seen).unwrap();
        assert_eq!(policy, "\"email\";q=3;w=3, \"token\";q=3;w=3");
        assert_eq!(state, "\"email\";r=1;t=2, \"token\";r=2;t=1");
        // Refused: nothing left, full again once the whole burst has refilled.
        let ((), seen) = noting(async {
            assert!(l.check(Scope::Email, "a", 0).is_ok());
            assert!(l.check(Scope::Email, "a", 0).is_err());
        })
        .await;
        assert_eq!(seen, [Allowance { scope: Scope::Email, rate, remaining: 0, reset_secs: 3 }]);
        assert_eq!(header_values(&[]), None);
    }

    #[test]
    fn disabled_allows_everything() {
        let l = RateLimiter::new(&RateLimits { enabled: false, ..RateLimits::default() });
        for _ in 0..10_000 {
            assert!(l.check(Scope::Email, "a", 0).is_ok());
        }
    }
}

//! Rate limits (token buckets): per orchestrator account and per email on account requests, per
//! token on resource and deep-link calls, per client address on dashboard logins. A refused call
//! answers 429 with `Retry-After` in its endpoint's own envelope.
//!
//! Buckets live in this process's memory, which is exact for one instance (the SQLite deployment);
//! a shared store for several instances is the PostgreSQL backend's business.

use std::{collections::HashMap, sync::Mutex};

use serde::Deserialize;

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
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            enabled: true,
            account_requests_per_orchestrator_account: Rate { burst: 2000, per_minute: 60_000 },
            account_requests_per_email: Rate { burst: 20, per_minute: 60 },
            resource_calls_per_token: Rate { burst: 1000, per_minute: 30_000 },
            dashboard_logins_per_ip: Rate { burst: 20, per_minute: 60 },
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
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Units left (see [`CALL`]).
    units: u64,
    /// When `milli` was last brought up to date, in milliseconds.
    at_ms: i64,
}

/// Seconds to wait before the call would be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

#[derive(Debug, Default)]
pub struct RateLimiter {
    config: Option<RateLimits>,
    buckets: Mutex<HashMap<(Scope, String), Bucket>>,
}

/// Above this many buckets, full ones are dropped (they carry no information).
const MAX_BUCKETS: usize = 100_000;

impl RateLimiter {
    pub fn new(config: &RateLimits) -> Self {
        Self { config: config.enabled.then(|| config.clone()), buckets: Mutex::default() }
    }

    fn rate(&self, scope: Scope) -> Option<Rate> {
        let c = self.config.as_ref()?;
        Some(match scope {
            Scope::OrchestratorAccount => c.account_requests_per_orchestrator_account,
            Scope::Email => c.account_requests_per_email,
            Scope::Token => c.resource_calls_per_token,
            Scope::LoginIp => c.dashboard_logins_per_ip,
        })
    }

    /// Takes one call from `key`'s bucket at time `now_ms`, or says how long to wait.
    pub fn check(&self, scope: Scope, key: &str, now_ms: i64) -> Result<(), RetryAfter> {
        let Some(rate) = self.rate(scope) else { return Ok(()) };
        let capacity = u64::from(rate.burst.max(1)) * CALL;
        let refill = |elapsed_ms: u64| elapsed_ms.saturating_mul(u64::from(rate.per_minute));
        let Ok(mut buckets) = self.buckets.lock() else { return Ok(()) };
        if buckets.len() > MAX_BUCKETS {
            buckets.retain(|_, b| {
                let elapsed = u64::try_from(now_ms.saturating_sub(b.at_ms)).unwrap_or(0);
                b.units.saturating_add(refill(elapsed)) < capacity
            });
        }
        let bucket = buckets
            .entry((scope, key.to_string()))
            .or_insert(Bucket { units: capacity, at_ms: now_ms });
        let elapsed = u64::try_from(now_ms.saturating_sub(bucket.at_ms)).unwrap_or(0);
        bucket.units = bucket.units.saturating_add(refill(elapsed)).min(capacity);
        bucket.at_ms = bucket.at_ms.max(now_ms);
        if bucket.units >= CALL {
            bucket.units -= CALL;
            return Ok(());
        }
        let wait_ms = (CALL - bucket.units).div_ceil(u64::from(rate.per_minute.max(1)));
        Err(RetryAfter(wait_ms.div_ceil(1000).max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(burst: u32, per_minute: u32) -> RateLimiter {
        let rate = Rate { burst, per_minute };
        RateLimiter::new(&RateLimits {
            enabled: true,
            account_requests_per_orchestrator_account: rate,
            account_requests_per_email: rate,
            resource_calls_per_token: rate,
            dashboard_logins_per_ip: rate,
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

    #[test]
    fn disabled_allows_everything() {
        let l = RateLimiter::new(&RateLimits { enabled: false, ..RateLimits::default() });
        for _ in 0..10_000 {
            assert!(l.check(Scope::Email, "a", 0).is_ok());
        }
    }
}

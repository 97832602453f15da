//! The orchestrators allowed to call this provider, and which of them signed a request.

use std::sync::{Arc, RwLock};

use provisio_protocol::signature::{SignatureError, SigningKeys};

use crate::signing_secrets::LiveSecret;

/// How an existing user's account is linked (spec 5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkingPolicy {
    /// The orchestrator vouches for the email: link without a browser step.
    #[default]
    Link,
    /// The user confirms in a browser first (`requires_auth`).
    Consent,
}

/// What a successful account request answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    /// An authorization code for `/oauth/token`.
    #[default]
    Oauth,
    /// Tokens at once, no code exchange.
    Credentials,
}

/// Token lifetimes and prefixes for one orchestrator.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenSettings {
    pub access_token_ttl_secs: u64,
    /// `None`: valid until used or revoked.
    pub refresh_token_ttl_secs: Option<u64>,
    pub access_token_prefix: String,
    pub refresh_token_prefix: String,
}

impl Default for TokenSettings {
    fn default() -> Self {
        Self {
            access_token_ttl_secs: 365 * 24 * 3600,
            refresh_token_ttl_secs: None,
            access_token_prefix: "pvat".into(),
            refresh_token_prefix: "pvrt".into(),
        }
    }
}

/// One orchestrator: who it is, the secrets it signs with, and how its requests are answered.
#[derive(Debug, Clone)]
pub struct Orchestrator {
    pub name: String,
    pub label: String,
    pub linking: LinkingPolicy,
    pub response: ResponseMode,
    pub tokens: TokenSettings,
    /// Where the consent leg sends the browser back (`linking = "consent"`).
    pub callback_url: Option<String>,
    keys: SigningKeys,
}

impl Orchestrator {
    /// An orchestrator with default policies.
    pub fn new(name: impl Into<String>, label: Option<String>, secrets: &[String]) -> Self {
        let name = name.into();
        Self {
            label: label.unwrap_or_else(|| name.clone()),
            name,
            linking: LinkingPolicy::default(),
            response: ResponseMode::default(),
            tokens: TokenSettings::default(),
            callback_url: None,
            keys: SigningKeys::new(secrets),
        }
    }

    /// Replaces the signing secrets (the `--signing-secret` flag over the file's).
    pub fn with_secrets(mut self, secrets: &[String]) -> Self {
        self.keys = SigningKeys::new(secrets);
        self
    }
}

/// The orchestrators from configuration, and the signing secrets kept in the database for them
/// (see [`crate::signing_secrets`]), cached and reloaded now and then: the list of orchestrators is
/// fixed at start, their database secrets are not.
#[derive(Debug, Clone, Default)]
pub struct Orchestrators {
    /// Shared, so a verified request can hold its orchestrator past the borrow of the state.
    list: Vec<Arc<Orchestrator>>,
    live: Arc<Live>,
}

/// The database secrets as last loaded, shared by every clone.
#[derive(Default)]
struct Live {
    current: RwLock<Arc<LiveKeys>>,
    /// Held while reloading, so concurrent requests wait for one load instead of each running one.
    reload: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Live(redacted)")
    }
}

/// The database secrets of each orchestrator (in the order of the list), pre-keyed.
#[derive(Default)]
struct LiveKeys {
    loaded_at_ms: Option<i64>,
    by_orchestrator: Vec<Vec<LiveKey>>,
}

/// Secrets valid until retired, together; each retiring one on its own with its deadline.
#[derive(Clone)]
struct LiveKey {
    keys: SigningKeys,
    retire_at: Option<i64>,
}

impl Orchestrators {
    pub fn new(list: Vec<Orchestrator>) -> Self {
        Self { list: list.into_iter().map(Arc::new).collect(), live: Arc::default() }
    }

    /// Whether any signing secret is configured or loaded from the database; without one every
    /// signed call answers 500.
    pub fn has_secrets(&self) -> bool {
        self.list.iter().any(|o| !o.keys.is_empty())
            || self.live_keys().by_orchestrator.iter().any(|keys| !keys.is_empty())
    }

    pub fn all(&self) -> &[Arc<Orchestrator>] {
        &self.list
    }

    pub fn get(&self, name: &str) -> Option<&Orchestrator> {
        self.list.iter().find(|o| o.name == name).map(Arc::as_ref)
    }

    fn live_keys(&self) -> Arc<LiveKeys> {
        self.live.current.read().map_or_else(|e| Arc::clone(&e.into_inner()), |k| Arc::clone(&k))
    }

    fn is_fresh(&self, now_ms: i64, interval_ms: i64) -> bool {
        self.live_keys().loaded_at_ms.is_some_and(|at| now_ms >= at && now_ms - at < interval_ms)
    }

    /// Reloads the database secrets with `load` when the ones held were loaded `interval_ms` or more
    /// ago (or never); one caller loads while the others wait for its result. A failed load keeps
    /// the secrets held and is tried again after the interval.
    pub async fn refresh<F, E>(&self, now_ms: i64, interval_ms: i64, load: F)
    where
        F: Future<Output = Result<Vec<LiveSecret>, E>>,
        E: std::fmt::Display,
    {
        if self.is_fresh(now_ms, interval_ms) {
            return;
        }
        let _reloading = self.live.reload.lock().await;
        if self.is_fresh(now_ms, interval_ms) {
            return;
        }
        let next = match load.await {
            Ok(secrets) => self.keys_for(&secrets, now_ms),
            Err(e) => {
                tracing::warn!(error = %e, "cannot load the signing secrets from the database");
                let held = self.live_keys();
                LiveKeys {
                    loaded_at_ms: Some(now_ms),
                    by_orchestrator: held.by_orchestrator.clone(),
                }
            }
        };
        let next = Arc::new(next);
        match self.live.current.write() {
            Ok(mut current) => *current = next,
            Err(e) => *e.into_inner() = next,
        }
    }

    fn keys_for(&self, secrets: &[LiveSecret], now_ms: i64) -> LiveKeys {
        let by_orchestrator = self
            .list
            .iter()
            .map(|orchestrator| {
                let mine = secrets.iter().filter(|s| s.orchestrator == orchestrator.name);
                let (lasting, retiring): (Vec<_>, Vec<_>) =
                    mine.partition(|s| s.retire_at.is_none());
                let lasting: Vec<&str> = lasting.iter().map(|s| s.secret.as_str()).collect();
                let mut keys = Vec::new();
                if !lasting.is_empty() {
                    keys.push(LiveKey { keys: SigningKeys::new(&lasting), retire_at: None });
                }
                keys.extend(retiring.iter().map(|s| LiveKey {
                    keys: SigningKeys::new(&[s.secret.as_str()]),
                    retire_at: s.retire_at,
                }));
                keys
            })
            .collect();
        for secret in secrets.iter().filter(|s| self.get(&s.orchestrator).is_none()) {
            tracing::debug!(
                id = secret.id,
                orchestrator = %secret.orchestrator,
                "signing secret for an orchestrator that is not configured; ignored"
            );
        }
        LiveKeys { loaded_at_ms: Some(now_ms), by_orchestrator }
    }

    /// The orchestrator whose secret signed this request (a configured secret, or a database secret
    /// as last loaded and not retired at `now`), and the timestamp it signed.
    pub fn verify(
        &self,
        header: Option<&[u8]>,
        body: &[u8],
        now: i64,
        tolerance_secs: u64,
    ) -> Result<(&Arc<Orchestrator>, i64), SignatureError> {
        let live = self.live_keys();
        let mut last = SignatureError::Mismatch;
        for (i, orchestrator) in self.list.iter().enumerate() {
            let database = live.by_orchestrator.get(i).map_or(&[][..], Vec::as_slice);
            let valid = database.iter().filter(|k| k.retire_at.is_none_or(|at| at > now));
            for keys in std::iter::once(&orchestrator.keys).chain(valid.map(|k| &k.keys)) {
                if keys.is_empty() {
                    continue;
                }
                match keys.verify(header, body, now, tolerance_secs) {
                    Ok(timestamp) => return Ok((orchestrator, timestamp)),
                    Err(e) => last = e,
                }
            }
        }
        Err(last)
    }
}

//! The orchestrators allowed to call this provider, and which of them signed a request.

use provisio_protocol::signature::{SignatureError, SigningKeys};

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
            keys: SigningKeys::new(secrets),
        }
    }

    /// Replaces the signing secrets (the `--signing-secret` flag over the file's).
    pub fn with_secrets(mut self, secrets: &[String]) -> Self {
        self.keys = SigningKeys::new(secrets);
        self
    }
}

#[derive(Debug, Clone, Default)]
pub struct Orchestrators {
    list: Vec<Orchestrator>,
}

impl Orchestrators {
    pub fn new(list: Vec<Orchestrator>) -> Self {
        Self { list }
    }

    /// Whether any signing secret is configured at all; without one every signed call answers 500.
    pub fn has_secrets(&self) -> bool {
        self.list.iter().any(|o| !o.keys.is_empty())
    }

    pub fn all(&self) -> &[Orchestrator] {
        &self.list
    }

    pub fn get(&self, name: &str) -> Option<&Orchestrator> {
        self.list.iter().find(|o| o.name == name)
    }

    /// The orchestrator whose secret signed this request.
    pub fn verify(
        &self,
        header: Option<&[u8]>,
        body: &[u8],
        now: i64,
        tolerance_secs: u64,
    ) -> Result<&Orchestrator, SignatureError> {
        let mut last = SignatureError::Mismatch;
        for orchestrator in &self.list {
            match orchestrator.keys.verify(header, body, now, tolerance_secs) {
                Ok(()) => return Ok(orchestrator),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

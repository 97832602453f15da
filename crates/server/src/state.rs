//! What every handler shares: configuration resolved at start, the store, the clock.

use std::sync::Arc;

use axum::body::Bytes;
use provisio_protocol::types::ServicesResponse;

use crate::{
    catalog::Catalog,
    client_addr::TrustedProxies,
    clock::Clock,
    config::Limits,
    connector::{Connector, EventsSettings},
    domain::{
        auth::Principal,
        backend::{Analytics, ResourceBackend},
        billing::Billing,
        resources::Resources,
    },
    orchestrators::Orchestrators,
    rate_limit::{RateLimiter, RateLimits, RetryAfter, Scope},
    store::Store,
};

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Store,
    pub orchestrators: Orchestrators,
    pub catalog: Catalog,
    /// The services answer, serialized once: the catalog does not change while running.
    pub services_body: Bytes,
    /// `/llm-context.md`, written once from the catalog and `[provider]`.
    pub llm_context_body: Bytes,
    /// `[accounts]`: the account configuration schema and the scopes granted.
    pub accounts: crate::registration::AccountSettings,
    pub limits: Limits,
    /// Public base URL without a trailing slash.
    pub public_url: String,
    pub clock: Clock,
    pub billing: Billing,
    /// SHA-256 hashes of the operator tokens that may call the introspection endpoint.
    pub introspection_tokens: Vec<String>,
    /// SHA-256 hashes of the operator tokens with which the SaaS calls the inbound endpoints
    /// (`/v1/connector/…`); empty: those endpoints do not exist.
    pub operator_tokens: Vec<String>,
    pub server_secret: Vec<u8>,
    /// Where resources live.
    pub backend: Arc<dyn ResourceBackend>,
    pub rate_limiter: RateLimiter,
    /// Whose `X-Forwarded-For` names the client of a dashboard login.
    pub trusted_proxies: TrustedProxies,
    /// Connector mode: the SaaS owns users, projects, resources and the dashboard.
    pub connector: Option<Arc<Connector>>,
    /// Where events go (`[events]`); `None`: no events are written.
    pub events: Option<EventsSettings>,
    /// How the consent leg sends sign-in links (SMTP, or an outbox folder in development).
    pub mailer: Option<Arc<crate::email::Mailer>>,
    /// `[dashboard]`: the built-in dashboard's product name, logo, accent and link home.
    pub dashboard: crate::web::Brand,
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// Everything an [`AppState`] is built from.
pub struct Parts {
    pub store: Store,
    pub orchestrators: Orchestrators,
    pub catalog: Catalog,
    pub limits: Limits,
    pub public_url: String,
    pub clock: Clock,
    pub billing: Billing,
    /// Operator tokens for the introspection endpoint (plaintext here, hashed in the state).
    pub introspection_tokens: Vec<String>,
    /// Operator tokens for the inbound endpoints (plaintext here, hashed in the state).
    pub operator_tokens: Vec<String>,
    /// Key material for sealing recorded idempotent responses and the signing secrets kept in the
    /// database.
    pub server_secret: Vec<u8>,
    pub rate_limits: RateLimits,
    pub connector: Option<Connector>,
    pub events: Option<EventsSettings>,
    pub mailer: Option<crate::email::Mailer>,
    pub accounts: crate::registration::AccountSettings,
    pub provider: crate::registration::ProviderSpec,
    pub dashboard: crate::web::Brand,
}

impl AppState {
    pub fn new(parts: Parts) -> Self {
        crate::metrics::handle();
        let services = ServicesResponse { data: parts.catalog.services().to_vec() };
        let services_body = Bytes::from(serde_json::to_vec(&services).unwrap_or_default());
        let introspection_tokens = parts
            .introspection_tokens
            .iter()
            .filter(|t| !t.is_empty())
            .map(|t| crate::crypto::token_hash(t))
            .collect();
        let operator_tokens = parts
            .operator_tokens
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .map(crate::crypto::token_hash)
            .collect();
        let rate_limiter = RateLimiter::for_store(&parts.rate_limits, &parts.store);
        let llm_context = crate::registration::Registration {
            public_url: &parts.public_url,
            catalog: &parts.catalog,
            accounts: &parts.accounts,
            provider: &parts.provider,
            rate_limits: &parts.rate_limits,
            connector: parts.connector.is_some(),
        }
        .llm_context();
        Self(Arc::new(Inner {
            store: parts.store,
            orchestrators: parts.orchestrators,
            catalog: parts.catalog,
            services_body,
            llm_context_body: Bytes::from(llm_context),
            accounts: parts.accounts,
            limits: parts.limits,
            public_url: parts.public_url.trim_end_matches('/').to_string(),
            clock: parts.clock,
            billing: parts.billing,
            introspection_tokens,
            operator_tokens,
            server_secret: parts.server_secret,
            backend: Arc::new(Analytics),
            rate_limiter,
            trusted_proxies: parts.rate_limits.trusted_proxies,
            connector: parts.connector.map(Arc::new),
            events: parts.events,
            mailer: parts.mailer.map(Arc::new),
            dashboard: parts.dashboard,
        }))
    }

    /// Counts one call against a limit; `Err` carries the `Retry-After` seconds.
    pub async fn limit(&self, scope: Scope, key: &str) -> Result<(), u64> {
        self.rate_limiter.take(scope, key, self.clock.now_ms()).await.map_err(|RetryAfter(s)| {
            crate::metrics::rate_limited(scope.label());
            s
        })
    }

    /// The resource operations, for a token of `principal`'s orchestrator.
    pub fn resources<'s>(&'s self, principal: &Principal) -> Resources<'s> {
        let orchestrator_label = self
            .orchestrators
            .get(&principal.orchestrator)
            .map_or("the orchestrator", |o| o.label.as_str());
        Resources {
            store: &self.store,
            backend: &self.backend,
            catalog: &self.catalog,
            billing: &self.billing,
            public_url: &self.public_url,
            orchestrator_label,
            connector: self.connector.as_deref(),
            idempotency_key: None,
        }
    }
}

//! What every handler shares: configuration resolved at start, the store, the clock.

use std::sync::Arc;

use axum::body::Bytes;
use provisio_protocol::types::ServicesResponse;

use crate::{
    catalog::Catalog,
    clock::Clock,
    config::Limits,
    domain::{auth::Principal, billing::Billing, resources::Resources},
    orchestrators::Orchestrators,
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
    pub limits: Limits,
    /// Public base URL without a trailing slash.
    pub public_url: String,
    pub clock: Clock,
    pub billing: Billing,
    /// SHA-256 hashes of the operator tokens that may call the introspection endpoint.
    pub introspection_tokens: Vec<String>,
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(
        store: Store,
        orchestrators: Orchestrators,
        catalog: Catalog,
        limits: Limits,
        public_url: &str,
        clock: Clock,
        billing: Billing,
    ) -> Self {
        let services = ServicesResponse { data: catalog.services().to_vec() };
        let services_body = Bytes::from(serde_json::to_vec(&services).unwrap_or_default());
        Self(Arc::new(Inner {
            store,
            orchestrators,
            catalog,
            services_body,
            limits,
            public_url: public_url.trim_end_matches('/').to_string(),
            clock,
            billing,
            introspection_tokens: Vec::new(),
        }))
    }

    /// Allows these operator tokens on the introspection endpoint (kept only as hashes).
    pub fn with_introspection_tokens(self, tokens: &[String]) -> Self {
        let hashes =
            tokens.iter().filter(|t| !t.is_empty()).map(|t| crate::crypto::token_hash(t)).collect();
        match Arc::try_unwrap(self.0) {
            Ok(mut inner) => {
                inner.introspection_tokens = hashes;
                Self(Arc::new(inner))
            }
            Err(shared) => Self(shared),
        }
    }

    /// The resource operations, for a token of `principal`'s orchestrator.
    pub fn resources<'s>(&'s self, principal: &Principal) -> Resources<'s> {
        let orchestrator_label = self
            .orchestrators
            .get(&principal.orchestrator)
            .map_or("the orchestrator", |o| o.label.as_str());
        Resources {
            store: &self.store,
            catalog: &self.catalog,
            billing: &self.billing,
            public_url: &self.public_url,
            orchestrator_label,
        }
    }
}

//! What every handler shares: configuration resolved at start, the store, the clock.

use std::sync::Arc;

use axum::body::Bytes;
use provisio_protocol::types::ServicesResponse;

use crate::{
    catalog::Catalog, clock::Clock, config::Limits, orchestrators::Orchestrators, store::Store,
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
        }))
    }
}

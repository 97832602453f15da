//! `GET /provisioning/health` (spec 5.1).

use serde::{Deserialize, Serialize};

/// `{"status":"ok","supported_versions":["0.1d"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthResponse {
    pub status: String,
    pub supported_versions: Vec<String>,
}

impl HealthResponse {
    pub fn ok() -> Self {
        Self { status: "ok".into(), supported_versions: vec![crate::API_VERSION.into()] }
    }
}

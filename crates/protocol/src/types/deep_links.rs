//! `POST /provisioning/deep_links` (spec 5.10): a one-time URL that logs the user into the dashboard.

use serde::{Deserialize, Serialize};

/// The only purpose provisio supports.
pub const DEEP_LINK_PURPOSE_DASHBOARD: &str = "dashboard";

/// Both fields optional at the serde level: a missing or other `purpose` gets the provider's own
/// flat error, and an absent `resource_id` means the token's primary project.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeepLinkRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
}

/// `{"purpose":"dashboard","url":"…/login?token=…&project_id=…","expires_at":"<RFC 3339>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeepLinkResponse {
    pub purpose: String,
    pub url: String,
    /// RFC 3339, formatted by the provider.
    pub expires_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn response_shape() {
        let r = DeepLinkResponse {
            purpose: DEEP_LINK_PURPOSE_DASHBOARD.into(),
            url: "https://p.example/login?token=t&project_id=3".into(),
            expires_at: "2026-01-01T00:10:00Z".into(),
        };
        let wire = json!({"purpose":"dashboard","url":"https://p.example/login?token=t&project_id=3",
            "expires_at":"2026-01-01T00:10:00Z"});
        assert_eq!(serde_json::to_value(&r).unwrap(), wire);
        assert_eq!(serde_json::from_value::<DeepLinkResponse>(wire).unwrap(), r);
    }

    #[test]
    fn request_fields_nulls_and_unknown_fields() {
        let r: DeepLinkRequest =
            serde_json::from_value(json!({"purpose":"dashboard","resource_id":"7","x":1})).unwrap();
        assert_eq!(r.purpose.as_deref(), Some("dashboard"));
        assert_eq!(r.resource_id.as_deref(), Some("7"));
        let empty: DeepLinkRequest =
            serde_json::from_value(json!({"purpose":null,"resource_id":null,"other":null}))
                .unwrap();
        assert_eq!(empty, DeepLinkRequest::default());
        assert_eq!(serde_json::from_value::<DeepLinkRequest>(json!({})).unwrap(), empty);
    }
}

//! `resources` and its sub-resources (spec 5.5–5.9): create, read, `update_service`,
//! `rotate_credentials` and `remove`. Only create and `update_service` carry a body; all five answer
//! with a [`ResourceResponse`] (or a status error).
//!
//! Request fields are optional at the serde level: the provider answers each missing or wrong one
//! with its own status error (`missing_service_id`, `unknown_service`, …) rather than a parse error.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Body of `POST /provisioning/resources`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateResourceRequest {
    /// Absent: the catalog's default deployable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_id: Option<String>,
    /// Validated against the service's `configuration_schema` by the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<Value>,
    /// The orchestrator's project id: the idempotency key of the create.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orchestrator_resource_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_credentials: Option<PaymentCredentials>,
    /// Who asked (the orchestrator's user or agent); recorded, never interpreted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Value>,
}

impl CreateResourceRequest {
    /// The Shared Payment Token, if the request carries a usable one.
    pub fn payment_token(&self) -> Option<&str> {
        self.payment_credentials.as_ref()?.shared_payment_token()
    }
}

/// Body of `POST /provisioning/resources/{id}/update_service`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateServiceRequest {
    /// Required by the provider (`missing_service_id`), optional here so that it can say so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_credentials: Option<PaymentCredentials>,
}

impl UpdateServiceRequest {
    /// The Shared Payment Token, if the request carries a usable one.
    pub fn payment_token(&self) -> Option<&str> {
        self.payment_credentials.as_ref()?.shared_payment_token()
    }
}

/// `{"type":"stripe_payment_token","stripe_payment_token":"spt_…"}`. The type is kept as a string so
/// that a credential of another type still parses and can be ignored (spec 6) instead of failing
/// the whole body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaymentCredentials {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stripe_payment_token: Option<String>,
}

impl PaymentCredentials {
    /// The only `type` provisio acts on.
    pub const STRIPE_PAYMENT_TOKEN: &'static str = "stripe_payment_token";

    /// A Stripe Shared Payment Token.
    pub fn stripe(token: impl Into<String>) -> Self {
        Self {
            kind: Some(Self::STRIPE_PAYMENT_TOKEN.into()),
            stripe_payment_token: Some(token.into()),
        }
    }

    /// The token when this is a non-blank Stripe Shared Payment Token; `None` for any other type,
    /// which the provider treats like no credential at all.
    pub fn shared_payment_token(&self) -> Option<&str> {
        if self.kind.as_deref() != Some(Self::STRIPE_PAYMENT_TOKEN) {
            return None;
        }
        self.stripe_payment_token.as_deref().filter(|t| !t.trim().is_empty())
    }
}

/// The success answers of every resource endpoint:
/// `{"status":"complete","id","complete":{"access_configuration":{…}}}` or `{"status":"removed","id"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ResourceResponse {
    Complete { id: String, complete: ResourceComplete },
    Removed { id: String },
}

/// The `complete` object. Values are flat strings (spec 5.5); a `BTreeMap` keeps the key order
/// stable, so that identical answers serialize to identical bytes (idempotent replays compare
/// equal).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResourceComplete {
    pub access_configuration: BTreeMap<String, String>,
}

impl ResourceResponse {
    pub fn complete(id: impl Into<String>, access_configuration: BTreeMap<String, String>) -> Self {
        Self::Complete { id: id.into(), complete: ResourceComplete { access_configuration } }
    }

    pub fn removed(id: impl Into<String>) -> Self {
        Self::Removed { id: id.into() }
    }

    /// The resource id, whatever the status.
    pub fn id(&self) -> &str {
        match self {
            Self::Complete { id, .. } | Self::Removed { id } => id,
        }
    }

    /// The access configuration of a complete resource.
    pub fn access_configuration(&self) -> Option<&BTreeMap<String, String>> {
        match self {
            Self::Complete { complete, .. } => Some(&complete.access_configuration),
            Self::Removed { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wire<T: Serialize>(v: &T) -> Value {
        serde_json::to_value(v).unwrap()
    }

    #[test]
    fn complete_shape() {
        let config = BTreeMap::from([
            ("api_key".to_string(), "phc_1".to_string()),
            ("host".to_string(), "https://p.example".to_string()),
            ("personal_api_key".to_string(), "phx_1".to_string()),
        ]);
        let r = ResourceResponse::complete("17", config.clone());
        assert_eq!(
            wire(&r),
            json!({"status":"complete","id":"17","complete":{"access_configuration":{
                "api_key":"phc_1","host":"https://p.example","personal_api_key":"phx_1"}}})
        );
        assert_eq!(r.id(), "17");
        assert_eq!(r.access_configuration(), Some(&config));
        // Keys in sorted order, status first: the same answer is always the same bytes.
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"status":"complete","id":"17","complete":{"access_configuration":{"api_key":"phc_1","host":"https://p.example","personal_api_key":"phx_1"}}}"#
        );
    }

    #[test]
    fn removed_shape() {
        let r = ResourceResponse::removed("17");
        assert_eq!(wire(&r), json!({"status":"removed","id":"17"}));
        assert_eq!(r.id(), "17");
        assert_eq!(r.access_configuration(), None);
    }

    #[test]
    fn responses_read_back() {
        for v in [
            json!({"status":"complete","id":"1","complete":{"access_configuration":{"k":"v"}}}),
            json!({"status":"removed","id":"1"}),
        ] {
            let r: ResourceResponse = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(wire(&r), v);
        }
        assert!(
            serde_json::from_value::<ResourceResponse>(json!({"status":"pending","id":"1"}))
                .is_err()
        );
    }

    #[test]
    fn create_reads_every_field() {
        let r: CreateResourceRequest = serde_json::from_value(json!({
            "service_id": "analytics", "configuration": {"project_name": "web"},
            "project_id": "proj_1", "orchestrator_resource_id": "res_1", "environment": "production",
            "payment_credentials": {"type": "stripe_payment_token", "stripe_payment_token": "spt_1"},
            "actor": {"type": "agent"}
        }))
        .unwrap();
        assert_eq!(r.service_id.as_deref(), Some("analytics"));
        assert_eq!(r.configuration, Some(json!({"project_name": "web"})));
        assert_eq!(r.project_id.as_deref(), Some("proj_1"));
        assert_eq!(r.orchestrator_resource_id.as_deref(), Some("res_1"));
        assert_eq!(r.environment.as_deref(), Some("production"));
        assert_eq!(r.payment_token(), Some("spt_1"));
        assert_eq!(r.actor, Some(json!({"type": "agent"})));
    }

    #[test]
    fn nulls_are_absent_and_unknown_fields_ignored() {
        let create: CreateResourceRequest = serde_json::from_value(json!({
            "service_id": null, "configuration": null, "project_id": null,
            "orchestrator_resource_id": null, "environment": null, "payment_credentials": null,
            "actor": null, "surprise": [1, 2]
        }))
        .unwrap();
        assert_eq!(create, CreateResourceRequest::default());
        let update: UpdateServiceRequest = serde_json::from_value(json!({
            "service_id": null, "configuration": null, "payment_credentials": null, "extra": {}
        }))
        .unwrap();
        assert_eq!(update, UpdateServiceRequest::default());
        assert_eq!(serde_json::from_value::<UpdateServiceRequest>(json!({})).unwrap(), update);
    }

    #[test]
    fn update_service_reads_its_fields() {
        let r: UpdateServiceRequest = serde_json::from_value(json!({
            "service_id": "pay_as_you_go", "configuration": {"limit": null},
            "payment_credentials": {"type": "stripe_payment_token", "stripe_payment_token": "spt_2"}
        }))
        .unwrap();
        assert_eq!(r.service_id.as_deref(), Some("pay_as_you_go"));
        // A null inside the configuration is the caller's meaning, kept as sent.
        assert_eq!(r.configuration, Some(json!({"limit": null})));
        assert_eq!(r.payment_token(), Some("spt_2"));
    }

    #[test]
    fn other_payment_credential_types_parse_and_are_ignored() {
        let r: UpdateServiceRequest = serde_json::from_value(json!({
            "service_id": "pay_as_you_go",
            "payment_credentials": {"type": "card_token", "card_token": {"id": "tok_1"}}
        }))
        .unwrap();
        let credentials = r.payment_credentials.as_ref().unwrap();
        assert_eq!(credentials.kind.as_deref(), Some("card_token"));
        assert_eq!(r.payment_token(), None);
        for ignored in [
            json!({"stripe_payment_token": "spt_1"}),
            json!({"type": "other", "stripe_payment_token": "spt_1"}),
            json!({"type": "stripe_payment_token"}),
            json!({"type": "stripe_payment_token", "stripe_payment_token": " "}),
            json!({"type": null, "stripe_payment_token": null}),
        ] {
            let c: PaymentCredentials = serde_json::from_value(ignored.clone()).unwrap();
            assert_eq!(c.shared_payment_token(), None, "{ignored}");
        }
    }

    #[test]
    fn stripe_credentials_shape() {
        assert_eq!(
            wire(&PaymentCredentials::stripe("spt_1")),
            json!({"type":"stripe_payment_token","stripe_payment_token":"spt_1"})
        );
    }
}

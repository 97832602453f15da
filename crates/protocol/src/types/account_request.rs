//! `POST /provisioning/account_requests` (spec 5.3).
//!
//! Every request field is optional at the serde level: the provider validates in the spec's check
//! order with its own messages, so a missing email must reach that validation rather than fail here.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kyc: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_capabilities: Option<Vec<String>>,
    /// Kept raw: `team_id` must be told apart as integer, digit string or anything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<Map<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation_secret: Option<String>,
    /// RFC 3339; validated by the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orchestrator: Option<OrchestratorRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_method: Option<String>,
}

/// `{type:"stripe",stripe:{account:"acct_…",organization?}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrchestratorRef {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stripe: Option<StripeOrchestrator>,
}

/// Deserialized through [`StripeOrchestratorWire`] so that both spellings of `organization` are
/// accepted, even together (a serde `alias` would refuse `{"organization":null,"organisation":"x"}`
/// as a duplicate field, although a null must count as absent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(from = "StripeOrchestratorWire")]
pub struct StripeOrchestrator {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
}

/// What the orchestrator may send; the American spelling wins when both carry a value.
#[derive(Deserialize)]
struct StripeOrchestratorWire {
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    organization: Option<String>,
    #[serde(default)]
    organisation: Option<String>,
}

impl From<StripeOrchestratorWire> for StripeOrchestrator {
    fn from(wire: StripeOrchestratorWire) -> Self {
        Self { account: wire.account, organization: wire.organization.or(wire.organisation) }
    }
}

impl AccountRequest {
    /// `orchestrator.stripe.account`, if present and non-empty.
    pub fn orchestrator_account(&self) -> Option<&str> {
        self.orchestrator
            .as_ref()?
            .stripe
            .as_ref()?
            .account
            .as_deref()
            .filter(|a| !a.trim().is_empty())
    }

    /// A `configuration` key, treating an explicit `null` as absent.
    pub fn configuration_value(&self, key: &str) -> Option<&Value> {
        self.configuration.as_ref()?.get(key).filter(|v| !v.is_null())
    }
}

/// The three success shapes, each with the request's `id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountRequestResponse {
    pub id: String,
    #[serde(flatten)]
    pub outcome: AccountOutcome,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AccountOutcome {
    Oauth { oauth: OAuthCode },
    Credentials { credentials: Credentials },
    RequiresAuth { requires_auth: RequiresAuth },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OAuthCode {
    pub code: String,
}

/// `{"type":"bearer","bearer":{…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Credentials {
    Bearer { bearer: BearerCredentials },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BearerCredentials {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    pub account: CredentialsAccount,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CredentialsAccount {
    pub id: String,
    pub payment_credentials: String,
}

/// `{"type":"redirect","redirect":{"url":…}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RequiresAuth {
    Redirect { redirect: Redirect },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Redirect {
    pub url: String,
}

/// The value of `payment_credentials`: the orchestrator supplies payment tokens (spec 6).
pub const PAYMENT_CREDENTIALS_ORCHESTRATOR: &str = "orchestrator";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn success_shapes() {
        let oauth = AccountRequestResponse {
            id: "ar_1".into(),
            outcome: AccountOutcome::Oauth { oauth: OAuthCode { code: "c".into() } },
        };
        assert_eq!(
            serde_json::to_value(&oauth).unwrap(),
            json!({"id":"ar_1","type":"oauth","oauth":{"code":"c"}})
        );
        let creds = AccountRequestResponse {
            id: "ar_1".into(),
            outcome: AccountOutcome::Credentials {
                credentials: Credentials::Bearer {
                    bearer: BearerCredentials {
                        access_token: "a".into(),
                        refresh_token: "r".into(),
                        expires_in: 60,
                        account: CredentialsAccount {
                            id: "org_1".into(),
                            payment_credentials: "orchestrator".into(),
                        },
                    },
                },
            },
        };
        assert_eq!(
            serde_json::to_value(&creds).unwrap(),
            json!({"id":"ar_1","type":"credentials","credentials":{"type":"bearer","bearer":{
                "access_token":"a","refresh_token":"r","expires_in":60,
                "account":{"id":"org_1","payment_credentials":"orchestrator"}}}})
        );
        let consent = AccountRequestResponse {
            id: "ar_1".into(),
            outcome: AccountOutcome::RequiresAuth {
                requires_auth: RequiresAuth::Redirect {
                    redirect: Redirect { url: "https://x".into() },
                },
            },
        };
        assert_eq!(
            serde_json::to_value(&consent).unwrap(),
            json!({"id":"ar_1","type":"requires_auth","requires_auth":{"type":"redirect","redirect":{"url":"https://x"}}})
        );
    }

    #[test]
    fn nulls_unknown_fields_and_the_british_spelling() {
        let r: AccountRequest = serde_json::from_value(json!({
            "id": "ar_1", "email": null, "name": null, "surprise": 1,
            "configuration": {"team_id": null, "organization_name": "Acme"},
            "orchestrator": {"type": "stripe", "stripe": {"account": "acct_1", "organisation": "org"}}
        }))
        .unwrap();
        assert_eq!(r.email, None);
        assert_eq!(r.orchestrator_account(), Some("acct_1"));
        assert_eq!(r.orchestrator.unwrap().stripe.unwrap().organization.as_deref(), Some("org"));
        assert!(r.configuration.is_some());
    }

    #[test]
    fn null_team_id_is_absent() {
        let r: AccountRequest =
            serde_json::from_value(json!({"configuration": {"team_id": null}})).unwrap();
        assert_eq!(r.configuration_value("team_id"), None);
    }

    #[test]
    fn every_field_null_is_an_empty_request() {
        let fields = [
            "id",
            "object",
            "email",
            "name",
            "phone",
            "country",
            "scopes",
            "kyc",
            "client_capabilities",
            "configuration",
            "confirmation_secret",
            "expires_at",
            "orchestrator",
            "code_challenge",
            "code_challenge_method",
        ];
        let body: Map<String, Value> =
            fields.iter().map(|f| (f.to_string(), Value::Null)).collect();
        let r: AccountRequest = serde_json::from_value(Value::Object(body)).unwrap();
        assert_eq!(r, AccountRequest::default());
        assert_eq!(serde_json::from_value::<AccountRequest>(json!({})).unwrap(), r);
    }

    #[test]
    fn full_request_reads_every_field() {
        let r: AccountRequest = serde_json::from_value(json!({
            "id": "ar_1", "object": "account_request", "email": "a@b.example", "name": "Ada L",
            "phone": "+1", "country": "GB", "scopes": ["read", "write"], "kyc": {"x": 1},
            "client_capabilities": ["browser"], "confirmation_secret": "cs",
            "expires_at": "2026-01-01T00:00:00Z", "code_challenge": "c", "code_challenge_method": "S256",
            "orchestrator": {"type": "stripe", "stripe": {"account": "acct_1", "organization": "o"}}
        }))
        .unwrap();
        assert_eq!(r.email.as_deref(), Some("a@b.example"));
        assert_eq!(r.scopes, Some(vec!["read".to_string(), "write".to_string()]));
        assert_eq!(r.kyc, Some(json!({"x": 1})));
        assert_eq!(r.expires_at.as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(r.code_challenge_method.as_deref(), Some("S256"));
        let orchestrator = r.orchestrator.unwrap();
        assert_eq!(orchestrator.kind.as_deref(), Some("stripe"));
        assert_eq!(orchestrator.stripe.unwrap().organization.as_deref(), Some("o"));
    }

    #[test]
    fn team_id_stays_raw() {
        for raw in [json!(7), json!("7"), json!(" 7 "), json!(7.5), json!(true), json!("x")] {
            let r: AccountRequest =
                serde_json::from_value(json!({"configuration": {"team_id": raw.clone()}})).unwrap();
            assert_eq!(r.configuration_value("team_id"), Some(&raw));
        }
    }

    #[test]
    fn both_spellings_of_organization() {
        let stripe = |v: Value| serde_json::from_value::<StripeOrchestrator>(v).unwrap();
        assert_eq!(stripe(json!({"organisation": "uk"})).organization.as_deref(), Some("uk"));
        let mixed = stripe(json!({"organization": null, "organisation": "uk"}));
        assert_eq!(mixed.organization.as_deref(), Some("uk"));
        let both = stripe(json!({"organization": "us", "organisation": "uk"}));
        assert_eq!(both.organization.as_deref(), Some("us"));
        // Written back with the spec's spelling only.
        assert_eq!(serde_json::to_value(&both).unwrap(), json!({"organization": "us"}));
    }

    #[test]
    fn blank_orchestrator_account_is_missing() {
        let r: AccountRequest = serde_json::from_value(
            json!({"orchestrator": {"type": "stripe", "stripe": {"account": "  "}}}),
        )
        .unwrap();
        assert_eq!(r.orchestrator_account(), None);
    }

    #[test]
    fn responses_read_back() {
        for v in [
            json!({"id":"ar_1","type":"oauth","oauth":{"code":"c"}}),
            json!({"id":"ar_1","type":"requires_auth","requires_auth":{"type":"redirect","redirect":{"url":"u"}}}),
        ] {
            let r: AccountRequestResponse = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(serde_json::to_value(&r).unwrap(), v);
        }
    }
}

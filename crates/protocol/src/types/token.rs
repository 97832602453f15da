//! `POST /oauth/token` (spec 5.4) and the RFC 8414 metadata that describes it.

use serde::{Deserialize, Serialize};

/// Form (or JSON) fields of a token request. All optional: the endpoint answers each missing one
/// with its own error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_verifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// 200 answer; `account` only for the `authorization_code` grant. No `scope` key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    pub token_type: String,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<TokenAccount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenAccount {
    /// The organization id.
    pub id: String,
    pub payment_credentials: String,
    pub available_teams: Vec<Team>,
}

/// A project the user could pick ("team" in the protocol's words).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Team {
    pub id: i64,
    pub name: String,
    pub organization_id: String,
    pub organization_name: String,
}

/// RFC 8414 authorization server metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthorizationServerMetadata {
    pub issuer: String,
    pub token_endpoint: String,
    pub grant_types_supported: Vec<String>,
    pub response_types_supported: Vec<String>,
    pub code_challenge_methods_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refresh_answer_has_no_account_and_no_scope() {
        let r = TokenResponse {
            token_type: "bearer".into(),
            access_token: "a".into(),
            refresh_token: "r".into(),
            expires_in: 5,
            account: None,
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"token_type":"bearer","access_token":"a","refresh_token":"r","expires_in":5})
        );
    }

    #[test]
    fn code_answer_carries_the_account_and_its_teams() {
        let r = TokenResponse {
            token_type: "bearer".into(),
            access_token: "a".into(),
            refresh_token: "r".into(),
            expires_in: 31_536_000,
            account: Some(TokenAccount {
                id: "org_1".into(),
                payment_credentials: crate::types::PAYMENT_CREDENTIALS_ORCHESTRATOR.into(),
                available_teams: vec![Team {
                    id: 42,
                    name: "Default project".into(),
                    organization_id: "org_1".into(),
                    organization_name: "Acme".into(),
                }],
            }),
        };
        let wire = json!({"token_type":"bearer","access_token":"a","refresh_token":"r",
            "expires_in":31_536_000,"account":{"id":"org_1","payment_credentials":"orchestrator",
            "available_teams":[{"id":42,"name":"Default project","organization_id":"org_1",
            "organization_name":"Acme"}]}});
        assert_eq!(serde_json::to_value(&r).unwrap(), wire);
        assert_eq!(serde_json::from_value::<TokenResponse>(wire).unwrap(), r);
    }

    #[test]
    fn request_nulls_are_absent_and_unknown_fields_ignored() {
        let r: TokenRequest = serde_json::from_value(json!({
            "grant_type": "refresh_token", "code": null, "code_verifier": null,
            "refresh_token": "rt", "client_id": "ignored", "scope": ["x"]
        }))
        .unwrap();
        assert_eq!(
            r,
            TokenRequest {
                grant_type: Some("refresh_token".into()),
                refresh_token: Some("rt".into()),
                ..TokenRequest::default()
            }
        );
        assert_eq!(
            serde_json::from_value::<TokenRequest>(json!({})).unwrap(),
            TokenRequest::default()
        );
    }

    #[test]
    fn metadata_shape() {
        let m = AuthorizationServerMetadata {
            issuer: "https://p.example".into(),
            token_endpoint: "https://p.example/oauth/token".into(),
            grant_types_supported: vec!["authorization_code".into(), "refresh_token".into()],
            response_types_supported: vec!["code".into()],
            code_challenge_methods_supported: vec!["S256".into()],
            token_endpoint_auth_methods_supported: vec!["none".into()],
        };
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"issuer":"https://p.example","token_endpoint":"https://p.example/oauth/token",
                "grant_types_supported":["authorization_code","refresh_token"],
                "response_types_supported":["code"],"code_challenge_methods_supported":["S256"],
                "token_endpoint_auth_methods_supported":["none"]})
        );
    }
}

//! The four error envelopes of APP 0.1d (spec 4). Clients branch on the shape, so each envelope is its
//! own type with private fields and a code enum of its own: a handler can only build a shape the spec
//! allows, and the HTTP status travels with the code.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares a code enum: wire name and HTTP status of each variant, in one table.
macro_rules! codes {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = ($wire:literal, $status:literal)),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// The code as it appears on the wire.
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $wire),+ }
            }

            /// The HTTP status this code is answered with.
            pub const fn status(self) -> u16 {
                match self { $(Self::$variant => $status),+ }
            }

            /// The code for a wire name, if it is one of ours.
            pub fn from_wire(wire: &str) -> Option<Self> {
                match wire { $($wire => Some(Self::$variant),)+ _ => None }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let wire = String::deserialize(d)?;
                Self::from_wire(&wire)
                    .ok_or_else(|| serde::de::Error::custom(format!("unknown error code {wire:?}")))
            }
        }

        /// A string whose values are the codes' wire names.
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::string_enum(&[$($wire),+])
            }
        }

        /// Named `…ErrorCode` in a document: `OAuthCode` is also the account request's grant.
        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                stringify!($name).replace("Code", "ErrorCode").into()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

codes! {
    /// Codes of the flat envelope: transport-level failures on every endpoint, and `deep_links` errors
    /// other than bearer failures.
    FlatCode {
        InvalidSignature = ("invalid_signature", 401),
        InvalidApiVersion = ("invalid_api_version", 400),
        InvalidRequest = ("invalid_request", 400),
        UnsupportedPurpose = ("unsupported_purpose", 400),
        Unauthorized = ("unauthorized", 401),
        Forbidden = ("forbidden", 403),
        NotFound = ("not_found", 404),
        MethodNotAllowed = ("method_not_allowed", 405),
        IdempotencyConflict = ("idempotency_conflict", 409),
        RequestTooLarge = ("request_too_large", 413),
        RateLimited = ("rate_limited", 429),
        ServerError = ("server_error", 500),
        Timeout = ("timeout", 503),
    }
}

codes! {
    /// Codes of the typed envelope (`account_requests`); `provider_unavailable`: the SaaS behind
    /// the provider did not answer in time (connector mode); `invalid_configuration`: the
    /// request's `configuration` breaks the provider's account configuration schema.
    TypedCode {
        InvalidRequest = ("invalid_request", 400),
        InvalidConfiguration = ("invalid_configuration", 400),
        Expired = ("expired", 400),
        TeamResolutionFailed = ("team_resolution_failed", 400),
        Unauthorized = ("unauthorized", 401),
        RateLimited = ("rate_limited", 429),
        AccountCreationFailed = ("account_creation_failed", 500),
        ProviderUnavailable = ("provider_unavailable", 503),
    }
}

codes! {
    /// Codes of the status envelope (`resources*`, and bearer failures on `deep_links`).
    /// `provider_refused` and `provider_unavailable` are provisio's connector mode: the SaaS behind
    /// the provider refused with a code APP has no name for, or did not answer in time.
    StatusCode {
        InvalidRequest = ("invalid_request", 400),
        InvalidResourceId = ("invalid_resource_id", 400),
        UnknownService = ("unknown_service", 400),
        InvalidConfiguration = ("invalid_configuration", 400),
        RequiresPaymentCredentials = ("requires_payment_credentials", 400),
        NoTeam = ("no_team", 400),
        MissingServiceId = ("missing_service_id", 400),
        UpdateNotAllowed = ("update_not_allowed", 400),
        BillingActivationFailed = ("billing_activation_failed", 400),
        Unauthorized = ("unauthorized", 401),
        Forbidden = ("forbidden", 403),
        NotFound = ("not_found", 404),
        InvalidState = ("invalid_state", 409),
        IdempotencyConflict = ("idempotency_conflict", 409),
        RateLimited = ("rate_limited", 429),
        ProviderRefused = ("provider_refused", 400),
        CredentialRotationFailed = ("credential_rotation_failed", 500),
        ServerError = ("server_error", 500),
        ProviderUnavailable = ("provider_unavailable", 503),
    }
}

codes! {
    /// RFC 6749 codes of the oauth envelope (`/oauth/token`). The status is the usual one; the two
    /// 401 answers of spec 5.4 are built with [`OAuthError::unauthenticated`].
    OAuthCode {
        InvalidRequest = ("invalid_request", 400),
        InvalidGrant = ("invalid_grant", 400),
        UnsupportedGrantType = ("unsupported_grant_type", 400),
        RateLimited = ("rate_limited", 429),
        ServerError = ("server_error", 500),
    }
}

/// `{"code":…,"message":…}`, the inner object of the flat, typed and status envelopes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody<C> {
    pub code: C,
    pub message: String,
}

/// `{"error":{"code","message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlatError {
    error: ErrorBody<FlatCode>,
}

impl FlatError {
    pub fn new(code: FlatCode, message: impl Into<String>) -> Self {
        Self { error: ErrorBody { code, message: message.into() } }
    }

    /// Every signature failure answers the same words, whatever the reason (spec 3.4).
    pub fn invalid_signature() -> Self {
        Self::new(FlatCode::InvalidSignature, "Signature verification failed")
    }

    pub fn code(&self) -> FlatCode {
        self.error.code
    }

    pub fn message(&self) -> &str {
        &self.error.message
    }

    pub fn status(&self) -> u16 {
        self.error.code.status()
    }
}

/// The constant `"type":"error"` of the typed envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
enum ErrorTag {
    #[default]
    Error,
}

/// `{"id":"<request id>","type":"error","error":{"code","message"}}`; `id` is absent for errors about
/// the envelope and its authentication, present once the request is authenticated (spec 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TypedError {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(rename = "type")]
    tag: ErrorTag,
    error: ErrorBody<TypedCode>,
    /// A refusal by the SaaS behind the provider: answered 400 whatever the code's usual status.
    #[serde(skip)]
    refusal: bool,
}

impl TypedError {
    /// An error raised before the request is authenticated: no `id`.
    pub fn anonymous(code: TypedCode, message: impl Into<String>) -> Self {
        Self {
            id: None,
            tag: ErrorTag::Error,
            error: ErrorBody { code, message: message.into() },
            refusal: false,
        }
    }

    /// An error raised once the request is authenticated: carries the request's `id`.
    pub fn for_request(id: impl Into<String>, code: TypedCode, message: impl Into<String>) -> Self {
        Self {
            id: Some(id.into()),
            tag: ErrorTag::Error,
            error: ErrorBody { code, message: message.into() },
            refusal: false,
        }
    }

    /// The same error as a refusal of the SaaS behind the provider (connector mode): 400, as a
    /// decision about the request, where the code alone would say the provider failed (e.g.
    /// `account_creation_failed`, otherwise 500).
    pub fn refusal(self) -> Self {
        Self { refusal: true, ..self }
    }

    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    pub fn code(&self) -> TypedCode {
        self.error.code
    }

    pub fn message(&self) -> &str {
        &self.error.message
    }

    pub fn status(&self) -> u16 {
        if self.refusal { 400 } else { self.error.code.status() }
    }
}

/// The constant `"status":"error"` of the status envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
enum StatusTag {
    #[default]
    Error,
}

/// `{"status":"error","id":"<resource id or \"\">","error":{"code","message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusError {
    status: StatusTag,
    id: String,
    error: ErrorBody<StatusCode>,
}

impl StatusError {
    /// `id` is the resource id the request named, or `""` when there is none.
    pub fn new(id: impl Into<String>, code: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status: StatusTag::Error,
            id: id.into(),
            error: ErrorBody { code, message: message.into() },
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn code(&self) -> StatusCode {
        self.error.code
    }

    pub fn message(&self) -> &str {
        &self.error.message
    }

    pub fn status(&self) -> u16 {
        self.error.code.status()
    }
}

/// `{"error":"<rfc6749 code>","error_description":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OAuthError {
    error: OAuthCode,
    error_description: String,
    #[serde(skip)]
    unauthenticated: bool,
}

impl OAuthError {
    pub fn new(code: OAuthCode, description: impl Into<String>) -> Self {
        Self { error: code, error_description: description.into(), unauthenticated: false }
    }

    /// 401 `invalid_request`: the request lacks the credential the grant needs (spec 5.4).
    pub fn unauthenticated(description: impl Into<String>) -> Self {
        Self {
            error: OAuthCode::InvalidRequest,
            error_description: description.into(),
            unauthenticated: true,
        }
    }

    pub fn code(&self) -> OAuthCode {
        self.error
    }

    pub fn description(&self) -> &str {
        &self.error_description
    }

    pub fn status(&self) -> u16 {
        if self.unauthenticated { 401 } else { self.error.status() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wire<T: Serialize>(v: &T) -> serde_json::Value {
        serde_json::to_value(v).unwrap()
    }

    #[test]
    fn flat_shape() {
        let e = FlatError::invalid_signature();
        assert_eq!(
            wire(&e),
            json!({"error":{"code":"invalid_signature","message":"Signature verification failed"}})
        );
        assert_eq!(e.status(), 401);
    }

    #[test]
    fn typed_shape_with_and_without_id() {
        let anon = TypedError::anonymous(TypedCode::Unauthorized, "Authentication required");
        assert_eq!(
            wire(&anon),
            json!({"type":"error","error":{"code":"unauthorized","message":"Authentication required"}})
        );
        let with = TypedError::for_request("req_1", TypedCode::TeamResolutionFailed, "x");
        assert_eq!(
            wire(&with),
            json!({"id":"req_1","type":"error","error":{"code":"team_resolution_failed","message":"x"}})
        );
    }

    #[test]
    fn status_shape() {
        let e = StatusError::new("", StatusCode::Unauthorized, "Missing bearer token");
        assert_eq!(
            wire(&e),
            json!({"status":"error","id":"","error":{"code":"unauthorized","message":"Missing bearer token"}})
        );
        assert_eq!(StatusCode::Forbidden.status(), 403);
    }

    #[test]
    fn oauth_shape_and_status() {
        let e = OAuthError::new(OAuthCode::UnsupportedGrantType, "Unsupported grant_type: x");
        assert_eq!(
            wire(&e),
            json!({"error":"unsupported_grant_type","error_description":"Unsupported grant_type: x"})
        );
        assert_eq!(e.status(), 400);
        assert_eq!(OAuthError::unauthenticated("Authentication required").status(), 401);
    }

    #[test]
    fn envelopes_round_trip() {
        let e = TypedError::for_request("r", TypedCode::Expired, "Account request has expired");
        let back: TypedError = serde_json::from_value(wire(&e)).unwrap();
        assert_eq!(back, e);
        assert!(
            serde_json::from_value::<FlatError>(json!({"error":{"code":"nope","message":""}}))
                .is_err()
        );
    }
}

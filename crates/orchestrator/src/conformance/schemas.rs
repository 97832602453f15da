//! JSON Schemas of APP 0.1d answers, written from the spec and shipped inside the crate, so a run
//! needs nothing but the provider's URL and secret.

use jsonschema::Validator;
use serde_json::Value;

/// One shipped schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    Health,
    Services,
    AccountRequest,
    TokenCode,
    TokenRefresh,
    ResourceComplete,
    ResourceRemoved,
    DeepLink,
    ErrorFlat,
    ErrorTyped,
    ErrorOAuth,
    ErrorStatus,
}

impl Schema {
    pub const ALL: [Self; 12] = [
        Self::Health,
        Self::Services,
        Self::AccountRequest,
        Self::TokenCode,
        Self::TokenRefresh,
        Self::ResourceComplete,
        Self::ResourceRemoved,
        Self::DeepLink,
        Self::ErrorFlat,
        Self::ErrorTyped,
        Self::ErrorOAuth,
        Self::ErrorStatus,
    ];

    /// The file name, as the report names it.
    pub const fn file(self) -> &'static str {
        match self {
            Self::Health => "health.json",
            Self::Services => "services.json",
            Self::AccountRequest => "account_request.json",
            Self::TokenCode => "token_code.json",
            Self::TokenRefresh => "token_refresh.json",
            Self::ResourceComplete => "resource_complete.json",
            Self::ResourceRemoved => "resource_removed.json",
            Self::DeepLink => "deep_link.json",
            Self::ErrorFlat => "error_flat.json",
            Self::ErrorTyped => "error_typed.json",
            Self::ErrorOAuth => "error_oauth.json",
            Self::ErrorStatus => "error_status.json",
        }
    }

    const fn text(self) -> &'static str {
        match self {
            Self::Health => include_str!("schemas/health.json"),
            Self::Services => include_str!("schemas/services.json"),
            Self::AccountRequest => include_str!("schemas/account_request.json"),
            Self::TokenCode => include_str!("schemas/token_code.json"),
            Self::TokenRefresh => include_str!("schemas/token_refresh.json"),
            Self::ResourceComplete => include_str!("schemas/resource_complete.json"),
            Self::ResourceRemoved => include_str!("schemas/resource_removed.json"),
            Self::DeepLink => include_str!("schemas/deep_link.json"),
            Self::ErrorFlat => include_str!("schemas/error_flat.json"),
            Self::ErrorTyped => include_str!("schemas/error_typed.json"),
            Self::ErrorOAuth => include_str!("schemas/error_oauth.json"),
            Self::ErrorStatus => include_str!("schemas/error_status.json"),
        }
    }
}

/// Every schema, compiled once per run.
pub struct Schemas {
    validators: Vec<(Schema, Validator)>,
}

impl Schemas {
    /// Compiles the shipped schemas; an error here is a bug in the crate, not in the provider.
    pub fn load() -> Result<Self, String> {
        let validators = Schema::ALL
            .iter()
            .map(|&schema| {
                let value: Value = serde_json::from_str(schema.text())
                    .map_err(|e| format!("{}: {e}", schema.file()))?;
                let validator = jsonschema::validator_for(&value)
                    .map_err(|e| format!("{}: {e}", schema.file()))?;
                Ok((schema, validator))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { validators })
    }

    /// `Ok` when `instance` conforms; otherwise the first violation, with where it is.
    pub fn validate(&self, schema: Schema, instance: &Value) -> Result<(), String> {
        let Some((_, validator)) = self.validators.iter().find(|(s, _)| *s == schema) else {
            return Err(format!("schema {} is not loaded", schema.file()));
        };
        match validator.iter_errors(instance).next() {
            None => Ok(()),
            Some(error) => {
                let path = error.instance_path().to_string();
                let at = if path.is_empty() { String::new() } else { format!(" at {path}") };
                Err(format!("does not match {}{at}: {error}", schema.file()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_schema_compiles_and_tells_right_from_wrong() {
        let schemas = Schemas::load().unwrap();
        let cases = [
            (
                Schema::Health,
                json!({"status":"ok","supported_versions":["0.1d"]}),
                json!({"status":"ok"}),
            ),
            (
                Schema::ErrorFlat,
                json!({"error":{"code":"c","message":"m"}}),
                json!({"error":{"code":"c","message":"m"},"id":""}),
            ),
            (
                Schema::ErrorTyped,
                json!({"type":"error","error":{"code":"c","message":"m"}}),
                json!({"error":{"code":"c","message":"m"}}),
            ),
            (
                Schema::ErrorOAuth,
                json!({"error":"invalid_grant","error_description":"d"}),
                json!({"error":{"code":"invalid_grant","message":"d"}}),
            ),
            (
                Schema::AccountRequest,
                json!({"id":"r","type":"oauth","oauth":{"code":"c"}}),
                json!({"id":"r","type":"oauth","credentials":{}}),
            ),
            (
                Schema::ErrorStatus,
                json!({"status":"error","id":"","error":{"code":"c","message":"m"}}),
                json!({"status":"error","error":{"code":"c","message":"m"}}),
            ),
            (
                Schema::ResourceComplete,
                json!({"status":"complete","id":"7","complete":{"access_configuration":{"api_key":"k"}}}),
                json!({"status":"complete","id":"7","complete":{"access_configuration":{"port":5432}}}),
            ),
            (
                Schema::ResourceRemoved,
                json!({"status":"removed","id":"7"}),
                json!({"status":"removed","id":"7","complete":{}}),
            ),
            (
                Schema::DeepLink,
                json!({"purpose":"dashboard","url":"https://p.example/login?token=t","expires_at":"2026-01-01T00:10:00Z"}),
                json!({"purpose":"dashboard","url":"/login?token=t","expires_at":"2026-01-01T00:10:00Z"}),
            ),
            (
                Schema::TokenRefresh,
                json!({"token_type":"bearer","access_token":"a","refresh_token":"r","expires_in":1}),
                json!({"token_type":"bearer","access_token":"a","refresh_token":"r","expires_in":"1"}),
            ),
        ];
        for (schema, good, bad) in cases {
            assert!(schemas.validate(schema, &good).is_ok(), "{schema:?} refused {good}");
            assert!(schemas.validate(schema, &bad).is_err(), "{schema:?} accepted {bad}");
        }
    }

    #[test]
    fn services_schema_knows_the_pricing_shapes() {
        let schemas = Schemas::load().unwrap();
        let service = |pricing| json!({"data":[{"id":"s","description":"d","categories":["ai"],"pricing":pricing}]});
        for good in [
            json!({"type":"free"}),
            json!({"type":"paid","paid":{"type":"stripe_price","stripe_price":"price_1"}}),
            json!({"type":"paid","paid":[{"type":"freeform","freeform":"usage"}]}),
            json!({"type":"component","component":{"options":[{"type":"free","parent_service_ids":["a"]}]}}),
        ] {
            assert!(schemas.validate(Schema::Services, &service(good.clone())).is_ok(), "{good}");
        }
        for bad in [
            json!({"type":"paid"}),
            json!({"type":"paid","paid":{"type":"stripe_price","stripe_price":"prod_1"}}),
            json!({"type":"gratis"}),
        ] {
            assert!(schemas.validate(Schema::Services, &service(bad.clone())).is_err(), "{bad}");
        }
        let bad_category = json!({"data":[{"id":"s","description":"d","categories":["databases"],"pricing":{"type":"free"}}]});
        assert!(schemas.validate(Schema::Services, &bad_category).is_err());
    }
}

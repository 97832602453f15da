//! Payment tokens (spec 6): the orchestrator hands over a Stripe Shared Payment Token for paid
//! services; a billing backend turns it into an active plan. `record` stores it (hashed) and
//! accepts it; `stripe` redeems it with Stripe's API (a PaymentIntent confirmed with the granted
//! token). The backend is called before the provisioning transaction, so a refused token provisions
//! nothing.

use std::time::Duration;

use serde::Deserialize;

/// `[billing]` in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, tag = "backend", rename_all = "snake_case")]
pub enum BillingConfig {
    #[default]
    Record,
    Stripe(StripeConfig),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripeConfig {
    /// Stripe's API base; tests point it at a local fake.
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// The activation charge, in the currency's smallest unit.
    #[serde(default)]
    pub amount: u64,
    #[serde(default = "default_currency")]
    pub currency: String,
    /// Environment variable holding the secret key (never the file).
    #[serde(default = "default_key_env")]
    pub secret_key_env: String,
}

fn default_api_base() -> String {
    "https://api.stripe.com".into()
}
fn default_currency() -> String {
    "usd".into()
}
fn default_key_env() -> String {
    "PROVISIO_STRIPE_SECRET_KEY".into()
}

/// A refused payment token; the message is safe to show the orchestrator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// The result of an accepted token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    /// The backend's reference (a PaymentIntent id for Stripe).
    pub reference: Option<String>,
}

/// The billing backend in use.
#[derive(Clone)]
pub enum Billing {
    Record,
    Stripe { config: StripeConfig, secret_key: String, http: reqwest::Client },
}

impl std::fmt::Debug for Billing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Record => f.write_str("Billing::Record"),
            Self::Stripe { config, .. } => write!(f, "Billing::Stripe({})", config.api_base),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BillingSetupError {
    #[error("billing backend stripe: environment variable {0} with the secret key is not set")]
    MissingKey(String),
    #[error("billing backend stripe: {0}")]
    Client(String),
}

impl Billing {
    pub fn from_config(config: &BillingConfig) -> Result<Self, BillingSetupError> {
        match config {
            BillingConfig::Record => Ok(Self::Record),
            BillingConfig::Stripe(stripe) => {
                let secret_key = std::env::var(&stripe.secret_key_env)
                    .ok()
                    .filter(|k| !k.is_empty())
                    .ok_or_else(|| BillingSetupError::MissingKey(stripe.secret_key_env.clone()))?;
                let _ = rustls::crypto::ring::default_provider().install_default();
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(20))
                    .build()
                    .map_err(|e| BillingSetupError::Client(e.to_string()))?;
                Ok(Self::Stripe { config: stripe.clone(), secret_key, http })
            }
        }
    }

    /// Activates `token` for a paid service of an organization.
    pub async fn activate(
        &self,
        organization_id: &str,
        service_id: &str,
        token: &str,
    ) -> Result<Activation, Refused> {
        if !token.starts_with("spt_") || token.len() < 8 {
            return Err(Refused("The payment token is not a Shared Payment Token (spt_…)".into()));
        }
        match self {
            Self::Record => Ok(Activation { reference: None }),
            Self::Stripe { config, secret_key, http } => {
                stripe_payment_intent(http, config, secret_key, organization_id, service_id, token)
                    .await
            }
        }
    }
}

#[derive(Deserialize)]
struct StripeAnswer {
    id: Option<String>,
    status: Option<String>,
    error: Option<StripeErrorBody>,
}

#[derive(Deserialize)]
struct StripeErrorBody {
    message: Option<String>,
    code: Option<String>,
}

/// Creates and confirms a PaymentIntent with the granted token.
async fn stripe_payment_intent(
    http: &reqwest::Client,
    config: &StripeConfig,
    secret_key: &str,
    organization_id: &str,
    service_id: &str,
    token: &str,
) -> Result<Activation, Refused> {
    let url = format!("{}/v1/payment_intents", config.api_base.trim_end_matches('/'));
    let amount = config.amount.to_string();
    let form = [
        ("amount", amount.as_str()),
        ("currency", config.currency.as_str()),
        ("shared_payment_granted_token", token),
        ("confirm", "true"),
        ("metadata[organization_id]", organization_id),
        ("metadata[service_id]", service_id),
    ];
    let response = http
        .post(&url)
        .bearer_auth(secret_key)
        .header(
            "Idempotency-Key",
            format!(
                "provisio-{organization_id}-{service_id}-{}",
                crate::crypto::sha256_hex(token.as_bytes())
            ),
        )
        .form(&form)
        .send()
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "Stripe unreachable");
            Refused("The payment provider could not be reached".into())
        })?;
    let status = response.status();
    let answer: StripeAnswer = response
        .json()
        .await
        .map_err(|_| Refused("The payment provider answered unreadably".into()))?;
    match (status.is_success(), answer.status.as_deref()) {
        (true, Some("succeeded" | "processing" | "requires_capture")) => {
            Ok(Activation { reference: answer.id })
        }
        (true, other) => Err(Refused(format!(
            "The payment was not completed (status {})",
            other.unwrap_or("unknown")
        ))),
        (false, _) => {
            let error = answer.error.unwrap_or(StripeErrorBody { message: None, code: None });
            Err(Refused(format!(
                "The payment token was refused: {}",
                error.message.or(error.code).unwrap_or_else(|| status.to_string())
            )))
        }
    }
}

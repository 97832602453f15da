//! What a SaaS registers with Stripe, generated from the running configuration: the manifest
//! (`provisio manifest`), the agent-readable page behind its `llm_context` URL
//! (`GET /llm-context.md`), and the account configuration schema that both name and account
//! requests are held to (`[accounts]`).

use std::{fmt::Write as _, sync::Arc};

use provisio_protocol::types::{
    ComponentOption, DEEP_LINK_PURPOSE_DASHBOARD, PaidPrice, PaidPricing, Pricing, Service,
    ServiceKind,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{catalog::Catalog, connector::SetupError, rate_limit::RateLimits};

/// `[accounts]`: what account requests may carry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountsSpec {
    /// A JSON Schema for the request's `configuration` (`team_id` is the protocol's own and is
    /// always allowed besides it).
    pub configuration_schema: Option<Value>,
    /// The scopes an orchestrator may ask for; empty: any.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// `[provider]`: how the SaaS presents itself to agents.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    /// The product's name, the title of `/llm-context.md`.
    pub name: Option<String>,
    /// Markdown the operator adds to `/llm-context.md` (how to use the product with the keys).
    pub llm_context: Option<String>,
}

/// `[accounts]`, validated: the schema compiled once.
#[derive(Clone, Default)]
pub struct AccountSettings {
    schema: Option<(Value, Arc<jsonschema::Validator>)>,
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for AccountSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountSettings")
            .field("schema", &self.schema.as_ref().map(|(raw, _)| raw))
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl AccountSettings {
    /// Compiles the schema; refuses one that is not a JSON Schema for an object.
    pub fn new(spec: &AccountsSpec) -> Result<Self, SetupError> {
        let refuse = |message: String| SetupError {
            section: "accounts",
            key: "configuration_schema",
            message,
        };
        let schema = match &spec.configuration_schema {
            None => None,
            Some(raw) => {
                if !raw.is_object() || raw.get("type").is_some_and(|t| t != "object") {
                    return Err(refuse(
                        "must be a JSON Schema for an object (type = \"object\")".into(),
                    ));
                }
                let validator = jsonschema::validator_for(raw)
                    .map_err(|e| refuse(format!("is not a valid JSON Schema: {e}")))?;
                Some((raw.clone(), Arc::new(validator)))
            }
        };
        if let Some(empty) = spec.scopes.iter().find(|s| s.trim().is_empty() || s.len() > 255) {
            return Err(SetupError {
                section: "accounts",
                key: "scopes",
                message: format!("{empty:?} is not a scope (1 to 255 characters)"),
            });
        }
        Ok(Self { schema, scopes: spec.scopes.clone() })
    }

    /// The schema as registered.
    pub fn schema(&self) -> Option<&Value> {
        self.schema.as_ref().map(|(raw, _)| raw)
    }

    /// Checks an account request's `configuration` (absent: `{}`) against the schema, leaving out
    /// `team_id`; answers what passed (`None` without a schema) or the first violation, naming
    /// the field.
    pub fn check(
        &self,
        configuration: Option<&serde_json::Map<String, Value>>,
    ) -> Result<Option<Value>, String> {
        let Some((_, validator)) = &self.schema else { return Ok(None) };
        let mut object = configuration.cloned().unwrap_or_default();
        object.remove("team_id");
        let value = Value::Object(object);
        let violation = validator.iter_errors(&value).next().map(|error| {
            let path = error.instance_path().to_string();
            let field = path.trim_start_matches('/').replace('/', ".");
            let at = if field.is_empty() { String::new() } else { format!(".{field}") };
            format!("configuration{at}: {error}")
        });
        match violation {
            None => Ok(Some(value)),
            Some(message) => Err(message),
        }
    }

    /// The first requested scope this provider does not grant, when it lists its scopes.
    pub fn unknown_scope<'s>(&self, requested: &'s [String]) -> Option<&'s str> {
        if self.scopes.is_empty() {
            return None;
        }
        requested.iter().find(|s| !self.scopes.contains(s)).map(String::as_str)
    }
}

/// What the manifest and the page are made from.
pub struct Registration<'a> {
    pub public_url: &'a str,
    pub catalog: &'a Catalog,
    pub accounts: &'a AccountSettings,
    pub provider: &'a ProviderSpec,
    pub rate_limits: &'a RateLimits,
    /// Connector mode: credentials are the SaaS's, named by it.
    pub connector: bool,
}

impl Registration<'_> {
    /// The provisioning block to register with Stripe, ready to paste.
    pub fn manifest(&self) -> Value {
        let base = self.public_url.trim_end_matches('/');
        let mut capabilities =
            vec!["resources:create", "resources:rotate_credentials", "resources:remove"];
        if self.catalog.services().iter().any(|s| !s.allowed_updates.is_empty()) {
            capabilities.insert(1, "resources:update_service");
        }
        json!({
            "provisioning": {
                "api_version": provisio_protocol::API_VERSION,
                "base_url": base,
                "oauth_token_endpoint": format!("{base}/oauth/token"),
                "scopes": self.accounts.scopes,
                "capabilities": capabilities,
                "deep_link_purposes": [DEEP_LINK_PURPOSE_DASHBOARD],
                "llm_context": format!("{base}/llm-context.md"),
                "account_configuration_schema": self.accounts.schema().cloned().unwrap_or_else(|| json!({"type": "object"})),
            }
        })
    }

    /// `GET /llm-context.md`: what a coding agent should know about this provider.
    pub fn llm_context(&self) -> String {
        let name = self.provider.name.as_deref().unwrap_or("This provider");
        let mut page = format!("# {name}: provisioning through Stripe Projects\n\n");
        page.push_str(
            "Resources of this provider are provisioned with the Agentic Provisioning Protocol \
             (APP 0.1d): the orchestrator signs the user up, creates a resource of one of the \
             services below, and hands back its `access_configuration` — the keys your code uses. \
             Keys that are secret are shown once, when a resource is created or its credentials \
             are rotated; keep them in the project's secret store, never in code.\n\n",
        );
        page.push_str("## Services\n\n");
        for service in self.catalog.services() {
            describe_service(&mut page, service, self.catalog);
        }
        page.push_str("## Credentials\n\n");
        if self.connector {
            page.push_str(
                "The keys in `access_configuration` are the product's own; the notes below say \
                 what each is. Keys that are not secret (such as a public project key or a host) \
                 are also answered on later reads of the resource; secret ones only on create and \
                 rotate.\n\n",
            );
        } else {
            page.push_str(
                "* `api_key` — the project's public key, for client-side capture; safe to ship in \
                 a browser bundle.\n\
                 * `host` — the API host to send it to.\n\
                 * `personal_api_key` — a secret key for server-side calls on the user's behalf. \
                 Shown on create and rotate only; rotating credentials retires the previous one \
                 at once.\n\n",
            );
        }
        page.push_str("## Limits\n\n");
        let r = self.rate_limits;
        if r.enabled {
            let _ = writeln!(
                page,
                "* Resource calls: {} a minute per token (bursts of {}); account requests: {} a \
                 minute per email. A refused call answers 429 with `Retry-After`; every limited \
                 answer carries `RateLimit` and `RateLimit-Policy` headers.",
                r.resource_calls_per_token.per_minute,
                r.resource_calls_per_token.burst,
                r.account_requests_per_email.per_minute,
            );
        }
        page.push_str(
            "* Dashboard links are single-use and open the product's dashboard for 10 minutes.\n\n",
        );
        if let Some(schema) = self.accounts.schema() {
            page.push_str("## Account configuration\n\nAn account request's `configuration` is checked against this JSON Schema:\n\n```json\n");
            page.push_str(&serde_json::to_string_pretty(schema).unwrap_or_default());
            page.push_str("\n```\n\n");
        }
        if let Some(text) = self.provider.llm_context.as_deref().filter(|t| !t.trim().is_empty()) {
            page.push_str("## Using the product\n\n");
            page.push_str(text.trim());
            page.push('\n');
        }
        page
    }
}

fn describe_service(page: &mut String, service: &Service, catalog: &Catalog) {
    let kind = match service.kind {
        Some(ServiceKind::Plan) => "plan",
        Some(ServiceKind::Deployable) => "resource",
        _ => "service",
    };
    let _ = writeln!(page, "### `{}` ({kind})\n\n{}\n", service.id, service.description);
    let _ = writeln!(page, "* Pricing: {}", pricing(&service.pricing, catalog));
    if let Some(properties) = service
        .configuration_schema
        .as_ref()
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
    {
        for (name, property) in properties {
            let kind = property.get("type").and_then(Value::as_str).unwrap_or("value");
            let about = property.get("description").and_then(Value::as_str).unwrap_or("");
            let _ = writeln!(page, "* `configuration.{name}` ({kind}): {about}");
        }
    }
    if !service.allowed_updates.is_empty() {
        let to: Vec<String> =
            service.allowed_updates.iter().map(|u| format!("`{}`", u.service)).collect();
        let _ = writeln!(page, "* Can move to: {}", to.join(", "));
    }
    page.push('\n');
}

fn pricing(pricing: &Pricing, catalog: &Catalog) -> String {
    match pricing {
        Pricing::Free => "free".into(),
        Pricing::Paid { paid } => format!("paid ({}); needs a payment token", paid_text(paid)),
        Pricing::Component { component } => component
            .options
            .iter()
            .map(|option| {
                let plans: Vec<String> = option
                    .parent_service_ids()
                    .iter()
                    .filter(|p| catalog.get(p).is_some())
                    .map(|p| format!("`{p}`"))
                    .collect();
                match option {
                    ComponentOption::Free { .. } => format!("free on {}", plans.join(", ")),
                    ComponentOption::Paid { paid, .. } => {
                        format!("{} on {}", paid_text(paid), plans.join(", "))
                    }
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
    }
}

fn paid_text(paid: &PaidPricing) -> String {
    let one = |price: &PaidPrice| match price {
        PaidPrice::Freeform { freeform } => freeform.clone(),
        PaidPrice::StripePrice { stripe_price } => format!("Stripe price {stripe_price}"),
    };
    match paid {
        PaidPricing::One(price) => one(price),
        PaidPricing::Many(prices) => prices.iter().map(one).collect::<Vec<_>>().join("; "),
    }
}

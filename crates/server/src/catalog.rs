//! The service catalog: the operator's configuration, validated once at start so that a typo refuses
//! to start with a message naming the service and the field, instead of surfacing as a broken answer.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use provisio_protocol::types::{
    AllowedUpdate, Category, ComponentOption, Constraints, Kyc, PaidPrice, PaidPricing, Pricing,
    Service, ServiceKind, ServiceScope, UpdateDirection,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// A service as written in the TOML file: loose types, checked by [`Catalog::from_specs`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub id: String,
    pub description: String,
    #[serde(default)]
    pub categories: Vec<String>,
    pub pricing: Value,
    pub kind: Option<String>,
    pub group: Option<String>,
    pub scope: Option<String>,
    pub kyc: Option<Value>,
    pub configuration_schema: Option<Value>,
    #[serde(default)]
    pub allowed_updates: Vec<AllowedUpdateSpec>,
    pub constraints: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowedUpdateSpec {
    pub service: String,
    pub direction: String,
}

/// A catalog entry that is wrong; names the service and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("catalog: service {service:?}, field `{field}`: {message}")]
pub struct CatalogError {
    pub service: String,
    pub field: String,
    pub message: String,
}

/// The validated catalog, in the operator's order, with each configuration schema compiled once.
#[derive(Debug, Clone)]
pub struct Catalog {
    services: Vec<Service>,
    /// Service id → its compiled `configuration_schema` (services with one only).
    schemas: HashMap<String, Arc<jsonschema::Validator>>,
}

impl Catalog {
    /// Compiles every service's configuration schema (so none is compiled per request).
    fn new(services: Vec<Service>) -> Result<Self, CatalogError> {
        let schemas = services
            .iter()
            .filter_map(|s| s.configuration_schema.as_ref().map(|schema| (s, schema)))
            .map(|(s, schema)| Ok((s.id.clone(), Arc::new(compile(&s.id, schema)?))))
            .collect::<Result<_, CatalogError>>()?;
        Ok(Self { services, schemas })
    }

    /// The compiled configuration schema of service `id`, when it has one.
    pub fn configuration_schema(&self, id: &str) -> Option<&jsonschema::Validator> {
        self.schemas.get(id).map(Arc::as_ref)
    }

    pub fn services(&self) -> &[Service] {
        &self.services
    }

    pub fn get(&self, id: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.id == id)
    }

    /// The service a create without `service_id` provisions: the first deployable, else the first.
    pub fn default_service(&self) -> Option<&Service> {
        self.services
            .iter()
            .find(|s| s.kind == Some(ServiceKind::Deployable))
            .or_else(|| self.services.first())
    }

    /// Validates the operator's services.
    pub fn from_specs(specs: &[ServiceSpec]) -> Result<Self, CatalogError> {
        if specs.is_empty() {
            return Err(err("", "services", "the catalog needs at least one service"));
        }
        let mut seen = HashSet::new();
        for spec in specs {
            if spec.id.trim().is_empty() || spec.id.trim() != spec.id {
                return Err(err(&spec.id, "id", "must be non-empty without surrounding spaces"));
            }
            if !seen.insert(spec.id.as_str()) {
                return Err(err(&spec.id, "id", "appears twice in the catalog"));
            }
        }
        let services =
            specs.iter().map(|spec| service_from_spec(spec, &seen)).collect::<Result<_, _>>()?;
        Self::new(services)
    }

    /// The three-service catalog of spec 5.2, used when the operator configures none.
    pub fn default_catalog() -> Self {
        let categories = vec![Category::Analytics, Category::FeatureFlags, Category::Observability];
        let usage = || {
            PaidPricing::One(PaidPrice::Freeform {
                freeform: "Usage-based pricing, $0 base; billed monthly for what you use".into(),
            })
        };
        let update =
            |service: &str, direction| AllowedUpdate { service: service.into(), direction };
        let service = |id: &str, description: &str, kind, pricing, allowed_updates| Service {
            id: id.into(),
            description: description.into(),
            categories: categories.clone(),
            pricing,
            kind: Some(kind),
            group: None,
            scope: None,
            kyc: None,
            configuration_schema: None,
            allowed_updates,
            constraints: None,
        };
        let mut analytics = service(
            "analytics",
            "A product analytics project with feature flags and session observability",
            ServiceKind::Deployable,
            Pricing::Component {
                component: provisio_protocol::types::ComponentPricing {
                    options: vec![
                        ComponentOption::Free { parent_service_ids: vec!["free".into()] },
                        ComponentOption::Paid {
                            paid: usage(),
                            parent_service_ids: vec!["pay_as_you_go".into()],
                        },
                    ],
                },
            },
            vec![
                update("free", UpdateDirection::Any),
                update("pay_as_you_go", UpdateDirection::Any),
            ],
        );
        analytics.configuration_schema = Some(json!({
            "type": "object",
            "properties": {
                "project_name": {"type": "string", "description": "Name of the new project"}
            }
        }));
        let services = vec![
            service(
                "free",
                "Free plan: generous monthly quotas, no card needed",
                ServiceKind::Plan,
                Pricing::Free,
                vec![update("pay_as_you_go", UpdateDirection::Up)],
            ),
            service(
                "pay_as_you_go",
                "Pay-as-you-go plan: usage-based pricing with no base fee",
                ServiceKind::Plan,
                Pricing::Paid { paid: usage() },
                vec![update("free", UpdateDirection::Down)],
            ),
            analytics,
        ];
        // The one built-in schema is a constant that compiles (the test below holds it).
        #[allow(clippy::expect_used)]
        Self::new(services).expect("the built-in catalog's schema compiles")
    }
}

fn err(service: &str, field: &str, message: impl Into<String>) -> CatalogError {
    CatalogError { service: service.into(), field: field.into(), message: message.into() }
}

fn service_from_spec(spec: &ServiceSpec, ids: &HashSet<&str>) -> Result<Service, CatalogError> {
    let id = spec.id.as_str();
    if spec.description.trim().is_empty() {
        return Err(err(id, "description", "must not be empty"));
    }
    if spec.categories.is_empty() {
        return Err(err(id, "categories", "needs at least one category"));
    }
    let categories = spec
        .categories
        .iter()
        .map(|c| {
            Category::from_wire(c).ok_or_else(|| {
                err(
                    id,
                    "categories",
                    format!(
                        "unknown category {c:?} (expected one of: {})",
                        names(Category::ALL, |c| c.as_str())
                    ),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let pricing = pricing_from_spec(id, &spec.pricing, ids)?;
    let kind = parse_enum(
        id,
        "kind",
        spec.kind.as_deref(),
        ServiceKind::from_wire,
        ServiceKind::ALL,
        ServiceKind::as_str,
    )?;
    let scope = parse_enum(
        id,
        "scope",
        spec.scope.as_deref(),
        ServiceScope::from_wire,
        ServiceScope::ALL,
        ServiceScope::as_str,
    )?;
    let allowed_updates = spec
        .allowed_updates
        .iter()
        .map(|u| {
            if !ids.contains(u.service.as_str()) {
                return Err(err(
                    id,
                    "allowed_updates",
                    format!("names unknown service {:?}", u.service),
                ));
            }
            if u.service == id {
                return Err(err(id, "allowed_updates", "a service cannot update to itself"));
            }
            let direction = UpdateDirection::from_wire(&u.direction).ok_or_else(|| {
                err(
                    id,
                    "allowed_updates",
                    format!("unknown direction {:?} (expected any, up or down)", u.direction),
                )
            })?;
            Ok(AllowedUpdate { service: u.service.clone(), direction })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let kyc = typed::<Kyc>(id, "kyc", spec.kyc.as_ref())?;
    let constraints = typed::<Constraints>(id, "constraints", spec.constraints.as_ref())?;
    if let Some(schema) = &spec.configuration_schema {
        check_configuration_schema(id, schema)?;
    }
    Ok(Service {
        id: spec.id.clone(),
        description: spec.description.clone(),
        categories,
        pricing,
        kind,
        group: spec.group.clone(),
        scope,
        kyc,
        configuration_schema: spec.configuration_schema.clone(),
        allowed_updates,
        constraints,
    })
}

fn names<T: Copy>(all: &[T], name: impl Fn(T) -> &'static str) -> String {
    all.iter().map(|&v| name(v)).collect::<Vec<_>>().join(", ")
}

fn parse_enum<T: Copy>(
    id: &str,
    field: &str,
    value: Option<&str>,
    parse: impl Fn(&str) -> Option<T>,
    all: &[T],
    name: impl Fn(T) -> &'static str,
) -> Result<Option<T>, CatalogError> {
    value
        .map(|v| {
            parse(v).ok_or_else(|| {
                err(
                    id,
                    field,
                    format!("unknown value {v:?} (expected one of: {})", names(all, &name)),
                )
            })
        })
        .transpose()
}

/// Reads a field whose wire type ignores unknown keys (as a wire type must) strictly: a key the
/// type would drop is an operator's typo, refused like any other.
fn typed<T: serde::de::DeserializeOwned + serde::Serialize>(
    id: &str,
    field: &str,
    value: Option<&Value>,
) -> Result<Option<T>, CatalogError> {
    value
        .map(|v| {
            let parsed: T =
                serde_json::from_value(v.clone()).map_err(|e| err(id, field, e.to_string()))?;
            let kept = serde_json::to_value(&parsed).map_err(|e| err(id, field, e.to_string()))?;
            match dropped_key(v, &kept) {
                Some(key) => Err(err(id, field, format!("unknown key {key:?}"))),
                None => Ok(parsed),
            }
        })
        .transpose()
}

/// The first key of `given` (dotted path) that `kept` does not have, at any depth.
fn dropped_key(given: &Value, kept: &Value) -> Option<String> {
    let (Value::Object(given), Value::Object(kept)) = (given, kept) else { return None };
    given.iter().find_map(|(key, value)| match kept.get(key) {
        None => Some(key.clone()),
        Some(inner) => dropped_key(value, inner).map(|path| format!("{key}.{path}")),
    })
}

fn pricing_from_spec(
    id: &str,
    value: &Value,
    ids: &HashSet<&str>,
) -> Result<Pricing, CatalogError> {
    let pricing: Pricing = serde_json::from_value(value.clone())
        .map_err(|e| err(id, "pricing", format!("{e} (expected type free, paid or component)")))?;
    let check_paid = |paid: &PaidPricing| -> Result<(), CatalogError> {
        let prices = match paid {
            PaidPricing::One(p) => std::slice::from_ref(p),
            PaidPricing::Many(ps) if ps.is_empty() => {
                return Err(err(id, "pricing.paid", "an empty list of prices"));
            }
            PaidPricing::Many(ps) => ps.as_slice(),
        };
        for price in prices {
            match price {
                PaidPrice::Freeform { freeform } if freeform.trim().is_empty() => {
                    return Err(err(id, "pricing.paid.freeform", "must not be empty"));
                }
                PaidPrice::StripePrice { stripe_price } if !stripe_price.starts_with("price_") => {
                    return Err(err(
                        id,
                        "pricing.paid.stripe_price",
                        format!("{stripe_price:?} is not a Stripe price id (price_…)"),
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    };
    match &pricing {
        Pricing::Free => {}
        Pricing::Paid { paid } => check_paid(paid)?,
        Pricing::Component { component } => {
            if component.options.is_empty() {
                return Err(err(id, "pricing.component.options", "needs at least one option"));
            }
            for option in &component.options {
                if let ComponentOption::Paid { paid, .. } = option {
                    check_paid(paid)?;
                }
                for parent in option.parent_service_ids() {
                    if !ids.contains(parent.as_str()) {
                        return Err(err(
                            id,
                            "pricing.component.options.parent_service_ids",
                            format!("names unknown service {parent:?}"),
                        ));
                    }
                }
            }
        }
    }
    Ok(pricing)
}

fn check_configuration_schema(id: &str, schema: &Value) -> Result<(), CatalogError> {
    let field = "configuration_schema";
    if schema.get("type") != Some(&Value::String("object".into())) {
        return Err(err(id, field, "must be a JSON Schema with \"type\": \"object\""));
    }
    if !matches!(schema.get("properties"), None | Some(Value::Object(_))) {
        return Err(err(id, field, "`properties` must be an object"));
    }
    Ok(())
}

/// A schema the validator refuses (an unknown type, a bad pattern, a keyword of the wrong shape)
/// stops the start, naming the service.
fn compile(id: &str, schema: &Value) -> Result<jsonschema::Validator, CatalogError> {
    jsonschema::validator_for(schema)
        .map_err(|e| err(id, "configuration_schema", format!("not a valid JSON Schema: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FileConfig;

    fn load(toml: &str) -> Result<Catalog, CatalogError> {
        let cfg = FileConfig::parse(toml).unwrap();
        Catalog::from_specs(cfg.services.as_deref().unwrap())
    }

    const GOOD: &str = r#"
[[services]]
id = "basic"
description = "Basic"
categories = ["database"]
pricing = { type = "free" }
kind = "deployable"
allowed_updates = [{ service = "pro", direction = "up" }]

[[services]]
id = "pro"
description = "Pro"
categories = ["database", "cache"]
pricing = { type = "paid", paid = { type = "stripe_price", stripe_price = "price_123" } }
"#;

    #[test]
    fn operator_catalog_replaces_default() {
        let catalog = load(GOOD).unwrap();
        let ids: Vec<_> = catalog.services().iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["basic", "pro"]);
        assert_eq!(catalog.default_service().unwrap().id, "basic");
        assert!(catalog.get("pro").unwrap().pricing.is_paid());
    }

    #[test]
    fn default_catalog_is_valid_and_matches_spec() {
        let c = Catalog::default_catalog();
        assert!(
            c.configuration_schema("analytics").is_some()
                && c.configuration_schema("free").is_none()
        );
        let json = serde_json::to_value(c.services()).unwrap();
        assert_eq!(json[0]["id"], "free");
        assert_eq!(
            json[0]["allowed_updates"],
            json!([{"service":"pay_as_you_go","direction":"up"}])
        );
        assert_eq!(json[1]["pricing"]["type"], "paid");
        assert_eq!(json[1]["allowed_updates"], json!([{"service":"free","direction":"down"}]));
        assert_eq!(json[2]["kind"], "deployable");
        assert_eq!(
            json[2]["pricing"]["component"]["options"][0],
            json!({"type":"free","parent_service_ids":["free"]})
        );
        assert_eq!(json[2]["configuration_schema"]["properties"]["project_name"]["type"], "string");
        for s in c.services() {
            assert_eq!(
                serde_json::to_value(&s.categories).unwrap(),
                json!(["analytics", "feature_flags", "observability"])
            );
        }
        // Round-trip through the operator path: the default must pass its own validation.
        let specs: Vec<ServiceSpec> = c
            .services()
            .iter()
            .map(|s| {
                let mut v = serde_json::to_value(s).unwrap();
                if v.get("allowed_updates").is_none() {
                    v["allowed_updates"] = json!([]);
                }
                serde_json::from_value(v).unwrap()
            })
            .collect();
        Catalog::from_specs(&specs).unwrap();
    }

    #[test]
    fn bad_entries_name_service_and_field() {
        let cases = [
            (GOOD.replace("\"cache\"", "\"caching\""), "pro", "categories"),
            (
                GOOD.replace("service = \"pro\"", "service = \"enterprise\""),
                "basic",
                "allowed_updates",
            ),
            (
                GOOD.replace("direction = \"up\"", "direction = \"sideways\""),
                "basic",
                "allowed_updates",
            ),
            (GOOD.replace("price_123", "123"), "pro", "pricing.paid.stripe_price"),
            (GOOD.replace("type = \"free\"", "type = \"gratis\""), "basic", "pricing"),
            (GOOD.replace("kind = \"deployable\"", "kind = \"vm\""), "basic", "kind"),
            (GOOD.replace("categories = [\"database\"]", "categories = []"), "basic", "categories"),
            (GOOD.replace("id = \"pro\"", "id = \"basic\""), "basic", "id"),
        ];
        for (toml, service, field) in cases {
            let e = load(&toml).unwrap_err();
            assert_eq!((e.service.as_str(), e.field.as_str()), (service, field), "{e}");
            assert!(e.to_string().contains(&format!("service {service:?}, field `{field}`")));
        }
    }

    /// Found by the `catalog_loader` fuzz target: schemas that passed the shape check but that the
    /// validator cannot compile, so every create of the service answered an invalid schema.
    #[test]
    fn a_configuration_schema_the_validator_refuses_stops_the_start() {
        let with_schema = |schema: &str| {
            format!("{GOOD}configuration_schema = {{ type = \"object\", {schema} }}\n")
        };
        for schema in [
            r#"properties = { name = { type = "strin)g" } }"#,
            r#"properties = { name = { type = "string", pattern = "^[a-z+$" } }"#,
            r#"properties = { name = 5 }"#,
            r#"required = "name""#,
            r#"minProperties = -1"#,
        ] {
            let e = load(&with_schema(schema)).unwrap_err();
            assert_eq!((e.service.as_str(), e.field.as_str()), ("pro", "configuration_schema"));
            assert!(e.message.starts_with("not a valid JSON Schema: "), "{schema}: {e}");
        }
        let fine =
            with_schema(r#"properties = { name = { type = "string", pattern = "^[a-z]+$" } }"#);
        let catalog = load(&fine).unwrap();
        assert!(catalog.get("pro").unwrap().configuration_schema.is_some());
    }

    /// Found by the `catalog_loader` fuzz target: `constraints = { sount = … }` loaded as no
    /// constraint, because the wire type ignores unknown keys.
    #[test]
    fn an_unknown_key_in_constraints_or_kyc_stops_the_start() {
        for (line, field, key) in [
            ("constraints = { sount = { at_most = 1 } }", "constraints", "sount"),
            (
                "constraints = { count = { at_most = 1, at_mots = 1 } }",
                "constraints",
                "count.at_mots",
            ),
            ("kyc = { required_fields = [\"name\"], requried = true }", "kyc", "requried"),
        ] {
            let e = load(&format!("{GOOD}{line}\n")).unwrap_err();
            assert_eq!((e.service.as_str(), e.field.as_str()), ("pro", field), "{line}");
            assert_eq!(e.message, format!("unknown key {key:?}"), "{line}");
        }
        let fine = load(&format!("{GOOD}constraints = {{ count = {{ at_most = 3 }} }}\n")).unwrap();
        let count = fine.get("pro").unwrap().constraints.as_ref().unwrap().count.as_ref();
        assert_eq!(count.unwrap().at_most, 3);
    }
}

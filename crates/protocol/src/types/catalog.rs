//! `GET /provisioning/services` (spec 5.2): the catalog a provider offers.

use serde::{Deserialize, Serialize};

/// `{"data":[Service…]}`. There is no pagination, so no `next_cursor` (the schema demands a
/// non-empty string when present).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServicesResponse {
    pub data: Vec<Service>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Service {
    pub id: String,
    pub description: String,
    pub categories: Vec<Category>,
    pub pricing: Pricing,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ServiceKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<ServiceScope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kyc: Option<Kyc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration_schema: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_updates: Vec<AllowedUpdate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<Constraints>,
}

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $(#[serde(rename = $wire)] $variant),+ }

        // Written out: the derive cannot read a `rename` given through the macro.
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::string_enum(&[$($wire),+])
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $wire),+ }
            }

            pub fn from_wire(wire: &str) -> Option<Self> {
                match wire { $($wire => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}

wire_enum! {
    /// The closed list of service categories.
    Category {
        Compute = "compute", Database = "database", Storage = "storage", Cache = "cache",
        Messaging = "messaging", Email = "email", Notification = "notification", Auth = "auth",
        Cdn = "cdn", Observability = "observability", Analytics = "analytics",
        Payments = "payments", Search = "search", Ci = "ci", FeatureFlags = "feature_flags",
        Ai = "ai",
    }
}

wire_enum! {
    ServiceKind { Plan = "plan", Deployable = "deployable" }
}

wire_enum! {
    ServiceScope { Project = "project", Account = "account" }
}

wire_enum! {
    UpdateDirection { Any = "any", Up = "up", Down = "down" }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Kyc {
    pub required_fields: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AllowedUpdate {
    pub service: String,
    pub direction: UpdateDirection,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Constraints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<CountConstraint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CountConstraint {
    pub at_most: u32,
}

/// `{type:"free"}` | `{type:"paid",paid:…}` | `{type:"component",component:{options:[…]}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Pricing {
    Free,
    Paid { paid: PaidPricing },
    Component { component: ComponentPricing },
}

impl Pricing {
    /// Whether provisioning this service can cost money, so that a payment token is needed.
    pub fn is_paid(&self) -> bool {
        match self {
            Self::Free => false,
            Self::Paid { .. } => true,
            Self::Component { component } => {
                component.options.iter().all(|o| matches!(o, ComponentOption::Paid { .. }))
            }
        }
    }
}

/// One paid price, or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum PaidPricing {
    One(PaidPrice),
    Many(Vec<PaidPrice>),
}

/// `{type:"freeform",freeform:"…"}` | `{type:"stripe_price",stripe_price:"price_…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PaidPrice {
    Freeform { freeform: String },
    StripePrice { stripe_price: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ComponentPricing {
    pub options: Vec<ComponentOption>,
}

/// A component's price under given parent services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ComponentOption {
    Free { parent_service_ids: Vec<String> },
    Paid { paid: PaidPricing, parent_service_ids: Vec<String> },
}

impl ComponentOption {
    pub fn parent_service_ids(&self) -> &[String] {
        match self {
            Self::Free { parent_service_ids } | Self::Paid { parent_service_ids, .. } => {
                parent_service_ids
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pricing_shapes() {
        let free: Pricing = serde_json::from_value(json!({"type":"free"})).unwrap();
        assert_eq!(free, Pricing::Free);
        let paid: Pricing = serde_json::from_value(
            json!({"type":"paid","paid":{"type":"freeform","freeform":"usage-based"}}),
        )
        .unwrap();
        assert!(paid.is_paid());
        let many: Pricing = serde_json::from_value(json!({"type":"paid","paid":[
            {"type":"stripe_price","stripe_price":"price_1"},{"type":"freeform","freeform":"x"}]}))
        .unwrap();
        assert_eq!(serde_json::to_value(&many).unwrap()["paid"][0]["stripe_price"], "price_1");
        let component: Pricing = serde_json::from_value(json!({"type":"component","component":{"options":[
            {"type":"free","parent_service_ids":["free"]},
            {"type":"paid","paid":{"type":"freeform","freeform":"x"},"parent_service_ids":["payg"]}]}}))
        .unwrap();
        assert!(!component.is_paid());
    }

    #[test]
    fn absent_optionals_are_omitted() {
        let s = Service {
            id: "free".into(),
            description: "d".into(),
            categories: vec![Category::Analytics],
            pricing: Pricing::Free,
            kind: None,
            group: None,
            scope: None,
            kyc: None,
            configuration_schema: None,
            allowed_updates: vec![],
            constraints: None,
        };
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"id":"free","description":"d","categories":["analytics"],"pricing":{"type":"free"}})
        );
    }
}

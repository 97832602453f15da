//! `GET /openapi.json`: the OpenAPI 3.1 document generated from the endpoints' declarations
//! (`#[utoipa::path]` on each handler, collected with the router in [`super::routes`]), with what
//! holds for every endpoint added here once: the answers the edge itself may give (413, 500, 503
//! and, behind a signature, the signature's and API-Version's), the `API-Version` header and the
//! security schemes.

use std::{collections::BTreeMap, sync::LazyLock};

use axum::{body::Bytes, response::Response};
use serde_json::{Value, json};
use utoipa::{
    IntoParams, IntoResponses, PartialSchema,
    openapi::{Content, Ref, RefOr, response},
};

use super::reply::json_bytes;

/// The document, served as generated when first asked for.
static DOCUMENT: LazyLock<Bytes> = LazyLock::new(|| {
    Bytes::from(serde_json::to_vec(&super::routes::openapi()).unwrap_or_default())
});

#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    summary = "This document",
    responses((status = 200, description = "OpenAPI 3.1", body = Object))
)]
pub async fn openapi() -> Response {
    json_bytes(200, DOCUMENT.clone())
}

/// Completes the generated document: its header, the security schemes, and per operation the
/// `API-Version` header and the answers every endpoint of its kind may give.
pub fn complete(generated: utoipa::openapi::OpenApi) -> Value {
    let mut document = serde_json::to_value(generated).unwrap_or_default();
    let paths = document.get_mut("paths").and_then(Value::as_object_mut).into_iter().flatten();
    for (path, item) in paths {
        let operations = item.as_object_mut().into_iter().flatten();
        for (method, operation) in operations {
            if let Some(operation) = operation.as_object_mut() {
                // Unique, as OpenAPI asks (handlers of different modules share names).
                let name =
                    path.trim_matches('/').replace(['/', '.', '-'], "_").replace(['{', '}'], "");
                operation.insert("operationId".into(), format!("{method}_{name}").into());
                complete_operation(operation);
            }
        }
    }
    document["openapi"] = json!("3.1.0");
    document["info"] = json!({
        "title": "provisio",
        "version": env!("CARGO_PKG_VERSION"),
        "description": "An Agentic Provisioning Protocol (APP 0.1d) provider. The error envelopes and every code are in docs/protocol.md.",
        "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}
    });
    document["components"]["securitySchemes"] = json!({
        "stripeSignature": {"type": "apiKey", "in": "header", "name": "Stripe-Signature", "description": "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"t.\" + raw body>"},
        "bearer": {"type": "http", "scheme": "bearer", "description": "An access token from /oauth/token"},
        "operator": {"type": "http", "scheme": "bearer", "description": "An operator token from configuration"},
        "session": {"type": "apiKey", "in": "cookie", "name": "provisio_session"}
    });
    document
}

fn complete_operation(operation: &mut serde_json::Map<String, Value>) {
    let (signed, optional) = {
        let requirements = operation.get("security").and_then(Value::as_array);
        let requirements: Vec<_> =
            requirements.into_iter().flatten().filter_map(Value::as_object).collect();
        // The token endpoint's signature is optional (an empty requirement), and so is its
        // API-Version.
        (
            requirements.iter().any(|r| r.contains_key("stripeSignature")),
            requirements.iter().any(|r| r.is_empty()),
        )
    };
    let mut edge = vec![
        ("413", "request_too_large (flat)"),
        ("500", "server_error (flat)"),
        ("503", "timeout (flat): the request took longer than the configured limit"),
    ];
    if signed {
        edge.extend([("400", "invalid_api_version (flat)"), ("401", "invalid_signature (flat)")]);
    }
    let responses = operation.entry("responses").or_insert_with(|| json!({}));
    for (status, description) in edge {
        let response = &mut responses[status];
        if response.is_null() {
            *response = json!({"description": description});
        }
        may_be_flat(response);
    }
    if signed {
        let parameter = json!({
            "name": "API-Version",
            "in": "header",
            "required": !optional,
            "schema": {"type": "string", "enum": [provisio_protocol::API_VERSION]}
        });
        let parameters = operation.entry("parameters").or_insert_with(|| json!([]));
        if let Some(parameters) = parameters.as_array_mut() {
            parameters.insert(0, parameter);
        }
    }
}

/// A response that may also be a flat error: its JSON schema becomes "this or a flat error"
/// (`anyOf`: a typed error has every field a flat one has).
fn may_be_flat(response: &mut Value) {
    let flat = json!({"$ref": "#/components/schemas/FlatError"});
    let schema = &mut response["content"]["application/json"]["schema"];
    *schema = match schema.take() {
        Value::Null => flat,
        same if same == flat => same,
        Value::Object(mut any_of) if any_of.contains_key("anyOf") => {
            if let Some(Value::Array(items)) = any_of.get_mut("anyOf")
                && !items.contains(&flat)
            {
                items.push(flat);
            }
            Value::Object(any_of)
        }
        other => json!({"anyOf": [other, flat]}),
    };
}

/// The path of one resource.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ResourcePath {
    /// A resource id: the decimal id of the project it lives in.
    #[param(pattern = "^[0-9]+$")]
    #[allow(dead_code)]
    id: String,
}

/// A project of the dashboard.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ProjectPath {
    #[param(pattern = "^[0-9]+$")]
    #[allow(dead_code)]
    id: String,
}

/// A user of the SaaS, as its connector names them.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UserPath {
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    #[allow(dead_code)]
    user_id: String,
}

/// A project of the SaaS, as its connector names it.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SaasProjectPath {
    #[param(pattern = "^[0-9]+$")]
    #[allow(dead_code)]
    project_id: String,
}

/// What an answer carries, for the shared answer lists below.
enum Carries {
    Nothing,
    Html,
    Schema(&'static str),
}

/// An answer list as the document states it.
fn answers(list: &[(u16, &str, Carries)]) -> BTreeMap<String, RefOr<response::Response>> {
    let answer = |description: &str, carries: &Carries| {
        let builder = response::ResponseBuilder::new().description(description);
        match carries {
            Carries::Nothing => builder,
            Carries::Html => builder.content("text/html", Content::new(Some(String::schema()))),
            Carries::Schema(name) => builder
                .content("application/json", Content::new(Some(Ref::from_schema_name(*name)))),
        }
        .build()
        .into()
    };
    list.iter()
        .map(|(status, description, carries)| (status.to_string(), answer(description, carries)))
        .collect()
}

/// The answers of the inbound connector calls (`/v1/connector/…`).
pub struct InboundAnswers;

impl IntoResponses for InboundAnswers {
    fn responses() -> BTreeMap<String, RefOr<response::Response>> {
        answers(&[
            (
                200,
                "{\"ok\":true}, also for an id provisio never saw",
                Carries::Schema("Acknowledged"),
            ),
            (400, "invalid_request (flat): a malformed id", Carries::Schema("FlatError")),
            (401, "unauthorized (flat)", Carries::Schema("FlatError")),
            (
                404,
                "not_found (flat): no operator token is configured",
                Carries::Schema("FlatError"),
            ),
        ])
    }
}

/// The answers of the consent leg's pages.
pub struct ConsentPageAnswers;

impl IntoResponses for ConsentPageAnswers {
    fn responses() -> BTreeMap<String, RefOr<response::Response>> {
        answers(&[
            (200, "HTML", Carries::Html),
            (403, "no proof of the email", Carries::Html),
            (404, "unknown, or the consent leg is not set up", Carries::Html),
            (410, "expired, used or superseded", Carries::Html),
            (502, "connector mode: the SaaS failed", Carries::Html),
        ])
    }
}

/// The answers of the consent leg's forms.
pub struct ConsentFormAnswers;

impl IntoResponses for ConsentFormAnswers {
    fn responses() -> BTreeMap<String, RefOr<response::Response>> {
        answers(&[
            (200, "HTML: check your inbox (the link form)", Carries::Html),
            (302, "to callback_url with code and state, or error=access_denied", Carries::Nothing),
            (403, "forged or incomplete form, or no proof of the email", Carries::Html),
            (404, "unknown, or the consent leg is not set up", Carries::Html),
            (409, "not one of the projects offered", Carries::Html),
            (410, "expired, used or superseded", Carries::Html),
            (429, "too many emails", Carries::Html),
            (502, "connector mode: the SaaS failed", Carries::Html),
        ])
    }
}

/// The optional `Idempotency-Key` of the state-changing bearer calls.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyKey {
    /// Same key and body within 24 hours: the recorded answer; another body: 409
    /// `idempotency_conflict`. Longer than 255 characters: ignored.
    #[param(rename = "Idempotency-Key")]
    #[allow(dead_code)]
    idempotency_key: Option<String>,
}

/// `{"ok":true}`: the inbound connector calls' answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Acknowledged {
    pub ok: bool,
}

//! The route table: one entry per endpoint with its handler and its documentation. The router and
//! the OpenAPI document (`GET /openapi.json`) are both built from it, so neither can drift.

use axum::routing::{MethodRouter, get, post};
use serde_json::{Map, Value, json};

use super::{account_requests, deep_links, inbound, introspect, oauth, ops, protocol, resources};
use crate::state::AppState;

/// How a caller authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    None,
    /// `Stripe-Signature` (and `API-Version`).
    Signature,
    /// `Authorization: Bearer` plus `Stripe-Signature`.
    BearerAndSignature,
    /// The refresh grant: the signature is verified when present.
    OptionalSignature,
    /// An operator token from configuration.
    Operator,
    /// The dashboard session cookie.
    Session,
}

/// One endpoint.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    pub auth: Auth,
    /// Request body media type, if the endpoint takes one.
    pub body: Option<&'static str>,
    /// Status codes the endpoint answers, with what they mean.
    pub responses: &'static [(u16, &'static str)],
    pub handler: fn() -> MethodRouter<AppState>,
}

const JSON: Option<&str> = Some("application/json");
const SIGNED: &[(u16, &str)] = &[
    (400, "invalid_api_version (flat)"),
    (401, "invalid_signature (flat)"),
    (500, "server_error (flat)"),
];

/// The inbound connector calls (`/v1/connector/…`).
const INBOUND: &[(u16, &str)] = &[
    (200, "{\"ok\":true}, also for an unknown id"),
    (400, "invalid_request (flat): a malformed id"),
    (401, "unauthorized (flat)"),
    (404, "not_found (flat): no operator token is configured"),
];

const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
const CONSENT_PAGE: &[(u16, &str)] = &[
    (200, "HTML"),
    (403, "no proof of the email"),
    (404, "unknown"),
    (410, "expired, used or superseded"),
];
const CONSENT_ANSWER: &[(u16, &str)] = &[
    (302, "to callback_url with code and state, or error=access_denied"),
    (403, "forged form or no proof of the email"),
    (410, "expired, used or superseded"),
];

pub fn table() -> Vec<Route> {
    vec![
        Route {
            method: "get",
            path: "/provisioning/health",
            summary: "Health of the provider",
            tag: "protocol",
            auth: Auth::Signature,
            body: None,
            responses: &[(200, "ok")],
            handler: || get(protocol::health),
        },
        Route {
            method: "get",
            path: "/provisioning/services",
            summary: "The service catalog",
            tag: "protocol",
            auth: Auth::Signature,
            body: None,
            responses: &[(200, "the catalog")],
            handler: || get(protocol::services),
        },
        Route {
            method: "post",
            path: "/provisioning/account_requests",
            summary: "Create or link an account for a verified email",
            tag: "protocol",
            auth: Auth::Signature,
            body: JSON,
            responses: &[
                (200, "oauth code, credentials or requires_auth"),
                (400, "typed error"),
                (401, "unauthorized (typed) or invalid_signature (flat)"),
                (429, "rate_limited (typed)"),
                (500, "account_creation_failed (typed)"),
            ],
            handler: || once(post(account_requests::create)),
        },
        Route {
            method: "post",
            path: "/oauth/token",
            summary: "Exchange a code or rotate a refresh token",
            tag: "protocol",
            auth: Auth::OptionalSignature,
            body: Some("application/x-www-form-urlencoded"),
            responses: &[
                (200, "tokens"),
                (400, "oauth error"),
                (401, "invalid_request (oauth) or invalid_signature (flat)"),
            ],
            handler: || post(oauth::token),
        },
        Route {
            method: "post",
            path: "/provisioning/resources",
            summary: "Provision a resource (idempotent by project_id)",
            tag: "protocol",
            auth: Auth::BearerAndSignature,
            body: JSON,
            responses: &[
                (200, "complete with credentials"),
                (400, "status error"),
                (401, "unauthorized (status)"),
                (409, "idempotency_conflict (status)"),
                (429, "rate_limited (status)"),
            ],
            handler: || once(post(resources::create)),
        },
        Route {
            method: "get",
            path: "/provisioning/resources/{id}",
            summary: "Read a resource",
            tag: "protocol",
            auth: Auth::BearerAndSignature,
            body: None,
            responses: &[
                (200, "complete or removed"),
                (400, "invalid_resource_id (status)"),
                (403, "forbidden (status)"),
                (404, "not_found (status)"),
            ],
            handler: || get(resources::get),
        },
        Route {
            method: "post",
            path: "/provisioning/resources/{id}/update_service",
            summary: "Move a resource to another service",
            tag: "protocol",
            auth: Auth::BearerAndSignature,
            body: JSON,
            responses: &[
                (200, "complete"),
                (400, "status error"),
                (403, "forbidden (status)"),
                (409, "invalid_state (status)"),
            ],
            handler: || once(post(resources::update_service)),
        },
        Route {
            method: "post",
            path: "/provisioning/resources/{id}/rotate_credentials",
            summary: "Replace a resource's credentials",
            tag: "protocol",
            auth: Auth::BearerAndSignature,
            body: None,
            responses: &[
                (200, "complete with new credentials"),
                (403, "forbidden (status)"),
                (409, "invalid_state (status)"),
                (500, "credential_rotation_failed (status)"),
            ],
            handler: || once(post(resources::rotate_credentials)),
        },
        Route {
            method: "post",
            path: "/provisioning/resources/{id}/remove",
            summary: "Remove a resource (idempotent)",
            tag: "protocol",
            auth: Auth::BearerAndSignature,
            body: None,
            responses: &[(200, "removed"), (403, "forbidden (status)")],
            handler: || once(post(resources::remove)),
        },
        Route {
            method: "post",
            path: "/provisioning/deep_links",
            summary: "A one-time dashboard link",
            tag: "protocol",
            auth: Auth::BearerAndSignature,
            body: JSON,
            responses: &[
                (200, "the link"),
                (400, "unsupported_purpose (flat)"),
                (403, "forbidden (flat)"),
            ],
            handler: || once(post(deep_links::create)),
        },
        Route {
            method: "get",
            path: "/.well-known/oauth-authorization-server",
            summary: "RFC 8414 metadata",
            tag: "oauth",
            auth: Auth::None,
            body: None,
            responses: &[(200, "metadata")],
            handler: || get(oauth::metadata),
        },
        Route {
            method: "post",
            path: "/v1/keys/introspect",
            summary: "Is a project key or personal key live, and what does it reach (RFC 7662 style)",
            tag: "operator",
            auth: Auth::Operator,
            body: Some("application/x-www-form-urlencoded"),
            responses: &[(200, "active or not"), (401, "unauthorized (flat)")],
            handler: || post(introspect::introspect),
        },
        Route {
            method: "post",
            path: "/v1/connector/users/{user_id}/revoke",
            summary: "The SaaS revokes a user: every token family, unused code, consent request, deep link and session of the user dies",
            tag: "connector",
            auth: Auth::Operator,
            body: None,
            responses: INBOUND,
            handler: || post(inbound::revoke_user),
        },
        Route {
            method: "post",
            path: "/v1/connector/projects/{project_id}/removed",
            summary: "The SaaS removed a project: the resource living in it is marked removed",
            tag: "connector",
            auth: Auth::Operator,
            body: None,
            responses: INBOUND,
            handler: || post(inbound::project_removed),
        },
        Route {
            method: "post",
            path: "/v1/connector/users/{user_id}/erase",
            summary: "The SaaS erases a user: revoked as above, then its personal data pseudonymized",
            tag: "connector",
            auth: Auth::Operator,
            body: None,
            responses: INBOUND,
            handler: || post(inbound::erase_user),
        },
        Route {
            method: "get",
            path: "/login",
            summary: "Open a dashboard link: sets the session cookie and redirects",
            tag: "dashboard",
            auth: Auth::None,
            body: None,
            responses: &[
                (303, "to the project page, or to / with an error"),
                (429, "too many attempts"),
            ],
            handler: || get(crate::web::login),
        },
        Route {
            method: "get",
            path: "/",
            summary: "The user's projects",
            tag: "dashboard",
            auth: Auth::Session,
            body: None,
            responses: &[(200, "HTML")],
            handler: || get(crate::web::home),
        },
        Route {
            method: "get",
            path: "/projects/{id}",
            summary: "One project with its keys",
            tag: "dashboard",
            auth: Auth::Session,
            body: None,
            responses: &[(200, "HTML"), (303, "no session"), (404, "not the user's")],
            handler: || get(crate::web::project),
        },
        Route {
            method: "post",
            path: "/logout",
            summary: "End the session",
            tag: "dashboard",
            auth: Auth::Session,
            body: None,
            responses: &[(303, "to /")],
            handler: || post(crate::web::logout),
        },
        Route {
            method: "get",
            path: "/consent",
            summary: "Consent leg: who asks, for which email; start proving the address",
            tag: "consent",
            auth: Auth::None,
            body: None,
            responses: CONSENT_PAGE,
            handler: || get(crate::web::consent::show),
        },
        Route {
            method: "post",
            path: "/consent/link",
            summary: "Consent leg: email a one-time sign-in link (15 minutes)",
            tag: "consent",
            auth: Auth::None,
            body: FORM,
            responses: &[
                (200, "HTML: check your inbox"),
                (403, "forged form"),
                (410, "consent closed"),
                (429, "too many emails"),
            ],
            handler: || post(crate::web::consent::send_link),
        },
        Route {
            method: "get",
            path: "/consent/verify",
            summary: "Consent leg: the emailed link; proves the address in this browser",
            tag: "consent",
            auth: Auth::None,
            body: None,
            responses: &[
                (303, "to the choice, with the proof cookie"),
                (410, "link used or expired"),
            ],
            handler: || get(crate::web::consent::verify),
        },
        Route {
            method: "get",
            path: "/consent/choose",
            summary: "Consent leg: choose the project the orchestrator may reach",
            tag: "consent",
            auth: Auth::None,
            body: None,
            responses: CONSENT_PAGE,
            handler: || get(crate::web::consent::choose),
        },
        Route {
            method: "post",
            path: "/consent/confirm",
            summary: "Consent leg: mint the code and return to the orchestrator",
            tag: "consent",
            auth: Auth::None,
            body: FORM,
            responses: CONSENT_ANSWER,
            handler: || post(crate::web::consent::confirm),
        },
        Route {
            method: "post",
            path: "/consent/decline",
            summary: "Consent leg: decline and return to the orchestrator",
            tag: "consent",
            auth: Auth::None,
            body: FORM,
            responses: CONSENT_ANSWER,
            handler: || post(crate::web::consent::decline),
        },
        Route {
            method: "get",
            path: "/llm-context.md",
            summary: "What a coding agent should know about this provider: services, pricing, credentials, limits (Markdown)",
            tag: "operations",
            auth: Auth::None,
            body: None,
            responses: &[(200, "the page, text/markdown")],
            handler: || get(ops::llm_context),
        },
        Route {
            method: "get",
            path: "/healthz",
            summary: "Liveness",
            tag: "operations",
            auth: Auth::None,
            body: None,
            responses: &[(200, "alive")],
            handler: || get(ops::healthz),
        },
        Route {
            method: "get",
            path: "/readyz",
            summary: "Readiness: the database answers",
            tag: "operations",
            auth: Auth::None,
            body: None,
            responses: &[(200, "ready"), (503, "database unreachable")],
            handler: || get(ops::readyz),
        },
        Route {
            method: "get",
            path: "/metrics",
            summary: "Prometheus metrics",
            tag: "operations",
            auth: Auth::None,
            body: None,
            responses: &[(200, "text exposition")],
            handler: || get(ops::metrics),
        },
        Route {
            method: "get",
            path: "/openapi.json",
            summary: "This document",
            tag: "operations",
            auth: Auth::None,
            body: None,
            responses: &[(200, "OpenAPI 3.1")],
            handler: || get(ops::openapi),
        },
    ]
}

/// The route answers each request once: replay safety, and `Idempotency-Key` where the caller is a
/// bearer (the idempotency layer).
fn once(route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route.layer(axum::middleware::from_fn(super::idempotency::answer_once))
}

/// Path parameters and the pattern of their values.
const PATH_PARAMETERS: &[(&str, &str)] =
    &[("id", "^[0-9]+$"), ("project_id", "^[0-9]+$"), ("user_id", "^[A-Za-z0-9_-]{1,64}$")];

/// The OpenAPI 3.1 document of the route table.
pub fn openapi() -> Value {
    let mut paths = Map::new();
    for route in table() {
        let mut responses = Map::new();
        let signed = matches!(route.auth, Auth::Signature | Auth::BearerAndSignature);
        for (code, what) in route.responses.iter().chain(if signed { SIGNED } else { &[] }) {
            responses.entry(code.to_string()).or_insert_with(|| json!({"description": what}));
        }
        let mut operation = json!({
            "summary": route.summary,
            "tags": [route.tag],
            "operationId": format!("{}_{}", route.method, route.path.trim_matches('/').replace(['/', '.', '-'], "_").replace(['{', '}'], "")),
            "responses": responses,
        });
        let security = match route.auth {
            Auth::None => None,
            Auth::Signature => Some(json!([{"stripeSignature": []}])),
            Auth::BearerAndSignature => Some(json!([{"stripeSignature": [], "bearer": []}])),
            Auth::OptionalSignature => Some(json!([{"stripeSignature": []}, {}])),
            Auth::Operator => Some(json!([{"operator": []}])),
            Auth::Session => Some(json!([{"session": []}])),
        };
        if let Some(security) = security {
            operation["security"] = security;
        }
        if signed {
            operation["parameters"] = json!([{"name": "API-Version", "in": "header", "required": true, "schema": {"type": "string", "const": provisio_protocol::API_VERSION}}]);
        }
        for (name, pattern) in PATH_PARAMETERS {
            if !route.path.contains(&format!("{{{name}}}")) {
                continue;
            }
            let parameter = json!({"name": name, "in": "path", "required": true, "schema": {"type": "string", "pattern": pattern}});
            match operation.get_mut("parameters").and_then(Value::as_array_mut) {
                Some(params) => params.push(parameter),
                None => operation["parameters"] = json!([parameter]),
            }
        }
        if let Some(media) = route.body {
            operation["requestBody"] =
                json!({"required": true, "content": {media: {"schema": {"type": "object"}}}});
        }
        let entry = paths.entry(route.path.to_string()).or_insert_with(|| json!({}));
        entry[route.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "provisio",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "An Agentic Provisioning Protocol (APP 0.1d) provider. Error envelopes and every code: see the APP 0.1d specification."
        },
        "paths": paths,
        "components": {"securitySchemes": {
            "stripeSignature": {"type": "apiKey", "in": "header", "name": "Stripe-Signature", "description": "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"t.\" + raw body>"},
            "bearer": {"type": "http", "scheme": "bearer", "description": "An access token from /oauth/token"},
            "operator": {"type": "http", "scheme": "bearer", "description": "An operator token from configuration"},
            "session": {"type": "apiKey", "in": "cookie", "name": "provisio_session"}
        }}
    })
}

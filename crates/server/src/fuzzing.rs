//! Property checks on untrusted input, shared by the fuzz targets in `fuzz/` and by the test that
//! replays their committed corpora (`tests/it/fuzz_corpus.rs`), so that `cargo test` keeps every
//! corpus file as a regression test. Each check takes arbitrary bytes and runs the same functions
//! the server runs on them; it panics (an `assert!`) only when a property is broken, and no input
//! may make the code under test panic either.

use std::sync::LazyLock;

use axum::{
    http::{HeaderMap, HeaderValue, header},
    response::IntoResponse,
};
use provisio_protocol::{
    pkce::s256_challenge,
    types::{
        CreateResourceRequest, DeepLinkRequest, ServicesResponse, TokenRequest,
        UpdateServiceRequest,
    },
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::{
    catalog::Catalog,
    config::FileConfig,
    crypto::token_hash,
    domain::{
        accounts::{is_well_formed_email, normalize_email},
        billing::Billing,
        resources::{ResourceError, validate_configuration},
    },
    http::{account_requests, extract::RequestBody, oauth, reply::ApiError},
    rate_limit::{RateLimiter, Scope},
};

/// The clock of every check: 2026-01-01T00:00:00Z.
const NOW: i64 = 1_767_225_600;

/// A catalog whose schemas use more of JSON Schema than the built-in one, so that configuration
/// validation is exercised beyond `project_name`.
const FUZZ_CATALOG: &str = r#"
[[services]]
id = "db"
description = "A database"
categories = ["database"]
pricing = { type = "free" }
kind = "deployable"
allowed_updates = [{ service = "db_large", direction = "up" }]
configuration_schema = { type = "object", additionalProperties = false, required = ["region"], properties = { region = { type = "string", enum = ["eu", "us"] }, name = { type = "string", minLength = 1, maxLength = 40, pattern = "^[a-z][a-z0-9-]*$" }, replicas = { type = "integer", minimum = 0, maximum = 5 }, tags = { type = "array", items = { type = "string" }, maxItems = 4, uniqueItems = true }, options = { type = "object", properties = { ssl = { type = "boolean" }, size = { type = "number", exclusiveMinimum = 0, multipleOf = 0.5 } } } } }

[[services]]
id = "db_large"
description = "A larger database"
categories = ["database"]
pricing = { type = "paid", paid = { type = "stripe_price", stripe_price = "price_1" } }
configuration_schema = { type = "object", properties = { contact = { type = "string", format = "email" }, window = { oneOf = [{ type = "null" }, { type = "string", pattern = "^[0-2][0-9]:00$" }] } } }
"#;

static CATALOGS: LazyLock<[Catalog; 2]> = LazyLock::new(|| {
    let fuzz = FileConfig::parse(FUZZ_CATALOG)
        .ok()
        .and_then(|file| file.catalog().ok())
        .unwrap_or_else(Catalog::default_catalog);
    [Catalog::default_catalog(), fuzz]
});

/// The JSON bodies of every protocol endpoint: the first byte picks the endpoint, the rest is the
/// body, read by the same function the handler reads it with, then checked as the handler checks
/// it before any store work (account request validation, `team_id`, configuration against each
/// catalog's JSON Schema).
pub fn endpoint_bodies(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else { return };
    match selector % 4 {
        0 => account_request(body),
        1 => {
            let request = resource_body::<CreateResourceRequest>(body);
            if let Some(request) = request {
                assert_payment_token(request.payment_token());
                for catalog in CATALOGS.iter() {
                    let service = match &request.service_id {
                        Some(id) => catalog.get(id),
                        None => catalog.default_service(),
                    };
                    if let Some(service) = service {
                        configuration(catalog, service, request.configuration.as_ref());
                    }
                }
            }
        }
        2 => {
            if let Some(request) = resource_body::<UpdateServiceRequest>(body) {
                assert_payment_token(request.payment_token());
                let target = request.service_id.as_deref().filter(|s| !s.is_empty());
                for catalog in CATALOGS.iter() {
                    if let Some(service) = target.and_then(|id| catalog.get(id)) {
                        configuration(catalog, service, request.configuration.as_ref());
                    }
                }
            }
        }
        _ => match DeepLinkRequest::parse(body) {
            Ok(request) => {
                assert!(is_json_object(body));
                round_trips::<DeepLinkRequest>(&request);
            }
            Err(message) => assert!(!message.is_empty()),
        },
    }
}

fn account_request(body: &[u8]) {
    let request = match account_requests::validate_body(body, NOW) {
        Ok(request) => request,
        Err(e) => {
            assert_client_error(e, 400);
            return;
        }
    };
    assert!(is_json_object(body));
    round_trips(&request);
    let email = request.email.as_deref().map(str::trim).unwrap_or_default();
    assert!(is_well_formed_email(email), "{email:?}");
    let normalized = normalize_email(email);
    assert_eq!(normalize_email(&normalized), normalized, "normalizing twice changes {email:?}");
    if let Some(expires_at) = &request.expires_at {
        let at = OffsetDateTime::parse(expires_at, &Rfc3339).map(OffsetDateTime::unix_timestamp);
        assert!(at.is_ok_and(|at| at > NOW), "{expires_at:?}");
    }
    if let Some(method) = &request.code_challenge_method {
        assert_eq!(method, "S256");
        assert!(request.code_challenge.is_some());
    }
    if let Some(challenge) = &request.code_challenge {
        assert!((43..=128).contains(&challenge.len()), "{challenge:?}");
        assert!(challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }
    if let Some(account) = request.orchestrator_account() {
        assert!(!account.trim().is_empty());
    }
    let team_id = account_requests::team_id(request.configuration_value("team_id"));
    if let Ok(Some(id)) = team_id {
        assert!(id >= 0);
    }
}

/// The resource endpoints' body: an empty body is the default request; anything accepted was a
/// JSON object and survives a round trip.
fn resource_body<T>(body: &[u8]) -> Option<T>
where
    T: RequestBody + DeserializeOwned + Serialize + Default + PartialEq + std::fmt::Debug,
{
    match T::parse(body) {
        Ok(request) => {
            if body.iter().all(u8::is_ascii_whitespace) {
                assert_eq!(request, T::default());
            } else {
                assert!(is_json_object(body));
            }
            round_trips(&request);
            Some(request)
        }
        Err(message) => {
            assert!(!message.is_empty());
            None
        }
    }
}

/// Validation against a service's schema answers, never panics; for the built-in analytics schema
/// the answer is checked against an independent reading of that schema.
fn configuration(
    catalog: &Catalog,
    service: &provisio_protocol::types::Service,
    configuration: Option<&Value>,
) {
    let verdict = validate_configuration(catalog, service, configuration);
    if let Err(e) = &verdict {
        assert!(
            matches!(e, ResourceError::InvalidConfiguration(m) if m.starts_with("configuration")),
            "{e:?}"
        );
    }
    if service.id == "analytics" && service.configuration_schema.is_some() {
        let expected = match configuration {
            None => true,
            Some(Value::Object(map)) => map.get("project_name").is_none_or(Value::is_string),
            Some(_) => false,
        };
        assert_eq!(verdict.is_ok(), expected, "{configuration:?}");
    }
}

fn assert_payment_token(token: Option<&str>) {
    if let Some(token) = token {
        assert!(!token.trim().is_empty());
    }
}

/// The token endpoint's body decoding: the first byte picks the `Content-Type` (none, the form
/// type, JSON, JSON in capitals with a charset), the rest is the body.
pub fn token_form(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else { return };
    let content_type = match selector % 4 {
        0 => None,
        1 => Some("application/x-www-form-urlencoded"),
        2 => Some("application/json"),
        _ => Some(" APPLICATION/JSON; charset=utf-8"),
    };
    let mut headers = HeaderMap::new();
    if let Some(content_type) = content_type {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    let request = match oauth::parse(&headers, body) {
        Ok(request) => request,
        Err(e) => {
            assert_client_error(e, 400);
            return;
        }
    };
    if content_type.is_some_and(|ct| ct.to_ascii_lowercase().contains("json")) {
        assert!(is_json_object(body));
        round_trips::<TokenRequest>(&request);
    } else {
        // What was decoded encodes and decodes to itself.
        let encoded = serde_urlencoded::to_string(&request);
        assert!(encoded.is_ok(), "{request:?}");
        let again = serde_urlencoded::from_str::<TokenRequest>(&encoded.unwrap_or_default());
        assert_eq!(again.ok().as_ref(), Some(&request));
    }
    // What the grants compute from the fields before the store is asked.
    for value in [&request.code, &request.refresh_token].into_iter().flatten() {
        // SHA-256 hex, behind the 12 hex digits of when it was made for an ordered token.
        let hash = token_hash(value);
        assert!(matches!(hash.len(), 64 | 76), "{hash}");
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{hash}");
    }
    if let Some(verifier) = &request.code_verifier {
        let challenge = s256_challenge(verifier);
        assert_eq!(challenge.len(), 43);
        assert!(challenge.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }
}

/// The configuration file as `provisio serve` loads it: the TOML, the catalog, the billing
/// backend, every orchestrator and the rate limiter. What loads is consistent; what does not load
/// says why.
pub fn catalog_loader(data: &[u8]) {
    // `FileConfig::load` reads the file as UTF-8 and refuses anything else.
    let Ok(text) = std::str::from_utf8(data) else { return };
    let file = match FileConfig::parse(text) {
        Ok(file) => file,
        Err(message) => {
            assert!(!message.is_empty());
            return;
        }
    };
    match file.catalog() {
        Ok(catalog) => loaded_catalog(&catalog),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    let _ = Billing::from_config(&file.billing.clone().unwrap_or_default());
    for spec in &file.orchestrators {
        if let Ok(orchestrator) = spec.build() {
            let tokens = &orchestrator.tokens;
            assert!(tokens.access_token_ttl_secs > 0);
            for prefix in [&tokens.access_token_prefix, &tokens.refresh_token_prefix] {
                assert!(!prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_alphanumeric()));
            }
        }
    }
    let _ = file.limits.request_timeout();
    let limiter = RateLimiter::new(&file.rate_limits);
    for now_ms in [0, 0, 1, i64::MAX, i64::MIN, 0] {
        if let Err(retry) = limiter.check(Scope::Token, "t", now_ms) {
            assert!(retry.0 >= 1);
        }
    }
    if file.rate_limits.enabled {
        // A fresh bucket always has room for one call, whatever the configured burst.
        assert!(limiter.check(Scope::Email, "fresh", NOW).is_ok());
    }
}

fn loaded_catalog(catalog: &Catalog) {
    let services = catalog.services();
    assert!(!services.is_empty());
    assert!(catalog.default_service().is_some());
    for service in services {
        assert_eq!(catalog.get(&service.id).map(|s| &s.id), Some(&service.id), "ids are unique");
        for update in &service.allowed_updates {
            assert!(catalog.get(&update.service).is_some() && update.service != service.id);
        }
        // A schema the loader accepts is compiled with the catalog.
        assert_eq!(
            service.configuration_schema.is_some(),
            catalog.configuration_schema(&service.id).is_some(),
            "{:?}",
            service.configuration_schema
        );
        let _ = validate_configuration(catalog, service, Some(&Value::Object(Default::default())));
    }
    // `GET /provisioning/services` serializes the catalog; what it sends reads back the same.
    round_trips(&ServicesResponse { data: services.to_vec() });
}

/// A value survives serialization to JSON and back.
fn round_trips<T>(value: &T)
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let json = serde_json::to_value(value);
    assert!(json.is_ok(), "{value:?}");
    let back = json.ok().map(serde_json::from_value::<T>);
    assert!(matches!(&back, Some(Ok(back)) if back == value), "{value:?} came back as {back:?}");
}

fn is_json_object(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|v| v.is_object())
}

/// An error answer is a client error with the expected status, in its envelope.
fn assert_client_error(e: ApiError, status: u16) {
    let response = e.into_response();
    assert_eq!(response.status().as_u16(), status);
    assert!(response.headers().contains_key(header::CONTENT_TYPE));
}

//! Every answer a test receives is checked against the served OpenAPI document: its status must be
//! one the operation documents, its media type one documented for that status, and a JSON body
//! must validate against the documented schema. So the whole suite is the test that the document
//! tells the truth about every endpoint it has exercised.

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock, Mutex},
};

use serde_json::Value;

static DOCUMENT: LazyLock<Value> = LazyLock::new(provisio_server::http::routes::openapi);
static VALIDATORS: LazyLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> =
    LazyLock::new(Mutex::default);

/// The document's template for a concrete path, if one matches (`{name}` matches one segment).
pub fn template_of(path: &str) -> Option<&'static str> {
    let paths = DOCUMENT["paths"].as_object()?;
    let segments: Vec<&str> = path.split('/').collect();
    paths.keys().map(String::as_str).find(|template| {
        let parts: Vec<&str> = template.split('/').collect();
        parts.len() == segments.len()
            && parts.iter().zip(&segments).all(|(part, segment)| {
                *part == *segment || (part.starts_with('{') && !segment.is_empty())
            })
    })
}

/// Panics when the answer is not what the document says `method path` may answer. Answers to a
/// path or method the document does not have (the 404 and 405 fallbacks) are not checked.
pub fn check(method: &str, path: &str, status: u16, content_type: Option<&str>, body: &[u8]) {
    let Some(template) = template_of(path) else {
        return;
    };
    let method = method.to_ascii_lowercase();
    if DOCUMENT["paths"][template].get(&method).is_none() {
        return;
    }
    let at = format!("{method} {path} → {status}: {}", String::from_utf8_lossy(body));
    let response = &DOCUMENT["paths"][template][&method]["responses"][status.to_string()];
    assert!(response.is_object(), "undocumented answer: {at}");
    if body.is_empty() {
        return;
    }
    let media = content_type.unwrap_or_default().split(';').next().unwrap_or_default().trim();
    let content = &response["content"][media];
    assert!(content.is_object(), "undocumented media type {media:?}: {at}");
    if media != "application/json" {
        return;
    }
    let instance: Value = serde_json::from_slice(body).unwrap_or_else(|e| panic!("{e}: {at}"));
    let validator = validator(template, &method, status);
    let errors: Vec<String> = validator.iter_errors(&instance).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "answer breaks its schema ({}): {at}", errors.join("; "));
}

/// A validator of the JSON schema of one documented answer, with the document's components beside
/// it so that its `$ref`s resolve.
fn validator(template: &str, method: &str, status: u16) -> Arc<jsonschema::Validator> {
    let key = format!("{method} {template} {status}");
    let mut cache = VALIDATORS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let entry = cache.entry(key.clone()).or_insert_with(|| {
        let response = &DOCUMENT["paths"][template][method]["responses"][status.to_string()];
        let mut root = response["content"]["application/json"]["schema"].clone();
        assert!(root.is_object(), "no JSON schema: {key}");
        root["$schema"] = "https://json-schema.org/draft/2020-12/schema".into();
        root["components"] = DOCUMENT["components"].clone();
        Arc::new(jsonschema::validator_for(&root).unwrap_or_else(|e| panic!("{key}: {e}")))
    });
    Arc::clone(entry)
}

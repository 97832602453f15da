//! `/openapi.json` is generated from the endpoints' declarations and pinned by a snapshot (a route
//! or an answer that changes shows up in review). Every answer any test receives is checked against
//! it (`documented`); here every documented operation is called at least once, and the checker is
//! shown to refuse what the document does not say.

use axum::{body::Body, http::Request};
use provisio_testkit::backend_test;
use serde_json::Value;

use crate::{documented, support::TestApp};

#[backend_test]
async fn the_openapi_document_matches_its_snapshot_and_is_served() {
    let document = provisio_server::http::routes::openapi();
    insta::assert_json_snapshot!("openapi", document);
    let app = TestApp::new().await;
    let (status, _, body) = app.browse("/openapi.json", None).await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), document);
    // Every protocol path of the spec is documented.
    for path in [
        "/provisioning/health",
        "/provisioning/services",
        "/provisioning/account_requests",
        "/oauth/token",
        "/provisioning/resources",
        "/provisioning/resources/{id}",
        "/provisioning/resources/{id}/update_service",
        "/provisioning/resources/{id}/rotate_credentials",
        "/provisioning/resources/{id}/remove",
        "/provisioning/deep_links",
    ] {
        assert!(document["paths"].get(path).is_some(), "{path}");
    }
}

/// Each operation of the document, called as a stranger would (no credentials, an empty body),
/// answers one of the answers it documents, in the documented shape (checked by the test app), and
/// one that requires credentials does not serve the stranger.
#[backend_test]
async fn every_documented_operation_answers_as_documented() {
    let document = provisio_server::http::routes::openapi();
    let app = TestApp::with_operator_token().await;
    let mut called = 0;
    for (template, item) in document["paths"].as_object().unwrap() {
        let path =
            template.replace("{id}", "1").replace("{project_id}", "1").replace("{user_id}", "u_1");
        assert_eq!(documented::template_of(&path), Some(template.as_str()));
        for method in item.as_object().unwrap().keys() {
            let request = Request::builder()
                .method(method.to_ascii_uppercase().as_str())
                .uri(&path)
                .body(Body::empty())
                .unwrap();
            let (status, _, _) = app.raw(request).await;
            assert!(status < 500 || status == 502, "{method} {path}: {status}");
            // An operation that documents credentials as required serves nobody without them.
            let security = item[method]["security"].as_array();
            let required = security.is_some_and(|s| s.iter().all(|r| r != &serde_json::json!({})));
            assert!(
                !(required && (200..300).contains(&status)),
                "{method} {path} served a stranger"
            );
            called += 1;
        }
    }
    assert_eq!(called, 30, "every operation of the document was called");
}

#[test]
#[should_panic(expected = "undocumented answer")]
fn an_undocumented_status_is_refused() {
    documented::check("GET", "/healthz", 418, Some("application/json"), br#"{"status":"ok"}"#);
}

#[test]
#[should_panic(expected = "breaks its schema")]
fn an_answer_that_breaks_its_schema_is_refused() {
    documented::check("GET", "/healthz", 200, Some("application/json"), br#"{"status":1}"#);
}

#[test]
#[should_panic(expected = "undocumented media type")]
fn an_undocumented_media_type_is_refused() {
    documented::check("GET", "/", 200, Some("application/json"), b"{}");
}

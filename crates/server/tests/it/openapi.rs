//! `/openapi.json`, generated from the route table, is pinned by a snapshot: a route or an answer
//! that changes shows up in review.

use crate::support::TestApp;
use provisio_testkit::backend_test;

#[backend_test]
async fn the_openapi_document_matches_its_snapshot_and_is_served() {
    let document = provisio_server::http::routes::openapi();
    insta::assert_json_snapshot!("openapi", document);
    let app = TestApp::new().await;
    let (status, _, body) = app.browse("/openapi.json", None).await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap(), document);
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

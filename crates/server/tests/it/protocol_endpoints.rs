//! health and services: the happy path and every error with its exact status and body, including
//! requests that are wrong in two ways (the check order decides).

use provisio_testkit::backend_test;
use serde_json::json;

use crate::support::{NOW, Req, SECRET, TestApp};

const PATHS: [&str; 2] = ["/provisioning/health", "/provisioning/services"];

fn invalid_signature() -> serde_json::Value {
    json!({"error":{"code":"invalid_signature","message":"Signature verification failed"}})
}

fn invalid_api_version() -> serde_json::Value {
    json!({"error":{"code":"invalid_api_version","message":"Supported API-Versions: 0.1d"}})
}

#[backend_test]
async fn health_answers_ok() {
    let app = TestApp::new().await;
    let reply = app.send(Req::get("/provisioning/health").build()).await;
    reply.assert(200, json!({"status":"ok","supported_versions":["0.1d"]}));
    assert_eq!(reply.headers["content-type"], "application/json");
    assert!(reply.headers.contains_key("x-request-id"));
}

#[backend_test]
async fn services_answers_the_default_catalog_without_next_cursor() {
    let app = TestApp::new().await;
    let reply = app.send(Req::get("/provisioning/services").build()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json.as_object().unwrap().keys().collect::<Vec<_>>(), ["data"]);
    let ids: Vec<_> =
        reply.json["data"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["free", "pay_as_you_go", "analytics"]);
    assert_eq!(reply.json["data"][1]["pricing"]["paid"]["type"], "freeform");
    assert_eq!(
        reply.json["data"][2]["allowed_updates"],
        json!([{"service":"free","direction":"any"},{"service":"pay_as_you_go","direction":"any"}])
    );
}

#[backend_test]
async fn signature_failures_are_401_flat() {
    let app = TestApp::new().await;
    let good = provisio_protocol::signature::sign(SECRET.as_bytes(), NOW, b"");
    for path in PATHS {
        let cases = [
            ("missing", Req::get(path).signature(None)),
            ("garbage", Req::get(path).signature(Some("nonsense"))),
            ("no v1", Req::get(path).signature(Some(&format!("t={NOW}")))),
            ("short v1", Req::get(path).signature(Some(&format!("t={NOW},v1=abcd")))),
            ("wrong secret", Req::get(path).signed_with(&["whsec_other"], NOW)),
            ("stale", Req::get(path).signed_with(&[SECRET], NOW - 301)),
            ("future", Req::get(path).signed_with(&[SECRET], NOW + 301)),
            (
                "timestamp swapped",
                Req::get(path).signature(Some(&format!("t={},v1={good}", NOW + 1))),
            ),
            ("tampered body", Req::get(path).tamper("x")),
        ];
        for (name, req) in cases {
            let reply = app.send(req.build()).await;
            assert_eq!((reply.status, &reply.json), (401, &invalid_signature()), "{path}: {name}");
        }
    }
}

#[backend_test]
async fn signatures_within_tolerance_and_uppercase_hex_pass() {
    let app = TestApp::new().await;
    for at in [NOW - 300, NOW + 300] {
        let reply =
            app.send(Req::get("/provisioning/health").signed_with(&[SECRET], at).build()).await;
        assert_eq!(reply.status, 200, "offset {}", at - NOW);
    }
    let upper = format!(
        "t={NOW},v1={}",
        provisio_protocol::signature::sign(SECRET.as_bytes(), NOW, b"").to_uppercase()
    );
    let reply = app.send(Req::get("/provisioning/health").signature(Some(&upper)).build()).await;
    assert_eq!(reply.status, 200);
}

#[backend_test]
async fn rotation_accepts_double_signatures_and_either_secret() {
    let app = TestApp::with_secrets(&["whsec_old", "whsec_new"]).await;
    for secrets in [
        &["whsec_old"][..],
        &["whsec_new"],
        &["whsec_retired", "whsec_new"],
        &["whsec_old", "whsec_unknown"],
    ] {
        let reply =
            app.send(Req::get("/provisioning/health").signed_with(secrets, NOW).build()).await;
        assert_eq!(reply.status, 200, "{secrets:?}");
    }
    let reply = app
        .send(Req::get("/provisioning/health").signed_with(&["whsec_retired"], NOW).build())
        .await;
    reply.assert(401, invalid_signature());
}

#[backend_test]
async fn api_version_missing_or_wrong_is_400_flat() {
    let app = TestApp::new().await;
    for path in PATHS {
        for version in [None, Some("0.1c"), Some(""), Some("0.1D")] {
            let reply = app.send(Req::get(path).api_version(version).build()).await;
            assert_eq!(
                (reply.status, &reply.json),
                (400, &invalid_api_version()),
                "{path} {version:?}"
            );
        }
    }
}

#[backend_test]
async fn signature_is_checked_before_api_version() {
    let app = TestApp::new().await;
    for path in PATHS {
        let reply = app.send(Req::get(path).signature(None).api_version(None).build()).await;
        reply.assert(401, invalid_signature());
        let reply = app
            .send(Req::get(path).signed_with(&["wrong"], NOW).api_version(Some("9")).build())
            .await;
        reply.assert(401, invalid_signature());
    }
}

#[backend_test]
async fn no_signing_secret_is_500_server_error_before_anything_else() {
    let app = TestApp::with_secrets(&[]).await;
    let body = json!({"error":{"code":"server_error","message":"No signing secret is configured"}});
    for path in PATHS {
        app.send(Req::get(path).build()).await.assert(500, body.clone());
        app.send(Req::get(path).signature(None).api_version(None).build())
            .await
            .assert(500, body.clone());
    }
}

#[backend_test]
async fn oversized_body_is_413_flat() {
    let limits = provisio_server::config::Limits { max_body_bytes: 1024, ..Default::default() };
    let app = TestApp::build(&[SECRET], limits).await;
    let body = json!({"error":{"code":"request_too_large","message":"Request body is too large"}});
    let reply = app.send(Req::post("/provisioning/health", vec![b'a'; 1025]).build()).await;
    // POST on a GET route is 405; the limit is enforced where a body is read.
    assert_eq!(reply.status, 405);
    let mut req = Req::get("/provisioning/health").build();
    *req.body_mut() = axum::body::Body::from(vec![b'a'; 1025]);
    app.send(req).await.assert(413, body.clone());
    let mut req = Req::get("/provisioning/services").build();
    *req.body_mut() = axum::body::Body::from(vec![b'a'; 1024]);
    // Exactly at the limit is read (and then fails the signature, which covered an empty body).
    app.send(req).await.assert(401, invalid_signature());
}

#[backend_test]
async fn operational_endpoints_need_no_signature() {
    let app = TestApp::new().await;
    app.send(Req::get("/healthz").signature(None).api_version(None).build())
        .await
        .assert(200, json!({"status":"ok"}));
    app.send(Req::get("/readyz").signature(None).build())
        .await
        .assert(200, json!({"status":"ok","database":"ok"}));
}

#[backend_test]
async fn readyz_reports_an_unreachable_database() {
    let app = TestApp::new().await;
    app.state.store.close().await.expect("the store closes cleanly");
    app.send(Req::get("/readyz").build())
        .await
        .assert(503, json!({"status":"unavailable","database":"unreachable"}));
}

#[backend_test]
async fn unknown_routes_and_methods_answer_flat_json() {
    let app = TestApp::new().await;
    app.send(Req::get("/provisioning/nothing").build())
        .await
        .assert(404, json!({"error":{"code":"not_found","message":"No such endpoint"}}));
    app.send(Req::post("/provisioning/services", "{}").build())
        .await
        .assert(405, json!({"error":{"code":"method_not_allowed","message":"Method not allowed on this endpoint"}}));
}

#[backend_test]
async fn a_client_request_id_is_echoed() {
    let app = TestApp::new().await;
    let reply =
        app.send(Req::get("/provisioning/health").header("x-request-id", "req-abc").build()).await;
    assert_eq!(reply.headers["x-request-id"], "req-abc");
}

#[backend_test]
async fn an_unfit_request_id_is_replaced_by_a_fresh_one() {
    // Found in a security review: any client-given X-Request-Id was echoed and written to the
    // audit log as given. Kept only when 1-128 visible ASCII characters.
    let app = TestApp::new().await;
    let long = "r".repeat(129);
    for given in [long.as_str(), "has space", "tab\there", "\u{7f}"] {
        let Ok(value) = axum::http::HeaderValue::from_str(given) else { continue };
        let mut request = Req::get("/provisioning/health").build();
        request.headers_mut().insert("x-request-id", value);
        let reply = app.send(request).await;
        let id = reply.headers["x-request-id"].to_str().unwrap();
        assert_ne!(id, given);
        assert_eq!(id.len(), 36, "a fresh UUID: {id}");
    }
    let kept = "r".repeat(128);
    let reply =
        app.send(Req::get("/provisioning/health").header("x-request-id", &kept).build()).await;
    assert_eq!(reply.headers["x-request-id"], kept.as_str());
}

#[backend_test]
async fn an_oversized_content_length_is_413_before_the_body_is_read() {
    // Found in a security review: the declared length was not refused early; the server waited
    // for a body that never came (and answered `100 Continue` to one announced with `Expect`).
    let app = TestApp::new().await;
    let mut req = Req::post("/provisioning/resources", Vec::new())
        .header("content-length", "2000000")
        .header("expect", "100-continue")
        .build();
    // No body at all: refused on the header alone.
    *req.body_mut() = axum::body::Body::empty();
    app.send(req).await.assert(
        413,
        json!({"error":{"code":"request_too_large","message":"Request body is too large"}}),
    );
}

//! `Idempotency-Key`: same key and body replay the recorded answer (nothing runs twice); a different
//! body conflicts; records expire after 24 h; only successes are recorded; what is stored is sealed.

use provisio_testkit::backend_test;
use serde_json::json;

use crate::support::{NOW, Req, SECRET, TestApp};

async fn token(app: &TestApp, email: &str) -> String {
    app.tokens_for(email).await["access_token"].as_str().unwrap().to_string()
}

fn keyed(req: Req, key: &str) -> Req {
    req.header("idempotency-key", key)
}

#[backend_test]
async fn the_same_key_and_body_replay_the_answer_without_running_again() {
    let app = TestApp::new().await;
    let access = token(&app, "idem-key@example.com").await;
    let body = json!({"project_id": "k"});
    let first =
        app.with_bearer(keyed(Req::json("/provisioning/resources", &body), "key-1"), &access).await;
    assert_eq!(first.status, 200, "{}", first.json);
    let keys_after_first = app.count("personal_keys").await;
    let second =
        app.with_bearer(keyed(Req::json("/provisioning/resources", &body), "key-1"), &access).await;
    assert_eq!(
        (second.status, &second.json),
        (200, &first.json),
        "the recorded answer, personal key included"
    );
    assert_eq!(second.headers["idempotent-replayed"], "true");
    assert_eq!(app.count("personal_keys").await, keys_after_first, "nothing ran twice");

    // The record holds no readable credential.
    let personal =
        first.json["complete"]["access_configuration"]["personal_api_key"].as_str().unwrap();
    let stored = app
        .rows("SELECT key_hash, request_hash, nonce, sealed_body FROM idempotency_records")
        .await;
    // The Idempotency-Key record, and a replay record for each signed POST (the account request too).
    assert_eq!(stored.len(), 4);
    for value in stored.iter().flat_map(|row| &row.0) {
        assert!(!value.to_string().contains(personal) && !value.to_string().contains("key-1"));
    }

    let other = app
        .with_bearer(
            keyed(Req::json("/provisioning/resources", &json!({"project_id": "other"})), "key-1"),
            &access,
        )
        .await;
    other.assert(
        409,
        json!({"status":"error","id":"","error":{"code":"idempotency_conflict","message":"Idempotency-Key was already used with a different request"}}),
    );
}

#[backend_test]
async fn records_expire_after_a_day_and_failures_are_not_recorded() {
    let app = TestApp::new().await;
    let access = token(&app, "idem-exp@example.com").await;
    let bad = app
        .with_bearer(
            keyed(Req::json("/provisioning/resources", &json!({"service_id": "nope"})), "key-2"),
            &access,
        )
        .await;
    assert_eq!(bad.status, 400);
    let good = app
        .with_bearer(keyed(Req::json("/provisioning/resources", &json!({})), "key-2"), &access)
        .await;
    assert_eq!(good.status, 200, "a failure did not claim the key: {}", good.json);

    app.state.clock.advance(24 * 3600 + 1);
    let later = NOW + 24 * 3600 + 1;
    let again = app
        .with_bearer(
            keyed(
                Req::json("/provisioning/resources", &json!({})).signed_with(&[SECRET], later),
                "key-2",
            ),
            &access,
        )
        .await;
    assert_eq!(again.status, 200);
    assert!(again.headers.get("idempotent-replayed").is_none(), "expired: it ran again");
    assert_ne!(
        again.json["complete"]["access_configuration"]["personal_api_key"],
        good.json["complete"]["access_configuration"]["personal_api_key"]
    );
}

#[backend_test]
async fn keys_are_scoped_to_the_organization_and_endpoint() {
    let app = TestApp::new().await;
    let a = token(&app, "idem-a@example.com").await;
    let b = token(&app, "idem-b@example.com").await;
    let ra = app
        .with_bearer(keyed(Req::json("/provisioning/resources", &json!({})), "shared"), &a)
        .await;
    let rb = app
        .with_bearer(keyed(Req::json("/provisioning/resources", &json!({})), "shared"), &b)
        .await;
    assert_ne!(ra.json["id"], rb.json["id"], "another organization's key is another record");
    let link = app
        .with_bearer(
            keyed(
                Req::json("/provisioning/deep_links", &json!({"purpose": "dashboard"})),
                "shared",
            ),
            &a,
        )
        .await;
    assert_eq!(link.status, 200, "another endpoint's key is another record: {}", link.json);
    let replay = app
        .with_bearer(
            keyed(
                Req::json("/provisioning/deep_links", &json!({"purpose": "dashboard"})),
                "shared",
            ),
            &a,
        )
        .await;
    assert_eq!(replay.json, link.json);
    app.with_bearer(keyed(Req::json("/provisioning/deep_links", &json!({"purpose": "dashboard", "resource_id": "1"})), "shared"), &a)
        .await
        .assert(409, json!({"error":{"code":"idempotency_conflict","message":"Idempotency-Key was already used with a different request"}}));
}

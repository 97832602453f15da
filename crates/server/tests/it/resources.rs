//! Resources: create (idempotent by `project_id`), read, update_service, rotate, remove; every error
//! of spec 5.5–5.9 with its exact body; the check order; scoping between organizations.

use provisio_testkit::backend_test;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::support::{NOW, Req, TestApp};

fn status_error(id: &str, code: &str, message: &str) -> Value {
    json!({"status":"error","id":id,"error":{"code":code,"message":message}})
}

/// A fresh user's access token.
async fn token(app: &TestApp, email: &str) -> String {
    app.tokens_for(email).await["access_token"].as_str().unwrap().to_string()
}

fn id_of(reply: &crate::support::Reply) -> String {
    reply.json["id"].as_str().unwrap().to_string()
}

async fn live_personal_keys(app: &TestApp, id: &str) -> i64 {
    app.scalar_i64(&format!(
        "SELECT COUNT(*) FROM personal_keys WHERE project_id = {id} AND revoked_at IS NULL"
    ))
    .await
}

#[backend_test]
async fn create_answers_the_primary_project_with_fresh_credentials() {
    let app = TestApp::new().await;
    let access = token(&app, "res@example.com").await;
    let reply = app.provision(&access, &json!({})).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let primary = app.scalar_i64("SELECT id FROM projects").await.to_string();
    let api_key = app.scalar_text("SELECT api_key FROM projects").await;
    let personal = reply.json["complete"]["access_configuration"]["personal_api_key"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(personal.starts_with("pvpk_") && personal.len() == 5 + 12 + 43);
    assert_eq!(
        reply.json,
        json!({"status":"complete","id":primary,"complete":{"access_configuration":{
            "api_key": api_key, "host": "https://provider.example", "personal_api_key": personal}}})
    );
    assert_eq!(app.scalar_text("SELECT service_id FROM resources").await, "analytics");
    // Only the hash and a display prefix of the personal key are kept.
    assert_eq!(
        app.scalar_text("SELECT key_hash FROM personal_keys").await,
        provisio_server::crypto::token_hash(&personal)
    );
    assert_eq!(app.scalar_text("SELECT prefix FROM personal_keys").await, personal[..21]);

    // Again without project_id: the same resource, a new personal key, the old one revoked.
    let again = app.provision(&access, &json!({})).await;
    assert_eq!(id_of(&again), primary);
    assert_ne!(again.json["complete"]["access_configuration"]["personal_api_key"], json!(personal));
    assert_eq!(live_personal_keys(&app, &primary).await, 1);
    assert_eq!(app.count("personal_keys").await, 2);
}

#[backend_test]
async fn project_id_is_the_idempotency_key() {
    let app = TestApp::new().await;
    let access = token(&app, "idem@example.com").await;
    let first = app
        .provision(
            &access,
            &json!({"project_id": "prj_a", "configuration": {"project_name": "Shop"}}),
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.json);
    let id = id_of(&first);
    assert_eq!(
        app.scalar_text(&format!("SELECT name FROM projects WHERE id = {id}")).await,
        "Shop"
    );
    let same = app.provision(&access, &json!({"project_id": "prj_a"})).await;
    assert_eq!(id_of(&same), id);
    let other = app.provision(&access, &json!({"project_id": "prj_b"})).await;
    assert_ne!(id_of(&other), id);
    assert_eq!(app.count("projects").await, 3, "primary + prj_a + prj_b");
    assert_eq!(
        app.scalar_text(&format!("SELECT name FROM projects WHERE id = {}", id_of(&other))).await,
        "Project prj_b"
    );
    // New projects join the token's scope.
    let read = app
        .with_bearer(Req::get(&format!("/provisioning/resources/{}", id_of(&other))), &access)
        .await;
    assert_eq!(read.status, 200, "{}", read.json);
}

#[backend_test]
async fn create_errors() {
    let app = TestApp::new().await;
    let access = token(&app, "err@example.com").await;
    app.provision(&access, &json!({"service_id": "nope"}))
        .await
        .assert(400, status_error("", "unknown_service", "Unknown service_id: nope"));
    let reply = app.provision(&access, &json!({"configuration": {"project_name": 5}})).await;
    assert_eq!(
        (reply.status, &reply.json["error"]["code"]),
        (400, &json!("invalid_configuration")),
        "{}",
        reply.json
    );
    assert!(
        reply.json["error"]["message"].as_str().unwrap().contains("project_name"),
        "{}",
        reply.json
    );
    app.provision(&access, &json!({"service_id": "pay_as_you_go"})).await.assert(
        400,
        status_error(
            "",
            "requires_payment_credentials",
            "Service pay_as_you_go requires payment credentials",
        ),
    );
    app.provision(&access, &json!({"service_id": "pay_as_you_go", "payment_credentials": {"type": "stripe_payment_token", "stripe_payment_token": "tok_visa"}}))
        .await
        .assert(400, status_error("", "requires_payment_credentials", "The payment token is not a Shared Payment Token (spt_…)"));
    // A credential of another type is ignored: still no token.
    app.provision(&access, &json!({"service_id": "pay_as_you_go", "payment_credentials": {"type": "card", "card": "4242"}}))
        .await
        .assert(400, status_error("", "requires_payment_credentials", "Service pay_as_you_go requires payment credentials"));
    app.send(
        Req::post("/provisioning/resources", "{oops")
            .header("authorization", &format!("Bearer {access}"))
            .build(),
    )
    .await
    .assert(400, status_error("", "invalid_request", "Request body must be a JSON object"));
    assert_eq!(app.count("resources").await, 0, "nothing was provisioned");
}

#[backend_test]
async fn a_paid_service_with_a_token_activates_billing() {
    let app = TestApp::new().await;
    let access = token(&app, "pay@example.com").await;
    let reply = app
        .provision(&access, &json!({"service_id": "pay_as_you_go", "project_id": "p", "payment_credentials": {"type": "stripe_payment_token", "stripe_payment_token": "spt_test_123"}}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(app.scalar_text("SELECT plan FROM billing").await, "pay_as_you_go");
    assert_eq!(
        app.scalar_text("SELECT payment_token_hash FROM billing").await,
        provisio_server::crypto::token_hash("spt_test_123")
    );
    // On the paid plan the analytics component is paid too, and the organization already pays
    // for the plan: a second resource needs no fresh token (as PostHog answers an active
    // subscription).
    let second = app.provision(&access, &json!({"project_id": "q"})).await;
    assert_eq!(second.status, 200, "{}", second.json);
    // A token that is sent anyway is still redeemed.
    let third = app
        .provision(&access, &json!({"project_id": "r", "payment_credentials": {"type": "stripe_payment_token", "stripe_payment_token": "spt_test_456"}}))
        .await;
    assert_eq!(third.status, 200, "{}", third.json);
    assert_eq!(
        app.scalar_text("SELECT payment_token_hash FROM billing").await,
        provisio_server::crypto::token_hash("spt_test_456")
    );
}

#[backend_test]
async fn a_component_on_a_paid_plan_needs_a_token_only_until_the_plan_is_paid() {
    // The path a new user takes: analytics on the free plan, the organization moves to
    // pay_as_you_go with a token, then a second analytics resource under a new project_id.
    let app = TestApp::new().await;
    let access = token(&app, "parity@example.com").await;
    let first =
        app.provision(&access, &json!({"service_id": "analytics", "project_id": "a"})).await;
    assert_eq!(first.status, 200, "{}", first.json);
    let id = id_of(&first);
    let update =
        |body: Value| Req::json(&format!("/provisioning/resources/{id}/update_service"), &body);
    app.with_bearer(update(json!({"service_id": "pay_as_you_go"})), &access).await.assert(
        400,
        status_error(
            &id,
            "requires_payment_credentials",
            "Service pay_as_you_go requires payment credentials",
        ),
    );
    let paid = app
        .with_bearer(update(json!({"service_id": "pay_as_you_go", "payment_credentials": {"type": "stripe_payment_token", "stripe_payment_token": "spt_parity_1"}})), &access)
        .await;
    assert_eq!(paid.status, 200, "{}", paid.json);
    let second =
        app.provision(&access, &json!({"service_id": "analytics", "project_id": "b"})).await;
    assert_eq!(second.status, 200, "the plan is paid for: {}", second.json);
    // Another organization, still on the free plan, gets the free option without a token and
    // is asked for one for the paid plan.
    let other = token(&app, "parity-free@example.com").await;
    assert_eq!(app.provision(&other, &json!({"service_id": "analytics"})).await.status, 200);
    app.provision(&other, &json!({"service_id": "pay_as_you_go", "project_id": "c"})).await.assert(
        400,
        status_error(
            "",
            "requires_payment_credentials",
            "Service pay_as_you_go requires payment credentials",
        ),
    );
}

#[backend_test]
async fn read_errors_and_shapes() {
    let app = TestApp::new().await;
    let access = token(&app, "read@example.com").await;
    let primary = app.scalar_i64("SELECT id FROM projects").await.to_string();
    let path = |id: &str| format!("/provisioning/resources/{id}");
    app.with_bearer(Req::get(&path(&primary)), &access)
        .await
        .assert(404, status_error(&primary, "not_found", "Resource not found"));
    let created = app.provision(&access, &json!({})).await;
    let api_key = created.json["complete"]["access_configuration"]["api_key"].clone();
    app.with_bearer(Req::get(&path(&primary)), &access).await.assert(
        200,
        json!({"status":"complete","id":primary,"complete":{"access_configuration":{"api_key":api_key,"host":"https://provider.example"}}}),
    );
    for bad in ["abc", "-1", "0", "1.5", "99999999999999999999"] {
        app.with_bearer(Req::get(&path(bad)), &access).await.assert(
            400,
            status_error(bad, "invalid_resource_id", &format!("Invalid resource id: {bad}")),
        );
    }
    app.with_bearer(Req::get(&path("424242")), &access).await.assert(
        403,
        status_error("424242", "forbidden", "Resource not accessible with this token"),
    );
}

#[backend_test]
async fn update_service_rules() {
    let app = TestApp::new().await;
    let access = token(&app, "upd@example.com").await;
    let id = id_of(&app.provision(&access, &json!({})).await);
    let update =
        |body: Value| Req::json(&format!("/provisioning/resources/{id}/update_service"), &body);
    app.with_bearer(update(json!({})), &access)
        .await
        .assert(400, status_error(&id, "missing_service_id", "service_id is required"));
    app.with_bearer(update(json!({"service_id": "gold"})), &access)
        .await
        .assert(400, status_error(&id, "unknown_service", "Unknown service_id: gold"));
    app.with_bearer(update(json!({"service_id": "pay_as_you_go"})), &access).await.assert(
        400,
        status_error(
            &id,
            "requires_payment_credentials",
            "Service pay_as_you_go requires payment credentials",
        ),
    );
    app.with_bearer(update(json!({"service_id": "pay_as_you_go", "payment_credentials": {"type": "stripe_payment_token", "stripe_payment_token": "bogus"}})), &access)
        .await
        .assert(400, status_error(&id, "billing_activation_failed", "The payment token is not a Shared Payment Token (spt_…)"));
    let reply = app.with_bearer(update(json!({"service_id": "free"})), &access).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert!(reply.json["complete"]["access_configuration"].get("personal_api_key").is_none());
    assert_eq!(app.scalar_text("SELECT service_id FROM resources").await, "free");
    // `free` may only go up to pay_as_you_go: back to analytics is not an allowed update.
    app.with_bearer(update(json!({"service_id": "analytics"})), &access).await.assert(
        400,
        status_error(&id, "update_not_allowed", "Cannot update from free to analytics"),
    );
    let paid = app
        .with_bearer(update(json!({"service_id": "pay_as_you_go", "payment_credentials": {"type": "stripe_payment_token", "stripe_payment_token": "spt_ok_1"}})), &access)
        .await;
    assert_eq!(paid.status, 200, "{}", paid.json);
    assert_eq!(app.scalar_text("SELECT plan FROM billing").await, "pay_as_you_go");
}

#[backend_test]
async fn rotate_replaces_both_keys_and_remove_is_idempotent() {
    let app = TestApp::new().await;
    let access = token(&app, "rot@example.com").await;
    let created = app.provision(&access, &json!({"project_id": "r"})).await;
    let id = id_of(&created);
    let old = created.json["complete"]["access_configuration"].clone();
    let rotated = app
        .with_bearer(
            Req::post(&format!("/provisioning/resources/{id}/rotate_credentials"), ""),
            &access,
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.json);
    let new = &rotated.json["complete"]["access_configuration"];
    assert_ne!(new["api_key"], old["api_key"]);
    assert_ne!(new["personal_api_key"], old["personal_api_key"]);
    assert_eq!(live_personal_keys(&app, &id).await, 1);
    assert_eq!(
        app.scalar_text(&format!("SELECT api_key FROM projects WHERE id = {id}")).await,
        new["api_key"].as_str().unwrap()
    );
    assert_eq!(app.count("retired_project_keys").await, 1);

    let removed = json!({"status":"removed","id":id});
    let remove = || Req::post(&format!("/provisioning/resources/{id}/remove"), "");
    app.with_bearer(remove(), &access).await.assert(200, removed.clone());
    app.with_bearer(remove(), &access).await.assert(200, removed.clone());
    app.with_bearer(Req::get(&format!("/provisioning/resources/{id}")), &access)
        .await
        .assert(200, removed);
    assert_eq!(live_personal_keys(&app, &id).await, 0);
    let gone = status_error(&id, "invalid_state", "Resource has been removed");
    app.with_bearer(
        Req::post(&format!("/provisioning/resources/{id}/rotate_credentials"), ""),
        &access,
    )
    .await
    .assert(409, gone.clone());
    app.with_bearer(
        Req::json(
            &format!("/provisioning/resources/{id}/update_service"),
            &json!({"service_id":"free"}),
        ),
        &access,
    )
    .await
    .assert(409, gone);
    // The same project_id reactivates it with fresh credentials.
    let back = app.provision(&access, &json!({"project_id": "r"})).await;
    assert_eq!((back.status, id_of(&back)), (200, id.clone()));
    assert_ne!(back.json["complete"]["access_configuration"]["api_key"], new["api_key"]);
    assert_eq!(
        app.scalar_text(&format!("SELECT status FROM resources WHERE project_id = {id}")).await,
        "active"
    );
}

#[backend_test]
async fn tokens_of_one_organization_cannot_touch_another_ones_resources() {
    let app = TestApp::new().await;
    let a = token(&app, "a@example.com").await;
    let b = token(&app, "b@example.com").await;
    let b_created = app.provision(&b, &json!({"project_id": "b1"})).await;
    let id = id_of(&b_created);
    let before = app.rows(&format!("SELECT p.api_key, r.status, r.service_id, (SELECT COUNT(*) FROM personal_keys WHERE project_id = {id} AND revoked_at IS NULL) FROM projects p JOIN resources r ON r.project_id = p.id WHERE p.id = {id}")).await;
    let forbidden = status_error(&id, "forbidden", "Resource not accessible with this token");
    let base = format!("/provisioning/resources/{id}");
    for req in [
        Req::get(&base),
        Req::json(&format!("{base}/update_service"), &json!({"service_id": "free"})),
        Req::post(&format!("{base}/rotate_credentials"), ""),
        Req::post(&format!("{base}/remove"), ""),
    ] {
        app.with_bearer(req, &a).await.assert(403, forbidden.clone());
    }
    let after = app.rows(&format!("SELECT p.api_key, r.status, r.service_id, (SELECT COUNT(*) FROM personal_keys WHERE project_id = {id} AND revoked_at IS NULL) FROM projects p JOIN resources r ON r.project_id = p.id WHERE p.id = {id}")).await;
    assert_eq!(before, after, "B's resource is unchanged");
    // A's own create with B's project_id is A's own, separate project.
    let a_created = app.provision(&a, &json!({"project_id": "b1"})).await;
    assert_ne!(id_of(&a_created), id);
}

#[backend_test]
async fn check_order_bearer_signature_version_id_body() {
    let app = TestApp::new().await;
    let access = token(&app, "order@example.com").await;
    let bearer = format!("Bearer {access}");
    let url = "/provisioning/resources/abc/update_service";
    let missing = |id: &str| status_error(id, "unauthorized", "Missing bearer token");
    // No bearer and a bad signature: the bearer answers.
    app.send(Req::post(url, "{").signed_with(&["wrong"], NOW).api_version(None).build())
        .await
        .assert(401, missing("abc"));
    app.send(Req::post("/provisioning/resources", "{").signature(None).build())
        .await
        .assert(401, missing(""));
    app.send(Req::post(url, "{").header("authorization", "Bearer pvat_nope").build())
        .await
        .assert(401, status_error("abc", "unauthorized", "Invalid or expired access token"));
    // Good bearer, bad signature.
    app.send(
        Req::post(url, "{").header("authorization", &bearer).signed_with(&["wrong"], NOW).build(),
    )
    .await
    .assert(
        401,
        json!({"error":{"code":"invalid_signature","message":"Signature verification failed"}}),
    );
    // Good bearer and signature, bad version.
    app.send(Req::post(url, "{").header("authorization", &bearer).api_version(Some("1")).build())
        .await
        .assert(400, json!({"error":{"code":"invalid_api_version","message":"Supported API-Versions: 0.1d"}}));
    // Then the path id, before the body.
    app.send(Req::post(url, "{").header("authorization", &bearer).build())
        .await
        .assert(400, status_error("abc", "invalid_resource_id", "Invalid resource id: abc"));
}

#[backend_test]
async fn a_token_without_projects_has_no_team() {
    let app = TestApp::new().await;
    let access = token(&app, "noteam@example.com").await;
    app.exec("DELETE FROM token_family_projects").await;
    app.provision(&access, &json!({}))
        .await
        .assert(400, status_error("", "no_team", "This token has no project to provision into"));
}

#[backend_test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_creates_with_one_project_id_make_one_project() {
    let app = Arc::new(TestApp::new().await);
    let access = Arc::new(token(&app, "race-res@example.com").await);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (app, access) = (app.clone(), access.clone());
            tokio::spawn(async move {
                let reply = app.provision(&access, &json!({"project_id": "same"})).await;
                (reply.status, reply.json["id"].clone())
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        let (status, id) = task.await.unwrap();
        assert_eq!(status, 200);
        ids.push(id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1);
    assert_eq!(app.count("projects").await, 2, "the primary project and one for `same`");
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM personal_keys WHERE revoked_at IS NULL").await,
        1,
        "one live provisioned key"
    );
}

#[backend_test]
async fn a_failed_rotation_is_credential_rotation_failed_and_changes_nothing() {
    let app = TestApp::new().await;
    let access = token(&app, "rotfail@example.com").await;
    let id = id_of(&app.provision(&access, &json!({})).await);
    let key = app.scalar_text(&format!("SELECT api_key FROM projects WHERE id = {id}")).await;
    // Break the table a rotation writes to, so its transaction fails part-way.
    app.exec("DROP TABLE retired_project_keys").await;
    app.with_bearer(
        Req::post(&format!("/provisioning/resources/{id}/rotate_credentials"), ""),
        &access,
    )
    .await
    .assert(
        500,
        status_error(
            &id,
            "credential_rotation_failed",
            "The operation failed; nothing was changed",
        ),
    );
    assert_eq!(
        app.scalar_text(&format!("SELECT api_key FROM projects WHERE id = {id}")).await,
        key
    );
    assert_eq!(live_personal_keys(&app, &id).await, 1, "the old personal key still works");
}

/// Rotations racing on one resource (on PostgreSQL, concurrently): every one answers fresh
/// credentials, exactly one provisioning key stays live, and every replaced project key is retired.
#[backend_test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_rotations_leave_one_live_key_and_retire_every_replaced_one() {
    let app = Arc::new(TestApp::new().await);
    let access = Arc::new(token(&app, "race-rot@example.com").await);
    let id = Arc::new(id_of(&app.provision(&access, &json!({"project_id": "rr"})).await));
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let (app, access, id) = (app.clone(), access.clone(), id.clone());
            tokio::spawn(async move {
                // Distinct timestamps: ten requests, not one request replayed.
                let rotate =
                    Req::post(&format!("/provisioning/resources/{id}/rotate_credentials"), "")
                        .signed_with(&[crate::support::SECRET], NOW - i);
                let reply = app.with_bearer(rotate, &access).await;
                assert_eq!(reply.status, 200, "{}", reply.json);
                reply.json["complete"]["access_configuration"]["api_key"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
        })
        .collect();
    let mut keys = Vec::new();
    for task in tasks {
        keys.push(task.await.unwrap());
    }
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 10, "every rotation answered its own key");
    assert_eq!(live_personal_keys(&app, &id).await, 1);
    let current = app.scalar_text(&format!("SELECT api_key FROM projects WHERE id = {id}")).await;
    assert!(keys.contains(&current));
    assert_eq!(
        app.count("retired_project_keys").await,
        10,
        "the created key and nine rotated ones"
    );
}

#[backend_test]
async fn overlong_resource_fields_are_refused_naming_the_field() {
    let app = TestApp::new().await;
    let tokens = app.tokens_for("longres@example.com").await;
    let access = tokens["access_token"].as_str().unwrap();
    app.provision(access, &json!({"project_id": "p".repeat(256)})).await.assert(
        400,
        json!({"status":"error","id":"","error":{"code":"invalid_request",
               "message":"project_id is too long (at most 255 characters)"}}),
    );
    assert_eq!(app.count("resources").await, 0);
}

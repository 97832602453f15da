//! `POST /provisioning/account_requests`: new users, email-based linking, project resolution, every
//! validation error with its exact body, and the check order.

use provisio_testkit::backend_test;
use serde_json::{Value, json};

use crate::support::{NOW, Req, TestApp, account_body, unique_id};

fn typed(id: Option<&str>, code: &str, message: &str) -> Value {
    let mut body = json!({"type":"error","error":{"code":code,"message":message}});
    if let Some(id) = id {
        body["id"] = json!(id);
    }
    body
}

fn flat(code: &str, message: &str) -> Value {
    json!({"error":{"code":code,"message":message}})
}

/// The project a code resolved to, read through the token it buys.
async fn project_of(app: &TestApp, code: &str) -> i64 {
    let tokens = app.redeem(code).await;
    app.principal(tokens["access_token"].as_str().unwrap()).await.unwrap().primary_project_id
}

/// Adds a project to the user's oldest organization.
async fn add_project(app: &TestApp, email: &str, name: &str, demo: bool) -> i64 {
    let org = app
        .scalar_text(&format!(
            "SELECT m.organization_id FROM memberships m JOIN users u ON u.id = m.user_id \
             WHERE u.email_normalized = '{email}' ORDER BY m.created_at, m.id LIMIT 1"
        ))
        .await;
    app.exec(&format!(
        "INSERT INTO projects (organization_id, name, is_demo, api_key, created_at) \
         VALUES ('{org}', '{name}', {}, 'pub_{name}_{}', {NOW})",
        i64::from(demo),
        unique_id()
    ))
    .await;
    app.scalar_i64("SELECT MAX(id) FROM projects").await
}

#[backend_test]
async fn a_new_email_creates_user_organization_membership_and_project() {
    let app = TestApp::new().await;
    let mut body = account_body("ar_new", "  Ada@Example.com ");
    body["name"] = json!("Ada King Lovelace");
    let reply = app.account_request(&body).await;
    assert_eq!(reply.status, 200);
    let code = reply.json["oauth"]["code"].as_str().unwrap();
    assert_eq!(code.len(), 43);
    assert!(code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert_eq!(reply.json, json!({"id":"ar_new","type":"oauth","oauth":{"code":code}}));

    assert_eq!(
        (app.count("users").await, app.count("organizations").await, app.count("projects").await),
        (1, 1, 1)
    );
    assert_eq!(app.scalar_text("SELECT email FROM users").await, "Ada@Example.com");
    assert_eq!(app.scalar_text("SELECT email_normalized FROM users").await, "ada@example.com");
    assert_eq!(app.scalar_text("SELECT first_name FROM users").await, "Ada");
    assert_eq!(app.scalar_text("SELECT name FROM organizations").await, "Stripe (Ada@Example.com)");
    assert_eq!(app.scalar_text("SELECT role FROM memberships").await, "owner");
    assert_eq!(app.scalar_i64("SELECT is_demo FROM projects").await, 0);
}

#[backend_test]
async fn organization_name_can_be_given() {
    let app = TestApp::new().await;
    let mut body = account_body(&unique_id(), "grace@example.com");
    body["configuration"] = json!({"organization_name": "Hopper Labs"});
    let tokens = app.redeem(&app.code_with(body).await).await;
    assert_eq!(tokens["account"]["available_teams"][0]["organization_name"], "Hopper Labs");
    let mut bad = account_body("ar_bad_org", "grace2@example.com");
    bad["configuration"] = json!({"organization_name": 7});
    app.account_request(&bad).await.assert(
        400,
        typed(
            Some("ar_bad_org"),
            "invalid_request",
            "configuration.organization_name must be a non-empty string",
        ),
    );
}

#[backend_test]
async fn an_existing_user_with_one_project_links_to_it_without_creating_anything() {
    let app = TestApp::new().await;
    let first = project_of(&app, &app.code_for("linus@example.com").await).await;
    let again = project_of(&app, &app.code_for(" LINUS@example.COM").await).await;
    assert_eq!(first, again);
    assert_eq!(
        (app.count("users").await, app.count("organizations").await, app.count("projects").await),
        (1, 1, 1)
    );
}

#[backend_test]
async fn team_id_selects_a_second_own_project_as_integer_or_digit_string() {
    let app = TestApp::new().await;
    app.code_for("tim@example.com").await;
    let second = add_project(&app, "tim@example.com", "second", false).await;
    for team_id in [json!(second), json!(format!(" {second} ")), json!(second.to_string())] {
        let mut body = account_body(&unique_id(), "tim@example.com");
        body["configuration"] = json!({"team_id": team_id});
        assert_eq!(project_of(&app, &app.code_with(body).await).await, second, "team_id {team_id}");
    }
    assert_eq!(app.count("projects").await, 2);
}

#[backend_test]
async fn foreign_demo_or_missing_team_id_fails_resolution_with_one_message() {
    let app = TestApp::new().await;
    app.code_for("owner@example.com").await;
    app.code_for("other@example.com").await;
    let foreign = app.scalar_i64("SELECT p.id FROM projects p JOIN memberships m ON m.organization_id = p.organization_id JOIN users u ON u.id = m.user_id WHERE u.email_normalized = 'other@example.com'").await;
    let demo = add_project(&app, "owner@example.com", "demo", true).await;
    for team_id in [json!(foreign), json!(demo), json!(987654), json!("987654")] {
        let mut body = account_body("ar_team", "owner@example.com");
        body["configuration"] = json!({"team_id": team_id});
        app.account_request(&body).await.assert(
            400,
            typed(
                Some("ar_team"),
                "team_resolution_failed",
                "Could not resolve a project for this user",
            ),
        );
    }
}

#[backend_test]
async fn a_team_id_that_is_not_an_integer_is_invalid_request_with_id() {
    let app = TestApp::new().await;
    for team_id in [
        json!("abc"),
        json!(1.5),
        json!(true),
        json!([1]),
        json!({"id": 1}),
        json!("-1"),
        json!(""),
    ] {
        let mut body = account_body("ar_tid", "n@example.com");
        body["configuration"] = json!({"team_id": team_id});
        app.account_request(&body).await.assert(
            400,
            typed(Some("ar_tid"), "invalid_request", "configuration.team_id must be an integer"),
        );
    }
    // null is absent: accepted.
    let mut body = account_body("ar_null", "n@example.com");
    body["configuration"] = json!({"team_id": null});
    assert_eq!(app.account_request(&body).await.status, 200);
}

#[backend_test]
async fn several_projects_without_team_id_create_exactly_one_new_project_in_the_oldest_organization()
 {
    let app = TestApp::new().await;
    app.code_for("two@example.com").await;
    add_project(&app, "two@example.com", "second", false).await;
    let before = app.count("projects").await;
    let resolved = project_of(&app, &app.code_for("two@example.com").await).await;
    assert_eq!(app.count("projects").await, before + 1);
    assert_eq!(app.scalar_i64("SELECT MAX(id) FROM projects").await, resolved);
    let oldest = app
        .scalar_text("SELECT organization_id FROM memberships ORDER BY created_at, id LIMIT 1")
        .await;
    assert_eq!(
        app.scalar_text(&format!("SELECT organization_id FROM projects WHERE id = {resolved}"))
            .await,
        oldest
    );
    assert_eq!(
        app.scalar_text(&format!("SELECT name FROM projects WHERE id = {resolved}")).await,
        "Stripe project"
    );
}

#[backend_test]
async fn only_demo_projects_create_a_new_project() {
    let app = TestApp::new().await;
    app.code_for("demo@example.com").await;
    app.exec("UPDATE projects SET is_demo = 1").await;
    let resolved = project_of(&app, &app.code_for("demo@example.com").await).await;
    assert_eq!(app.count("projects").await, 2);
    assert_eq!(
        app.scalar_i64(&format!("SELECT is_demo FROM projects WHERE id = {resolved}")).await,
        0
    );
}

#[backend_test]
async fn a_user_without_organization_fails_resolution() {
    let app = TestApp::new().await;
    app.exec(&format!("INSERT INTO users (id, email, email_normalized, created_at) VALUES ('usr_lonely', 'lonely@example.com', 'lonely@example.com', {NOW})")).await;
    app.account_request(&account_body("ar_lonely", "Lonely@example.com")).await.assert(
        400,
        typed(
            Some("ar_lonely"),
            "team_resolution_failed",
            "Could not resolve a project for this user",
        ),
    );
    assert_eq!(app.count("projects").await, 0);
}

#[backend_test]
async fn a_retried_request_id_resolves_to_the_same_project_and_creates_nothing() {
    let app = TestApp::new().await;
    app.code_for("retry@example.com").await;
    add_project(&app, "retry@example.com", "second", false).await;
    let body = account_body("ar_retry", "retry@example.com");
    let first = project_of(&app, &app.code_with(body.clone()).await).await;
    let projects = app.count("projects").await;
    let second = project_of(&app, &app.code_with(body).await).await;
    assert_eq!((first, app.count("projects").await), (second, projects));
    app.account_request(&account_body("ar_retry", "someone-else@example.com")).await.assert(
        400,
        typed(
            Some("ar_retry"),
            "invalid_request",
            "This request id was already used for a different email",
        ),
    );
}

#[backend_test]
async fn body_validation_errors_carry_no_id() {
    let app = TestApp::new().await;
    let cases: Vec<(Value, u16, Value)> = vec![
        (
            json!({"id":"a","orchestrator":{"stripe":{"account":"acct"}}}),
            400,
            typed(None, "invalid_request", "email is required"),
        ),
        (json!({"id":"a","email":"   "}), 400, typed(None, "invalid_request", "email is required")),
        (json!({"id":"a","email":null}), 400, typed(None, "invalid_request", "email is required")),
        (
            json!({"id":"a","email":"not-an-email"}),
            400,
            typed(None, "invalid_request", "email is malformed"),
        ),
        (
            json!({"id":"a","email":"a@b"}),
            400,
            typed(None, "invalid_request", "email is malformed"),
        ),
        (
            json!({"id":"a","email":"a b@example.com"}),
            400,
            typed(None, "invalid_request", "email is malformed"),
        ),
        (
            json!({"id":"a","email":"x@example.com","expires_at":"tomorrow"}),
            400,
            typed(None, "invalid_request", "expires_at must be an RFC 3339 timestamp"),
        ),
        (
            json!({"id":"a","email":"x@example.com","expires_at":"2025-01-01T00:00:00Z"}),
            400,
            typed(None, "expired", "Account request has expired"),
        ),
        (
            json!({"id":"a","email":"x@example.com","code_challenge":"a".repeat(43),"code_challenge_method":"plain"}),
            400,
            typed(None, "invalid_request", "code_challenge_method must be S256"),
        ),
        (
            json!({"id":"a","email":"x@example.com","code_challenge_method":"S256"}),
            400,
            typed(None, "invalid_request", "code_challenge is required with code_challenge_method"),
        ),
        (
            json!({"id":"a","email":"x@example.com","code_challenge":"short"}),
            400,
            typed(None, "invalid_request", "code_challenge must be 43 to 128 base64url characters"),
        ),
        (
            json!({"id":"a","email":"x@example.com"}),
            400,
            typed(None, "invalid_request", "orchestrator.stripe.account is required"),
        ),
        (
            json!({"id":"a","email":"x@example.com","orchestrator":{"type":"stripe","stripe":{}}}),
            400,
            typed(None, "invalid_request", "orchestrator.stripe.account is required"),
        ),
        (json!([1, 2]), 400, typed(None, "invalid_request", "Request body must be a JSON object")),
    ];
    for (body, status, expected) in cases {
        let reply = app.account_request(&body).await;
        assert_eq!((reply.status, &reply.json), (status, &expected), "{body}");
    }
    let reply = app.send(Req::post("/provisioning/account_requests", "{not json").build()).await;
    reply.assert(400, typed(None, "invalid_request", "Request body must be a JSON object"));
    assert_eq!(app.count("users").await, 0);
}

#[backend_test]
async fn a_future_expiry_and_a_good_challenge_are_accepted() {
    let app = TestApp::new().await;
    let mut body = account_body("ar_ok", "ok@example.com");
    body["expires_at"] = json!("2026-01-01T00:05:00+00:00");
    body["code_challenge"] = json!("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    assert_eq!(app.account_request(&body).await.status, 200);
}

#[backend_test]
async fn authentication_failures() {
    let app = TestApp::new().await;
    let body = account_body("ar_auth", "auth@example.com");
    let bytes = serde_json::to_vec(&body).unwrap();
    app.send(Req::post("/provisioning/account_requests", bytes.clone()).signature(None).build())
        .await
        .assert(401, typed(None, "unauthorized", "Authentication required"));
    app.send(
        Req::post("/provisioning/account_requests", bytes.clone())
            .signed_with(&["whsec_wrong"], NOW)
            .build(),
    )
    .await
    .assert(401, flat("invalid_signature", "Signature verification failed"));
    app.send(Req::post("/provisioning/account_requests", bytes).tamper(br#"{"id":"ar_auth","email":"evil@example.com","orchestrator":{"stripe":{"account":"acct"}}}"#.to_vec()).build())
        .await
        .assert(401, flat("invalid_signature", "Signature verification failed"));
    assert_eq!(app.count("users").await, 0);
}

#[backend_test]
async fn check_order_decides_which_error_a_doubly_wrong_request_gets() {
    let app = TestApp::new().await;
    let post = |body: Value| {
        Req::post("/provisioning/account_requests", serde_json::to_vec(&body).unwrap())
    };
    // API-Version before body.
    app.send(post(json!({"email":""})).api_version(None).build())
        .await
        .assert(400, flat("invalid_api_version", "Supported API-Versions: 0.1d"));
    // Body before signature presence and validity.
    app.send(post(json!({"email":"bad"})).signature(None).build())
        .await
        .assert(400, typed(None, "invalid_request", "email is malformed"));
    app.send(
        post(json!({"email":"x@example.com","expires_at":"2020-01-01T00:00:00Z"}))
            .signed_with(&["wrong"], NOW)
            .build(),
    )
    .await
    .assert(400, typed(None, "expired", "Account request has expired"));
    // Signature before the orchestrator account.
    app.send(post(json!({"id":"a","email":"x@example.com"})).signed_with(&["wrong"], NOW).build())
        .await
        .assert(401, flat("invalid_signature", "Signature verification failed"));
    // Orchestrator account before team_id.
    app.send(
        post(json!({"id":"a","email":"x@example.com","configuration":{"team_id":"abc"}})).build(),
    )
    .await
    .assert(400, typed(None, "invalid_request", "orchestrator.stripe.account is required"));
}

#[backend_test]
async fn no_signing_secret_answers_500_before_the_presence_check() {
    let app = TestApp::with_secrets(&[]).await;
    app.send(
        Req::json("/provisioning/account_requests", &account_body("a", "x@example.com"))
            .signature(None)
            .build(),
    )
    .await
    .assert(500, flat("server_error", "No signing secret is configured"));
}

#[backend_test]
async fn addresses_fold_in_ascii_only_and_domains_by_idna() {
    // Found in a security review: Unicode folding made `\u{212A}im@` (KELVIN SIGN) kim's account.
    let app = TestApp::new().await;
    let kim = app.tokens_for("kim@example.com").await;
    let kelvin = app.tokens_for("\u{212A}im@example.com").await;
    assert_ne!(kim["account"]["id"], kelvin["account"]["id"], "two people, two accounts");
    assert_eq!(app.count("users").await, 2);
    // One domain in two spellings is one address.
    let unicode = app.tokens_for("ana@exämple.com").await;
    let ascii = app.tokens_for("ana@xn--exmple-cua.com").await;
    assert_eq!(unicode["account"]["id"], ascii["account"]["id"]);
    assert_eq!(app.count("users").await, 3);
}

#[backend_test]
async fn overlong_fields_are_refused_naming_the_field_and_nothing_is_made() {
    // Found in a security review: a 65,536-character `id` made the user, organization and code,
    // then answered 500 because its replay record was too large.
    let app = TestApp::new().await;
    let mut body = account_body(&"x".repeat(65_536), "long@example.com");
    app.account_request(&body).await.assert(
        400,
        json!({"type":"error","error":{"code":"invalid_request",
               "message":"id is too long (at most 255 characters)"}}),
    );
    body["id"] = json!("req_ok");
    body["scopes"] = json!(["s".repeat(256)]);
    app.account_request(&body).await.assert(
        400,
        json!({"type":"error","error":{"code":"invalid_request",
               "message":"scopes[] is too long (at most 255 characters)"}}),
    );
    body["scopes"] = json!(vec!["s"; 101]);
    app.account_request(&body).await.assert(
        400,
        json!({"type":"error","error":{"code":"invalid_request",
               "message":"scopes has too many entries (at most 100)"}}),
    );
    assert_eq!(app.count("users").await, 0);
    assert_eq!(app.count("authorization_codes").await, 0);
    // Exactly at the bound is fine.
    body["scopes"] = json!(["s".repeat(255)]);
    body["id"] = json!("i".repeat(255));
    assert_eq!(app.account_request(&body).await.status, 200);
}

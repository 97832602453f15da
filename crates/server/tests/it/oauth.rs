//! `POST /oauth/token`: both grants, PKCE, single use, rotation and reuse detection, every error with
//! its exact envelope; bearer authentication of the tokens it issues.

use axum::body::to_bytes;
use provisio_protocol::pkce::s256_challenge as pkce_s256;
use provisio_server::domain::auth::AuthError;
use provisio_testkit::backend_test;
use serde_json::{Value, json};

use crate::support::{Req, SECRET, TestApp, account_body, unique_id};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn oauth(code: &str, description: &str) -> Value {
    json!({"error": code, "error_description": description})
}

async fn pkce_code(app: &TestApp, email: &str) -> String {
    let mut body = account_body(&unique_id(), email);
    body["code_challenge"] = json!(pkce_s256(VERIFIER));
    body["code_challenge_method"] = json!("S256");
    app.code_with(body).await
}

/// A token request without a signature.
async fn unsigned(app: &TestApp, form: &str) -> crate::support::Reply {
    app.send(Req::form("/oauth/token", form).signature(None).build()).await
}

#[backend_test]
async fn code_exchange_answers_tokens_account_and_no_store() {
    let app = TestApp::new().await;
    let code = app.code_for("ada@example.com").await;
    let reply = app.token(&format!("grant_type=authorization_code&code={code}")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["cache-control"], "no-store");
    let body = &reply.json;
    let org = app.scalar_text("SELECT id FROM organizations").await;
    let project = app.scalar_i64("SELECT id FROM projects").await;
    assert_eq!(
        body,
        &json!({
            "token_type": "bearer",
            "access_token": body["access_token"],
            "refresh_token": body["refresh_token"],
            "expires_in": 31_536_000,
            "account": {
                "id": org,
                "payment_credentials": "orchestrator",
                "available_teams": [{"id": project, "name": "Default project", "organization_id": org, "organization_name": "Stripe (ada@example.com)"}]
            }
        })
    );
    assert!(body["access_token"].as_str().unwrap().starts_with("pvat_"));
    assert!(body["refresh_token"].as_str().unwrap().starts_with("pvrt_"));
    let principal = app.principal(body["access_token"].as_str().unwrap()).await.unwrap();
    assert_eq!(
        (
            principal.organization_id.as_str(),
            principal.primary_project_id,
            principal.project_ids.clone()
        ),
        (org.as_str(), project, vec![project])
    );
}

#[backend_test]
async fn json_bodies_are_accepted_and_api_version_may_be_absent_but_not_wrong() {
    let app = TestApp::new().await;
    let code = app.code_for("json@example.com").await;
    let reply = app
        .send(
            Req::json("/oauth/token", &json!({"grant_type":"authorization_code","code":code}))
                .api_version(None)
                .build(),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    app.send(
        Req::form("/oauth/token", "grant_type=refresh_token&refresh_token=x")
            .api_version(Some("2020-01-01"))
            .build(),
    )
    .await
    .assert(
        400,
        json!({"error":{"code":"invalid_api_version","message":"Supported API-Versions: 0.1d"}}),
    );
}

#[backend_test]
async fn grant_parsing_errors() {
    let app = TestApp::new().await;
    app.token("grant_type=password&username=a")
        .await
        .assert(400, oauth("unsupported_grant_type", "Unsupported grant_type: password"));
    app.token("code=abc").await.assert(400, oauth("invalid_request", "grant_type is required"));
    app.token("grant_type=authorization_code")
        .await
        .assert(400, oauth("invalid_request", "code is required"));
    app.token("grant_type=authorization_code&code=")
        .await
        .assert(400, oauth("invalid_request", "code is required"));
    app.token("grant_type=refresh_token")
        .await
        .assert(400, oauth("invalid_request", "refresh_token is required"));
    app.token("grant_type=a&grant_type=b")
        .await
        .assert(400, oauth("invalid_request", "Malformed request body"));
    let reply = app
        .send(Req::post("/oauth/token", "{").header("content-type", "application/json").build())
        .await;
    reply.assert(400, oauth("invalid_request", "Malformed request body"));
    assert_eq!(reply.headers["cache-control"], "no-store");
    // Grant parsing comes before authentication.
    unsigned(&app, "grant_type=implicit")
        .await
        .assert(400, oauth("unsupported_grant_type", "Unsupported grant_type: implicit"));
    unsigned(&app, "grant_type=authorization_code")
        .await
        .assert(400, oauth("invalid_request", "code is required"));
}

#[backend_test]
async fn an_unsigned_code_without_verifier_is_401_before_any_lookup() {
    let app = TestApp::new().await;
    unsigned(&app, "grant_type=authorization_code&code=does-not-exist")
        .await
        .assert(401, oauth("invalid_request", "Authentication required"));
    // A non-PKCE code cannot be redeemed with a verifier alone, and the attempt does not consume it.
    let code = app.code_for("plain@example.com").await;
    unsigned(&app, &format!("grant_type=authorization_code&code={code}&code_verifier={VERIFIER}"))
        .await
        .assert(401, oauth("invalid_request", "Authentication required"));
    app.redeem(&code).await;
}

#[backend_test]
async fn a_present_signature_must_be_valid() {
    let app = TestApp::new().await;
    let code = app.code_for("sig@example.com").await;
    app.send(
        Req::form("/oauth/token", &format!("grant_type=authorization_code&code={code}"))
            .signed_with(&["whsec_wrong"], crate::support::NOW)
            .build(),
    )
    .await
    .assert(
        401,
        json!({"error":{"code":"invalid_signature","message":"Signature verification failed"}}),
    );
    app.redeem(&code).await;
}

#[backend_test]
async fn pkce_codes_redeem_with_the_verifier_and_failures_do_not_consume() {
    let app = TestApp::new().await;
    let code = pkce_code(&app, "pkce@example.com").await;
    app.token(&format!("grant_type=authorization_code&code={code}"))
        .await
        .assert(401, oauth("invalid_request", "code_verifier is required for PKCE"));
    unsigned(&app, &format!("grant_type=authorization_code&code={code}&code_verifier=wrong-verifier-wrong-verifier-wrong-verifier"))
        .await
        .assert(400, oauth("invalid_grant", "code_verifier does not match the code_challenge"));
    let reply = unsigned(
        &app,
        &format!("grant_type=authorization_code&code={code}&code_verifier={VERIFIER}"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(reply.json["account"]["payment_credentials"], "orchestrator");
}

#[backend_test]
async fn unknown_used_and_expired_codes_are_invalid_grant() {
    let app = TestApp::new().await;
    app.token("grant_type=authorization_code&code=nope")
        .await
        .assert(400, oauth("invalid_grant", "Invalid authorization code"));

    let code = app.code_for("expire@example.com").await;
    app.state.clock.advance(301);
    let later = crate::support::NOW + 301;
    app.send(
        Req::form("/oauth/token", &format!("grant_type=authorization_code&code={code}"))
            .signed_with(&[crate::support::SECRET], later)
            .build(),
    )
    .await
    .assert(400, oauth("invalid_grant", "Authorization code has expired"));
}

#[backend_test]
async fn a_second_redemption_fails_and_revokes_what_the_first_issued() {
    let app = TestApp::new().await;
    let code = app.code_for("twice@example.com").await;
    let first = app.redeem(&code).await;
    redeem_again_and_see_the_first_tokens_revoked(&app, &code, &first).await;
    app.token(&format!(
        "grant_type=refresh_token&refresh_token={}",
        first["refresh_token"].as_str().unwrap()
    ))
    .await
    .assert(400, oauth("invalid_grant", "Invalid refresh token"));
}

/// A second redemption of `code` is refused, and the access token the first issued is dead.
async fn redeem_again_and_see_the_first_tokens_revoked(
    app: &TestApp,
    code: &str,
    first: &serde_json::Value,
) {
    app.token(&format!("grant_type=authorization_code&code={code}"))
        .await
        .assert(400, oauth("invalid_grant", "Authorization code has already been used"));
    assert!(matches!(
        app.principal(first["access_token"].as_str().unwrap()).await,
        Err(AuthError::Invalid)
    ));
}

/// A redeemed code names its family, which a second redemption revokes through the code's row.
/// A code redeemed before codes named their family is still traced to it (the families remember
/// their code), and migration `code_family` names the family for such codes.
#[backend_test]
async fn a_redeemed_code_names_its_family_and_older_redemptions_are_still_traced() {
    let app = TestApp::new().await;
    let code = app.code_for("named@example.com").await;
    let first = app.redeem(&code).await;
    let family = app.scalar_text("SELECT id FROM token_families").await;
    let named = "SELECT family_id FROM authorization_codes";
    assert_eq!(app.scalar_text(named).await, family);

    // As a redemption by an older version left it: the family remembers the code, the code
    // names nothing.
    app.exec("UPDATE authorization_codes SET family_id = NULL").await;
    let migration = include_str!("../../migrations/sqlite/0014_code_family.sql");
    assert_eq!(migration, include_str!("../../migrations/postgres/0016_code_family.sql"));
    let backfill = migration.split(';').find(|s| s.trim_start().starts_with("UPDATE")).unwrap();
    app.exec(backfill).await;
    assert_eq!(app.scalar_text(named).await, family, "the migration names the family");

    app.exec("UPDATE authorization_codes SET family_id = NULL").await;
    redeem_again_and_see_the_first_tokens_revoked(&app, &code, &first).await;
    assert_eq!(app.scalar_text("SELECT revoked_reason FROM token_families").await, "code_reuse");
}

#[backend_test]
async fn refresh_rotates_both_tokens_and_kills_the_old_access_token_at_once() {
    let app = TestApp::new().await;
    let first = app.tokens_for("rotate@example.com").await;
    let reply = app
        .send(
            Req::form(
                "/oauth/token",
                &format!(
                    "grant_type=refresh_token&refresh_token={}",
                    first["refresh_token"].as_str().unwrap()
                ),
            )
            .signature(None)
            .build(),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(reply.headers["cache-control"], "no-store");
    let second = reply.json;
    assert_eq!(
        second,
        json!({"token_type":"bearer","access_token":second["access_token"],"refresh_token":second["refresh_token"],"expires_in":31_536_000})
    );
    assert_ne!(second["access_token"], first["access_token"]);
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert!(matches!(
        app.principal(first["access_token"].as_str().unwrap()).await,
        Err(AuthError::Invalid)
    ));
    assert!(app.principal(second["access_token"].as_str().unwrap()).await.is_ok());
}

#[backend_test]
async fn a_reused_refresh_token_revokes_the_whole_family() {
    let app = TestApp::new().await;
    let first = app.tokens_for("reuse@example.com").await;
    let old_refresh = first["refresh_token"].as_str().unwrap().to_string();
    let second =
        app.token(&format!("grant_type=refresh_token&refresh_token={old_refresh}")).await.json;
    app.token(&format!("grant_type=refresh_token&refresh_token={old_refresh}"))
        .await
        .assert(400, oauth("invalid_grant", "Invalid refresh token"));
    assert!(matches!(
        app.principal(second["access_token"].as_str().unwrap()).await,
        Err(AuthError::Invalid)
    ));
    app.token(&format!(
        "grant_type=refresh_token&refresh_token={}",
        second["refresh_token"].as_str().unwrap()
    ))
    .await
    .assert(400, oauth("invalid_grant", "Invalid refresh token"));
    assert_eq!(app.scalar_text("SELECT revoked_reason FROM token_families").await, "refresh_reuse");
}

/// A family refreshed for weeks keeps a week of replaced tokens: a rotated refresh token presented
/// again within the week revokes the family; one rotated longer ago is merely unknown.
#[backend_test]
async fn refreshing_keeps_a_week_of_replaced_tokens() {
    use provisio_server::store::oauth::ROTATED_KEPT_SECS;
    let app = TestApp::new().await;
    let mut tokens = app.tokens_for("weeks@example.com").await;
    let first_refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let day = 24 * 3600;
    for _ in 0..14 {
        app.state.clock.advance(day);
        tokens = refresh(&app, tokens["refresh_token"].as_str().unwrap()).await.json;
        assert!(tokens["access_token"].is_string(), "{tokens}");
    }
    // Rotated within the week (the last seven) and the live one; replaced access tokens likewise.
    let kept = ROTATED_KEPT_SECS / day;
    assert_eq!(app.count("refresh_tokens").await, kept + 1);
    assert_eq!(app.count("access_tokens").await, kept + 1);
    // The first token, rotated two weeks ago, is forgotten: unknown, the family lives on.
    refresh(&app, &first_refresh)
        .await
        .assert(400, oauth("invalid_grant", "Invalid refresh token"));
    assert!(app.principal(tokens["access_token"].as_str().unwrap()).await.is_ok());
}

/// Housekeeping forgets an account request once it expired, and a code a week after it expired:
/// until then a code redeemed again is still recognised as used.
#[backend_test]
async fn housekeeping_forgets_account_requests_and_codes() {
    let app = TestApp::new().await;
    let code = app.code_for("sweep@example.com").await;
    app.redeem(&code).await;
    let (now, day) = (app.state.clock.now(), 24 * 3600);
    let sweep = |at: i64| app.state.store.sweep(at, at * 1000);
    sweep(now).await.unwrap();
    assert_eq!(
        (app.count("account_requests").await, app.count("authorization_codes").await),
        (1, 1)
    );
    sweep(now + day + 1).await.unwrap();
    assert_eq!(
        (app.count("account_requests").await, app.count("authorization_codes").await),
        (0, 1)
    );
    app.token(&format!("grant_type=authorization_code&code={code}"))
        .await
        .assert(400, oauth("invalid_grant", "Authorization code has already been used"));
    sweep(now + 300 + 7 * day + 1).await.unwrap();
    assert_eq!(app.count("authorization_codes").await, 0);
}

/// A refresh signed at the test clock's now.
async fn refresh(app: &TestApp, token: &str) -> crate::support::Reply {
    let form = format!("grant_type=refresh_token&refresh_token={token}");
    app.send(Req::form("/oauth/token", &form).signed_with(&[SECRET], app.state.clock.now()).build())
        .await
}

#[backend_test]
async fn deleted_users_get_invalid_grant() {
    let app = TestApp::new().await;
    let code = app.code_for("gone@example.com").await;
    let tokens = app.tokens_for("stay@example.com").await;
    app.exec("UPDATE users SET deleted_at = 1").await;
    app.token(&format!("grant_type=authorization_code&code={code}"))
        .await
        .assert(400, oauth("invalid_grant", "Invalid authorization code"));
    app.token(&format!(
        "grant_type=refresh_token&refresh_token={}",
        tokens["refresh_token"].as_str().unwrap()
    ))
    .await
    .assert(400, oauth("invalid_grant", "Invalid refresh token"));
}

#[backend_test]
async fn available_teams_lists_every_live_project_of_every_organization_by_id() {
    let app = TestApp::new().await;
    app.code_for("many@example.com").await;
    let user = app.scalar_text("SELECT id FROM users").await;
    let first_org = app.scalar_text("SELECT id FROM organizations").await;
    app.exec(&format!(
        "INSERT INTO organizations (id, name, created_at) VALUES ('org_b', 'Second org', 5); \
         INSERT INTO memberships (user_id, organization_id, role, created_at) VALUES ('{user}', 'org_b', 'member', 5); \
         INSERT INTO organizations (id, name, created_at) VALUES ('org_c', 'Not mine', 5); \
         INSERT INTO projects (organization_id, name, is_demo, api_key, created_at) VALUES ('org_b', 'B one', 0, 'pub_b1', 5); \
         INSERT INTO projects (organization_id, name, is_demo, api_key, created_at) VALUES ('{first_org}', 'Demo', 1, 'pub_demo', 5); \
         INSERT INTO projects (organization_id, name, is_demo, api_key, created_at) VALUES ('org_c', 'Foreign', 0, 'pub_c', 5); \
         INSERT INTO projects (organization_id, name, is_demo, api_key, created_at) VALUES ('{first_org}', 'A two', 0, 'pub_a2', 5);"
    ))
    .await;
    let mut body = account_body(&unique_id(), "many@example.com");
    body["configuration"] = json!({"team_id": 1});
    let tokens = app.redeem(&app.code_with(body).await).await;
    let org_name = "Stripe (many@example.com)";
    assert_eq!(
        tokens["account"]["available_teams"],
        json!([
            {"id": 1, "name": "Default project", "organization_id": first_org, "organization_name": org_name},
            {"id": 2, "name": "B one", "organization_id": "org_b", "organization_name": "Second org"},
            {"id": 5, "name": "A two", "organization_id": first_org, "organization_name": org_name},
        ])
    );
}

#[backend_test]
async fn credentials_mode_answers_tokens_directly() {
    let app = TestApp::with_orchestrator(|o| {
        o.response = provisio_server::orchestrators::ResponseMode::Credentials
    })
    .await;
    let reply = app.account_request(&account_body("ar_cred", "cred@example.com")).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let bearer = &reply.json["credentials"]["bearer"];
    let org = app.scalar_text("SELECT id FROM organizations").await;
    assert_eq!(
        reply.json,
        json!({"id":"ar_cred","type":"credentials","credentials":{"type":"bearer","bearer":{
            "access_token": bearer["access_token"], "refresh_token": bearer["refresh_token"], "expires_in": 31_536_000,
            "account": {"id": org, "payment_credentials": "orchestrator"}}}})
    );
    assert!(app.principal(bearer["access_token"].as_str().unwrap()).await.is_ok());
}

#[backend_test]
async fn consent_mode_sends_every_address_to_the_browser_and_stores_the_request() {
    let app = TestApp::with_orchestrator(|o| {
        o.linking = provisio_server::orchestrators::LinkingPolicy::Consent
    })
    .await;
    // A new email goes through the browser too (proof first, then the account): an orchestrator
    // not trusted to have verified it must not pre-register it. The newer request supersedes.
    assert_eq!(app.account_request(&account_body("ar_1", "consent@example.com")).await.status, 200);
    assert_eq!(app.count("users").await, 0);
    let reply = app.account_request(&account_body("ar_2", "consent@example.com")).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let url = reply.json["requires_auth"]["redirect"]["url"].as_str().unwrap();
    assert!(url.starts_with("https://provider.example/consent?token="), "{url}");
    assert_eq!(
        reply.json,
        json!({"id":"ar_2","type":"requires_auth","requires_auth":{"type":"redirect","redirect":{"url":url}}})
    );
    assert_eq!(app.count("pending_consents").await, 2);
    assert_eq!(app.count("authorization_codes").await, 0);
    let token = url.rsplit('=').next().unwrap();
    assert_eq!(
        app.scalar_text("SELECT token_hash FROM pending_consents WHERE superseded_at IS NULL")
            .await,
        provisio_server::crypto::token_hash(token)
    );
}

#[backend_test]
async fn metadata_describes_the_token_endpoint() {
    let app = TestApp::new().await;
    app.send(
        Req::get("/.well-known/oauth-authorization-server")
            .signature(None)
            .api_version(None)
            .build(),
    )
    .await
    .assert(
        200,
        json!({
            "issuer": "https://provider.example",
            "token_endpoint": "https://provider.example/oauth/token",
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"]
        }),
    );
}

#[backend_test]
async fn bearer_failures_answer_401_in_the_status_envelope() {
    use axum::{http::HeaderMap, response::IntoResponse};
    let app = TestApp::new().await;
    let tokens = app.tokens_for("bearer@example.com").await;
    let access = tokens["access_token"].as_str().unwrap();
    let check = |header: Option<String>| {
        let app = &app;
        async move {
            let mut headers = HeaderMap::new();
            if let Some(h) = header {
                headers.insert("authorization", h.parse().unwrap());
            }
            match provisio_server::http::request::authenticate_bearer(&app.state, &headers, "42")
                .await
            {
                Ok(p) => (200, json!(p.primary_project_id)),
                Err(e) => {
                    let response = e.into_response();
                    let status = response.status().as_u16();
                    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
                    (status, serde_json::from_slice(&body).unwrap())
                }
            }
        }
    };
    let missing = json!({"status":"error","id":"42","error":{"code":"unauthorized","message":"Missing bearer token"}});
    let invalid = json!({"status":"error","id":"42","error":{"code":"unauthorized","message":"Invalid or expired access token"}});
    assert_eq!(check(None).await, (401, missing.clone()));
    assert_eq!(check(Some(format!("Basic {access}"))).await, (401, missing));
    assert_eq!(check(Some("Bearer pvat_unknown".into())).await, (401, invalid.clone()));
    assert_eq!(check(Some(format!("Bearer {access}"))).await.0, 200);
    app.state.clock.advance(365 * 24 * 3600);
    assert_eq!(check(Some(format!("Bearer {access}"))).await, (401, invalid));
}

//! Deep links (spec 5.10) and the dashboard they open: single use, expiry, the session cookie, the
//! pages, and exactly one session for racing uses of one link.

use provisio_testkit::backend_test;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::support::{Req, TestApp};

fn flat(code: &str, message: &str) -> Value {
    json!({"error":{"code":code,"message":message}})
}

async fn token(app: &TestApp, email: &str) -> String {
    app.tokens_for(email).await["access_token"].as_str().unwrap().to_string()
}

async fn deep_link(app: &TestApp, access: &str, body: Value) -> crate::support::Reply {
    app.with_bearer(Req::json("/provisioning/deep_links", &body), access).await
}

/// The `/login?…` part of a link.
fn login_path(url: &str) -> String {
    url.trim_start_matches("https://provider.example").to_string()
}

fn cookie_of(headers: &axum::http::HeaderMap) -> String {
    headers["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string()
}

#[backend_test]
async fn a_deep_link_points_at_the_primary_project_and_expires_in_ten_minutes() {
    let app = TestApp::new().await;
    let access = token(&app, "link@example.com").await;
    let primary = app.scalar_i64("SELECT id FROM projects").await;
    let reply = deep_link(&app, &access, json!({"purpose": "dashboard"})).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let url = reply.json["url"].as_str().unwrap();
    let token = url.split("token=").nth(1).unwrap().split('&').next().unwrap();
    assert_eq!(token.len(), 43);
    assert_eq!(
        reply.json,
        json!({"purpose":"dashboard","url":format!("https://provider.example/login?token={token}&project_id={primary}"),"expires_at":"2026-01-01T00:10:00Z"})
    );
    assert_eq!(
        app.scalar_text("SELECT token_hash FROM deep_links").await,
        provisio_server::crypto::token_hash(token)
    );
}

#[backend_test]
async fn deep_link_errors() {
    let app = TestApp::new().await;
    let access = token(&app, "linkerr@example.com").await;
    deep_link(&app, &access, json!({"purpose": "billing"})).await.assert(
        400,
        flat("unsupported_purpose", "Unsupported purpose: billing. Supported: dashboard"),
    );
    deep_link(&app, &access, json!({}))
        .await
        .assert(400, flat("unsupported_purpose", "Unsupported purpose: . Supported: dashboard"));
    deep_link(&app, &access, json!({"purpose": "dashboard", "resource_id": "999"}))
        .await
        .assert(403, flat("forbidden", "Resource not accessible with this token"));
    deep_link(&app, &access, json!({"purpose": "dashboard", "resource_id": "x"}))
        .await
        .assert(400, flat("invalid_request", "Invalid resource_id: x"));
    app.with_bearer(Req::post("/provisioning/deep_links", "nope"), &access)
        .await
        .assert(400, flat("invalid_request", "Request body must be a JSON object"));
    app.send(Req::json("/provisioning/deep_links", &json!({"purpose": "dashboard"})).build())
        .await
        .assert(401, json!({"status":"error","id":"","error":{"code":"unauthorized","message":"Missing bearer token"}}));
}

#[backend_test]
async fn a_link_opens_one_session_and_the_project_page() {
    let app = TestApp::new().await;
    let access = token(&app, "page@example.com").await;
    let created = app
        .provision(
            &access,
            &json!({"project_id": "dash", "configuration": {"project_name": "Dash & <Co>"}}),
        )
        .await;
    let id = created.json["id"].as_str().unwrap().to_string();
    let personal = created.json["complete"]["access_configuration"]["personal_api_key"]
        .as_str()
        .unwrap()
        .to_string();
    let link = deep_link(&app, &access, json!({"purpose": "dashboard", "resource_id": id})).await;
    let path = login_path(link.json["url"].as_str().unwrap());

    let (status, headers, _) = app.browse(&path, None).await;
    assert_eq!(status, 303);
    assert_eq!(headers["location"], format!("/projects/{id}"));
    let set_cookie = headers["set-cookie"].to_str().unwrap();
    for attribute in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let cookie = cookie_of(&headers);

    let (status, headers, html) = app.browse(&format!("/projects/{id}"), Some(&cookie)).await;
    assert_eq!(status, 200);
    assert_eq!(headers["cache-control"], "no-store");
    assert!(html.contains("Dash &amp; &lt;Co&gt;"), "the name is escaped: {html}");
    assert!(html.contains("Stripe (page@example.com)"));
    assert!(html.contains(&personal[..12]), "the key prefix is shown");
    assert!(!html.contains(&personal), "the secret is never shown");
    assert!(html.contains(
        app.scalar_text(&format!("SELECT api_key FROM projects WHERE id = {id}")).await.as_str()
    ));

    // The same link again lands on the error.
    let (status, headers, _) = app.browse(&path, None).await;
    assert_eq!(
        (status, headers["location"].to_str().unwrap()),
        (303, "/?error=expired_or_invalid_token")
    );
    let (_, _, html) = app.browse("/?error=expired_or_invalid_token", None).await;
    assert!(html.contains("expired or was already used"));
    assert_eq!(app.count("sessions").await, 1);

    // After a rotation the page shows the new project key, not the old one, and the old personal key
    // as revoked.
    let old_key = app.scalar_text(&format!("SELECT api_key FROM projects WHERE id = {id}")).await;
    let rotated = app
        .with_bearer(
            Req::post(&format!("/provisioning/resources/{id}/rotate_credentials"), ""),
            &access,
        )
        .await;
    let new_key =
        rotated.json["complete"]["access_configuration"]["api_key"].as_str().unwrap().to_string();
    let (_, _, html) = app.browse(&format!("/projects/{id}"), Some(&cookie)).await;
    assert!(html.contains(&new_key) && !html.contains(&old_key));
    let old_row = html.split("<tr>").find(|row| row.contains(&personal[..21])).unwrap();
    assert!(
        old_row.contains("2026-01-01T00:00:00Z</td><td>2026-01-01T00:00:00Z"),
        "revoked at rotation: {old_row}"
    );

    // The home page lists the user's projects.
    let (_, _, home) = app.browse("/", Some(&cookie)).await;
    assert!(home.contains(&format!("/projects/{id}")));

    // Another site's logout form is refused (its Origin is not ours), and the session lives on.
    let logout = |origin: &str| {
        axum::http::Request::builder()
            .method("POST")
            .uri("/logout")
            .header("cookie", &cookie)
            .header("origin", origin)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let (status, _, _) = app.raw(logout("https://evil.example")).await;
    assert_eq!(status, 403);
    assert_eq!(app.browse(&format!("/projects/{id}"), Some(&cookie)).await.0, 200);

    // Logout ends the session.
    let (status, headers, _) = app.raw(logout("https://provider.example")).await;
    assert_eq!(status, 303);
    assert!(headers["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    let (status, headers, _) = app.browse(&format!("/projects/{id}"), Some(&cookie)).await;
    assert_eq!((status, headers["location"].to_str().unwrap()), (303, "/?error=login_required"));
}

#[backend_test]
async fn missing_expired_and_foreign_links() {
    let app = TestApp::new().await;
    let access = token(&app, "exp@example.com").await;
    let other = token(&app, "other-dash@example.com").await;
    let (status, headers, _) = app.browse("/login", None).await;
    assert_eq!((status, headers["location"].to_str().unwrap()), (303, "/?error=missing_token"));
    let (_, headers, _) = app.browse("/login?token=made-up", None).await;
    assert_eq!(headers["location"], "/?error=expired_or_invalid_token");
    let link = deep_link(&app, &access, json!({"purpose": "dashboard"})).await;
    app.state.clock.advance(601);
    let (_, headers, _) = app.browse(&login_path(link.json["url"].as_str().unwrap()), None).await;
    assert_eq!(headers["location"], "/?error=expired_or_invalid_token");

    // A session sees only its own user's projects.
    app.state.clock.advance(-601);
    let link = deep_link(&app, &other, json!({"purpose": "dashboard"})).await;
    let (_, headers, _) = app.browse(&login_path(link.json["url"].as_str().unwrap()), None).await;
    let cookie = cookie_of(&headers);
    let mine = app.scalar_i64("SELECT MIN(id) FROM projects").await;
    let (status, _, _) = app.browse(&format!("/projects/{mine}"), Some(&cookie)).await;
    assert_eq!(status, 404);
}

#[backend_test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_uses_of_one_link_open_one_session() {
    let app = Arc::new(TestApp::new().await);
    let access = token(&app, "race-link@example.com").await;
    let link = deep_link(&app, &access, json!({"purpose": "dashboard"})).await;
    let path = Arc::new(login_path(link.json["url"].as_str().unwrap()));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (app, path) = (app.clone(), path.clone());
            tokio::spawn(async move {
                app.browse(&path, None).await.1["location"].to_str().unwrap().to_string()
            })
        })
        .collect();
    let mut locations = Vec::new();
    for task in tasks {
        locations.push(task.await.unwrap());
    }
    assert_eq!(
        locations.iter().filter(|l| l.starts_with("/projects/")).count(),
        1,
        "{locations:?}"
    );
    assert_eq!(app.count("sessions").await, 1);
}

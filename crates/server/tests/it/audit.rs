//! The audit log after a full flow: every step recorded with who and which request, no secret in it.

use provisio_testkit::backend_test;
use serde_json::json;

use crate::support::{Req, TestApp, account_body};

#[backend_test]
async fn a_full_flow_leaves_an_audit_trail_without_secrets() {
    let app = TestApp::new().await;
    let code = app.code_with(account_body("ar_audit", "audit@example.com")).await;
    let again = app.code_with(account_body("ar_audit_2", "audit@example.com")).await;
    let tokens = app.redeem(&code).await;
    let refreshed = app
        .token(&format!(
            "grant_type=refresh_token&refresh_token={}",
            tokens["refresh_token"].as_str().unwrap()
        ))
        .await
        .json;
    let access = refreshed["access_token"].as_str().unwrap().to_string();
    let created = app.provision(&access, &json!({"project_id": "a"})).await;
    let id = created.json["id"].as_str().unwrap().to_string();
    let rotated = app
        .with_bearer(
            Req::post(&format!("/provisioning/resources/{id}/rotate_credentials"), ""),
            &access,
        )
        .await;
    let link = app
        .with_bearer(
            Req::json(
                "/provisioning/deep_links",
                &json!({"purpose": "dashboard", "resource_id": id}),
            ),
            &access,
        )
        .await;
    let url = link.json["url"].as_str().unwrap().to_string();
    app.browse(url.trim_start_matches("https://provider.example"), None).await;
    app.with_bearer(Req::post(&format!("/provisioning/resources/{id}/remove"), ""), &access).await;

    let rows = app.rows("SELECT event, orchestrator, user_id, organization_id, project_id, request_id FROM audit_events ORDER BY id").await;
    let events: Vec<String> = rows.iter().map(|r| r.text(0).unwrap()).collect();
    assert_eq!(
        events,
        [
            "account.created",
            "code.issued",
            "account.linked",
            "code.issued",
            "code.redeemed",
            "token.refreshed",
            "resource.created",
            "resource.rotated",
            "deep_link.issued",
            "deep_link.used",
            "resource.removed",
        ]
    );
    let user = app.scalar_text("SELECT id FROM users").await;
    for row in &rows {
        assert_eq!(row.opt_text(2).unwrap().as_deref(), Some(user.as_str()), "{row:?}");
        assert!(
            row.opt_text(5).unwrap().is_some_and(|r| r.len() == 36),
            "a request id on every event: {row:?}"
        );
    }
    assert_eq!(rows[0].opt_text(1).unwrap().as_deref(), Some("stripe"));
    assert_eq!(rows[6].int(4).unwrap().to_string(), id);

    let everything = app.rows("SELECT * FROM audit_events").await;
    let dump: String =
        everything.iter().flat_map(|r| r.0.iter().map(|v| format!("{v}|"))).collect();
    let personal = |reply: &crate::support::Reply| {
        reply.json["complete"]["access_configuration"]["personal_api_key"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let link_token = url.split("token=").nth(1).unwrap().split('&').next().unwrap().to_string();
    for secret in [
        code,
        again,
        tokens["access_token"].as_str().unwrap().to_string(),
        tokens["refresh_token"].as_str().unwrap().to_string(),
        access.clone(),
        personal(&created),
        personal(&rotated),
        link_token,
    ] {
        assert!(!dump.contains(&secret), "a secret reached the audit log");
    }
}

#[backend_test]
async fn reuse_and_revocation_are_recorded() {
    let app = TestApp::new().await;
    let code = app.code_for("reuse-audit@example.com").await;
    let tokens = app.redeem(&code).await;
    app.token(&format!("grant_type=authorization_code&code={code}")).await;
    let again = app.tokens_for("reuse-audit-2@example.com").await;
    let old = again["refresh_token"].as_str().unwrap();
    app.token(&format!("grant_type=refresh_token&refresh_token={old}")).await;
    app.token(&format!("grant_type=refresh_token&refresh_token={old}")).await;
    let events: Vec<String> = app
        .rows("SELECT event FROM audit_events ORDER BY id")
        .await
        .iter()
        .map(|r| r.text(0).unwrap())
        .collect();
    assert!(events.contains(&"code.reused.tokens_revoked".to_string()), "{events:?}");
    assert!(events.contains(&"refresh.reused.family_revoked".to_string()), "{events:?}");
    assert!(tokens["access_token"].is_string());
}

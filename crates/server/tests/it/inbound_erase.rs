//! `provisio admin erase-user` (built-in mode, GDPR): every way in dies, the address and the names
//! leave every table, what the audit keeps stays under the pseudonym; running it again is fine and
//! an unknown user is a clear error. The rules are the SaaS's erase's (`domain::inbound::erase`).

use provisio_server::{
    admin::accounts::{AdminError, erase_user},
    domain::inbound::{erased_email, pseudonym},
    rate_limit::RateLimits,
    store::{Backend, Value as Column},
};
use provisio_testkit::backend_test;
use serde_json::{Value, json};

use crate::{
    saas::Saas,
    support::{NOW, Req, Setup, TestApp, account_body, unique_id},
};

/// Every text value of every table that contains `needle` (any ASCII case), as `table: value`.
async fn everywhere(app: &TestApp, needle: &str) -> Vec<String> {
    let tables = match app.state.store.backend() {
        Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
        Backend::Postgres => {
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables WHERE table_schema = current_schema()"
        }
    };
    let needle = needle.to_ascii_lowercase();
    let mut found = Vec::new();
    for table in app.rows(tables).await {
        let table = table.text(0).unwrap();
        for row in app.rows(&format!("SELECT * FROM {table}")).await {
            for column in row.0 {
                if let Column::Text(text) = column
                    && text.to_ascii_lowercase().contains(&needle)
                {
                    found.push(format!("{table}: {text}"));
                }
            }
        }
    }
    found
}

fn location(headers: &axum::http::HeaderMap) -> String {
    headers["location"].to_str().unwrap().to_string()
}

/// The `/login?…` part of a dashboard link made with `access`.
async fn dashboard_link(app: &TestApp, access: &str) -> String {
    let reply = app
        .with_bearer(
            Req::json("/provisioning/deep_links", &json!({"purpose": "dashboard"})),
            access,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    reply.json["url"].as_str().unwrap().trim_start_matches("https://provider.example").to_string()
}

fn with_name(email: &str) -> Value {
    let mut body = account_body(&unique_id(), email);
    body["name"] = json!("Ada Lovelace");
    body
}

#[backend_test]
async fn an_erased_user_leaves_no_address_or_name_and_no_way_in() {
    let saas = Saas::start().await;
    let app = Setup {
        saas: Some(&saas),
        events: true,
        rate_limits: RateLimits::default(),
        ..Setup::default()
    }
    .open()
    .await;
    // Ada: tokens, a resource, a dashboard session, an unused link and an unused code.
    let tokens = app.redeem(&app.code_with(with_name("Ada@Example.com")).await).await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let provisioned = app.provision(&access, &json!({})).await;
    assert_eq!(provisioned.status, 200, "{}", provisioned.json);
    let resource = provisioned.json["id"].as_str().unwrap().to_string();
    let (status, headers, _) = app.browse(&dashboard_link(&app, &access).await, None).await;
    assert_eq!(status, 303);
    let session = headers["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let unused_link = dashboard_link(&app, &access).await;
    let unused_code = app.code_with(with_name("ada@example.com")).await;
    let user_id = app.scalar_text("SELECT id FROM users WHERE email = 'Ada@Example.com'").await;
    // Keep: another user, in a shared organization named after both of them.
    app.tokens_for("keep@example.com").await;
    let keep_id = app.scalar_text("SELECT id FROM users WHERE email = 'keep@example.com'").await;
    app.exec(&format!(
        "INSERT INTO organizations (id, name, created_at) VALUES ('org_shared', 'Ada Lovelace & Keep (Ada@Example.com)', {NOW}); \
         INSERT INTO memberships (user_id, organization_id, role, created_at) VALUES ('{user_id}', 'org_shared', 'owner', {NOW}); \
         INSERT INTO memberships (user_id, organization_id, role, created_at) VALUES ('{keep_id}', 'org_shared', 'member', {NOW}); \
         INSERT INTO pending_consents (token_hash, orchestrator, orchestrator_account, request_id, scopes, created_at, expires_at, email, email_normalized, name) \
           VALUES ('consent_ada', 'stripe', 'acct_test', 'ar_c1', 'provision', {NOW}, {NOW} + 3600, 'Ada@Example.com', 'ada@example.com', 'Ada Lovelace'); \
         INSERT INTO consent_links (token_hash, consent_hash, created_at, expires_at) VALUES ('link_ada', 'consent_ada', {NOW}, {NOW} + 900); \
         INSERT INTO pending_consents (token_hash, orchestrator, orchestrator_account, request_id, scopes, created_at, expires_at, email, email_normalized) \
           VALUES ('consent_keep', 'stripe', 'acct_test', 'ar_c2', 'provision', {NOW}, {NOW} + 3600, 'keep@example.com', 'keep@example.com');"
    ))
    .await;
    let postgres = app.state.store.backend() == Backend::Postgres;
    for needle in ["ada@example.com", "lovelace"] {
        assert!(!everywhere(&app, needle).await.is_empty(), "{needle} is there before");
    }
    if postgres {
        let buckets = "SELECT COUNT(*) FROM rate_limit_buckets WHERE key = 'ada@example.com'";
        assert_eq!(app.scalar_i64(buckets).await, 1, "the per-address limit's bucket");
    }
    let audited = app
        .scalar_i64(&format!("SELECT COUNT(*) FROM audit_events WHERE user_id = '{user_id}'"))
        .await;
    assert!(audited >= 4, "{audited}");

    let erased = erase_user(&app.state.store, " ADA@example.com ", NOW).await.unwrap();
    let pseudonym = pseudonym(&user_id);
    assert_eq!(
        serde_json::to_value(&erased).unwrap(),
        json!({"user_id": user_id, "pseudonym": pseudonym, "revoked_token_families": 1, "already_erased": false})
    );

    // Not the address, not the name, anywhere.
    for needle in ["ada@example.com", "lovelace"] {
        assert_eq!(everywhere(&app, needle).await, Vec::<String>::new(), "{needle}");
    }
    let tombstone = &app
        .rows(&format!(
            "SELECT email, email_normalized, first_name, name, deleted_at FROM users WHERE id = '{user_id}'"
        ))
        .await[0];
    let address = erased_email(&pseudonym);
    assert_eq!(
        (tombstone.text(0).unwrap(), tombstone.text(1).unwrap()),
        (address.clone(), address.clone())
    );
    assert_eq!((tombstone.opt_text(2).unwrap(), tombstone.opt_text(3).unwrap()), (None, None));
    assert_eq!(tombstone.opt_int(4).unwrap(), Some(NOW));
    assert_eq!(
        app.scalar_text("SELECT name FROM organizations WHERE id = 'org_shared'").await,
        format!("{pseudonym} & Keep ({address})"),
        "the address and the name leave the organization's name; the rest of it stays"
    );
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM organizations WHERE name = 'Stripe ({address})'"
        ))
        .await,
        1
    );

    // No way in is left.
    let status = |reply: &crate::support::Reply| reply.status;
    assert_eq!(
        status(
            &app.with_bearer(Req::get(&format!("/provisioning/resources/{resource}")), &access)
                .await
        ),
        401
    );
    assert_eq!(
        status(&app.token(&format!("grant_type=refresh_token&refresh_token={refresh}")).await),
        400
    );
    assert_eq!(
        status(&app.token(&format!("grant_type=authorization_code&code={unused_code}")).await),
        400
    );
    let (_, headers, _) = app.browse(&unused_link, None).await;
    assert_eq!(location(&headers), "/?error=expired_or_invalid_token");
    let (_, headers, _) = app.browse(&format!("/projects/{resource}"), Some(&session)).await;
    assert_eq!(location(&headers), "/?error=login_required");
    for table in ["sessions", "deep_links"] {
        let sql = format!("SELECT COUNT(*) FROM {table} WHERE user_id = '{user_id}'");
        assert_eq!(app.scalar_i64(&sql).await, 0, "{table}");
    }
    assert_eq!(app.scalar_text("SELECT token_hash FROM pending_consents").await, "consent_keep");
    assert_eq!(app.count("consent_links").await, 0);

    // What the audit keeps, it keeps under the pseudonym, with the erase itself.
    assert_eq!(
        app.scalar_i64(&format!("SELECT COUNT(*) FROM audit_events WHERE user_id = '{user_id}'"))
            .await,
        0
    );
    let kept = app
        .scalar_i64(&format!("SELECT COUNT(*) FROM audit_events WHERE user_id = '{pseudonym}'"))
        .await;
    assert_eq!(kept, audited + 1);
    assert_eq!(
        app.scalar_text(&format!(
            "SELECT event FROM audit_events WHERE user_id = '{pseudonym}' ORDER BY id DESC LIMIT 1"
        ))
        .await,
        "user.erased_by_admin"
    );
    let created: Value = serde_json::from_str(
        &app.scalar_text(&format!(
            "SELECT data FROM events WHERE type = 'account.created' AND data LIKE '%{pseudonym}%'"
        ))
        .await,
    )
    .unwrap();
    assert_eq!(created["email"], json!(address));

    // Keep is untouched.
    assert_eq!(
        app.scalar_text(&format!("SELECT email FROM users WHERE id = '{keep_id}'")).await,
        "keep@example.com"
    );
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM users WHERE deleted_at IS NULL").await, 1);
    if postgres {
        assert_eq!(
            app.scalar_i64("SELECT COUNT(*) FROM rate_limit_buckets WHERE key = 'ada@example.com'")
                .await,
            0
        );
        assert_eq!(
            app.scalar_i64(
                "SELECT COUNT(*) FROM rate_limit_buckets WHERE key = 'keep@example.com'"
            )
            .await,
            1
        );
    }

    // Again, by id: nothing more to do, one more audit row. By the address: it is gone.
    let again = erase_user(&app.state.store, &user_id, NOW + 60).await.unwrap();
    assert_eq!((again.revoked_token_families, again.already_erased), (0, true));
    assert_eq!(again.pseudonym, pseudonym);
    assert_eq!(
        app.scalar_i64(&format!("SELECT deleted_at FROM users WHERE id = '{user_id}'")).await,
        NOW,
        "the first erase's time is kept"
    );
    assert_eq!(
        app.scalar_i64(&format!("SELECT COUNT(*) FROM audit_events WHERE user_id = '{pseudonym}'"))
            .await,
        kept + 1
    );
    let gone = erase_user(&app.state.store, "ada@example.com", NOW).await.unwrap_err();
    assert!(matches!(gone, AdminError::NotFound(_)), "{gone}");
    assert_eq!(gone.to_string(), "no such user with that email: a***@example.com");

    // The address is free again: a new account is a new user.
    app.tokens_for("ada@example.com").await;
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM users WHERE deleted_at IS NULL").await, 2);
}

#[backend_test]
async fn an_unknown_user_is_a_clear_error_and_changes_nothing() {
    let app = TestApp::new().await;
    app.tokens_for("someone@example.com").await;
    let before = app.count("audit_events").await;
    for (who, message) in [
        ("usr_nobody", "no such user: usr_nobody"),
        ("nobody@example.com", "no such user with that email: n***@example.com"),
    ] {
        let error = erase_user(&app.state.store, who, NOW).await.unwrap_err();
        assert!(matches!(error, AdminError::NotFound(_)));
        assert_eq!(error.to_string(), message);
    }
    assert_eq!(app.count("audit_events").await, before);
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM users WHERE deleted_at IS NULL").await, 1);
}

#[backend_test]
async fn the_saas_erase_forgets_consents_for_the_address_too() {
    // Connector mode keeps no user row: the addresses come from the account requests. A consent
    // for the address has no user id, and went unnoticed before.
    let saas = Saas::start().await;
    let app =
        TestApp::with_connector_operator(&saas, true, &[crate::support::OPERATOR_TOKEN]).await;
    app.tokens_for("Conn.Erase@Example.com").await;
    let user_id = saas
        .world()
        .users
        .iter()
        .find(|u| u.email.eq_ignore_ascii_case("conn.erase@example.com"))
        .unwrap()
        .id
        .clone();
    app.exec(&format!(
        "INSERT INTO pending_consents (token_hash, orchestrator, orchestrator_account, request_id, scopes, created_at, expires_at, email, email_normalized) \
           VALUES ('consent_c', 'stripe', 'acct_test', 'ar_c', 'provision', {NOW}, {NOW} + 3600, 'Conn.Erase@Example.com', 'conn.erase@example.com');"
    ))
    .await;
    let reply = app
        .send(
            Req::post(&format!("/v1/connector/users/{user_id}/erase"), "")
                .signature(None)
                .api_version(None)
                .header("authorization", &format!("Bearer {}", crate::support::OPERATOR_TOKEN))
                .build(),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(everywhere(&app, "conn.erase@example.com").await, Vec::<String>::new());
}

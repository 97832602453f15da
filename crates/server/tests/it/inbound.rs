//! `POST /v1/connector/…`: the SaaS tells provisio what changed on its side. A revoked user's
//! every grant dies (one `tokens.revoked` per organization), a removed project's resource reads
//! `removed`, an erased user's address is gone from everything provisio keeps. Each call is
//! idempotent and answers `{"ok":true}`; without an operator token the surface does not exist.

use std::collections::BTreeSet;

use provisio_server::store::Value as Column;
use provisio_testkit::backend_test;
use serde_json::{Value, json};

use crate::{
    saas::Saas,
    support::{NOW, OPERATOR_TOKEN, Reply, Req, TestApp, account_body, unique_id},
};

const NEXT_TOKEN: &str = "op_next_token";

fn ok() -> Value {
    json!({"ok": true})
}

fn flat(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

fn status_error(id: i64, code: &str, message: &str) -> Value {
    json!({"status": "error", "id": id.to_string(), "error": {"code": code, "message": message}})
}

/// A connector-mode provider with the operator token configured, events on.
async fn connected() -> (Saas, TestApp) {
    let saas = Saas::start().await;
    let app = TestApp::with_connector_operator(&saas, true, &[OPERATOR_TOKEN, NEXT_TOKEN]).await;
    (saas, app)
}

/// `POST path` with `Authorization: <authorization>` when given, unsigned (operator calls carry
/// no orchestrator signature).
async fn call(app: &TestApp, path: &str, authorization: Option<&str>) -> Reply {
    let mut req = Req::post(path, "").signature(None).api_version(None);
    if let Some(value) = authorization {
        req = req.header("authorization", value);
    }
    app.send(req.build()).await
}

/// `POST path` as the operator.
async fn operator(app: &TestApp, path: &str) -> Reply {
    call(app, path, Some(&format!("Bearer {OPERATOR_TOKEN}"))).await
}

fn saas_user_id(saas: &Saas, email: &str) -> String {
    saas.world().users.iter().find(|u| u.email.eq_ignore_ascii_case(email)).unwrap().id.clone()
}

/// The `data` of every outbox event of `kind`, oldest first.
async fn events_of(app: &TestApp, kind: &str) -> Vec<Value> {
    app.rows(&format!("SELECT data FROM events WHERE type = '{kind}' ORDER BY sequence"))
        .await
        .iter()
        .map(|r| serde_json::from_str(&r.text(0).unwrap()).unwrap())
        .collect()
}

async fn get(app: &TestApp, id: i64, access: &str) -> Reply {
    app.with_bearer(Req::get(&format!("/provisioning/resources/{id}")), access).await
}

/// Provisions a resource with `access`; its id.
async fn provision(app: &TestApp, access: &str, body: Value) -> i64 {
    let reply = app.provision(access, &body).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    reply.json["id"].as_str().unwrap().parse().unwrap()
}

/// Every text column of every row of `table` that contains `needle` (ASCII case-insensitive).
async fn mentions(app: &TestApp, table: &str, needle: &str) -> Vec<String> {
    let needle = needle.to_ascii_lowercase();
    app.rows(&format!("SELECT * FROM {table}"))
        .await
        .into_iter()
        .flat_map(|row| row.0)
        .filter_map(|column| match column {
            Column::Text(text) if text.to_ascii_lowercase().contains(&needle) => Some(text),
            _ => None,
        })
        .collect()
}

#[backend_test]
async fn without_an_operator_token_the_endpoints_do_not_exist() {
    let saas = Saas::start().await;
    for app in [TestApp::with_connector(&saas, true).await, TestApp::new().await] {
        for path in [
            "/v1/connector/users/u_1/revoke",
            "/v1/connector/projects/7/removed",
            "/v1/connector/users/u_1/erase",
            "/v1/connector/users/u_1/unknown",
        ] {
            for authorization in [None, Some(format!("Bearer {OPERATOR_TOKEN}"))] {
                call(&app, path, authorization.as_deref())
                    .await
                    .assert(404, flat("not_found", "No such endpoint"));
            }
        }
    }
}

#[backend_test]
async fn only_the_operator_may_call() {
    let (_saas, app) = connected().await;
    for path in [
        "/v1/connector/users/u_1/revoke",
        "/v1/connector/projects/7/removed",
        "/v1/connector/users/u_1/erase",
        // Authentication comes before the id is looked at.
        "/v1/connector/projects/not-a-number/removed",
    ] {
        for authorization in [
            None,
            Some("Bearer op_wrong"),
            Some("Bearer "),
            Some(OPERATOR_TOKEN),
            Some("Basic b3A6dGVzdA=="),
        ] {
            let reply = call(&app, path, authorization).await;
            reply.assert(401, flat("unauthorized", "A valid operator token is required"));
            assert_eq!(reply.headers["www-authenticate"], "Bearer realm=\"provisio\"");
        }
    }
    // Either token is good while rotating; the scheme is case-insensitive.
    for authorization in [
        format!("Bearer {OPERATOR_TOKEN}"),
        format!("Bearer {NEXT_TOKEN}"),
        format!("bearer {NEXT_TOKEN}"),
    ] {
        call(&app, "/v1/connector/users/u_1/revoke", Some(&authorization)).await.assert(200, ok());
    }
    assert_eq!(app.count("events").await, 0, "unknown ids report nothing");
}

#[backend_test]
async fn malformed_ids_are_400() {
    let (_saas, app) = connected().await;
    for id in ["0", "-1", "abc", "1.5", "9007199254740992", "99999999999999999999"] {
        operator(&app, &format!("/v1/connector/projects/{id}/removed")).await.assert(
            400,
            flat("invalid_request", "project_id must be a positive integer below 2^53"),
        );
    }
    let long = "u".repeat(65);
    for id in ["a%20b", "u%2F1", "%C3%A9", long.as_str()] {
        for action in ["revoke", "erase"] {
            operator(&app, &format!("/v1/connector/users/{id}/{action}")).await.assert(
                400,
                flat(
                    "invalid_request",
                    "user_id must be 1-64 characters of A-Z, a-z, 0-9, _ and -",
                ),
            );
        }
    }
    operator(&app, "/v1/connector/projects/9007199254740991/removed").await.assert(200, ok());
}

#[backend_test]
async fn revoke_kills_every_grant_of_the_user_and_reports_once_per_organization() {
    let (saas, app) = connected().await;
    let email = "multi@example.com";
    saas.seed_user(
        email,
        true,
        &[
            ("Alpha", "2019-01-01T00:00:00Z", &[("a", false)]),
            ("Beta", "2020-01-01T00:00:00Z", &[("b", false)]),
        ],
    );
    let user_id = saas_user_id(&saas, email);
    let (alpha, beta) = {
        let world = saas.world();
        let id = |name: &str| world.projects.iter().find(|p| p.name == name).unwrap().id;
        (id("a"), id("b"))
    };
    let code_for_team = |team: i64| {
        let mut body = account_body(&unique_id(), email);
        body["configuration"] = json!({"team_id": team});
        body
    };
    // Two families in Alpha, one in Beta, and a code never redeemed.
    let first = app.redeem(&app.code_with(code_for_team(alpha)).await).await;
    app.redeem(&app.code_with(code_for_team(alpha)).await).await;
    let beta_tokens = app.redeem(&app.code_with(code_for_team(beta)).await).await;
    let unused = app.code_with(code_for_team(beta)).await;
    let access = first["access_token"].as_str().unwrap().to_string();
    let refresh = beta_tokens["refresh_token"].as_str().unwrap().to_string();
    let id = provision(&app, &access, json!({})).await;
    // Consents, links and another user's rows, seeded (no endpoint makes them in this mode).
    let other =
        saas.seed_user("other@example.com", true, &[("Gamma", "2020-01-01T00:00:00Z", &[])]);
    app.exec(&format!(
        "INSERT INTO pending_consents (token_hash, orchestrator, orchestrator_account, request_id, user_id, scopes, created_at, expires_at, completed_at) VALUES \
         ('c_open', 'stripe', 'acct', 'r1', '{user_id}', 's', {NOW}, {NOW} + 600, NULL), \
         ('c_done', 'stripe', 'acct', 'r2', '{user_id}', 's', {NOW}, {NOW} + 600, {NOW}), \
         ('c_other', 'stripe', 'acct', 'r3', '{other}', 's', {NOW}, {NOW} + 600, NULL); \
         INSERT INTO deep_links (token_hash, user_id, organization_id, project_id, created_at, expires_at, used_at) VALUES \
         ('l_open', '{user_id}', 'o', {alpha}, {NOW}, {NOW} + 600, NULL), \
         ('l_used', '{user_id}', 'o', {alpha}, {NOW}, {NOW} + 600, {NOW}), \
         ('l_other', '{other}', 'o', {alpha}, {NOW}, {NOW} + 600, NULL);"
    ))
    .await;

    operator(&app, &format!("/v1/connector/users/{user_id}/revoke")).await.assert(200, ok());

    get(&app, id, &access)
        .await
        .assert(401, status_error(id, "unauthorized", "Invalid or expired access token"));
    app.token(&format!("grant_type=refresh_token&refresh_token={refresh}")).await.assert(
        400,
        json!({"error": "invalid_grant", "error_description": "Invalid refresh token"}),
    );
    app.token(&format!("grant_type=authorization_code&code={unused}")).await.assert(
        400,
        json!({"error": "invalid_grant", "error_description": "Authorization code has expired"}),
    );
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM token_families WHERE user_id = '{user_id}' AND (revoked_at IS NULL OR revoked_reason <> 'operator')"
        ))
        .await,
        0
    );
    let left = |table: &str| format!("SELECT token_hash FROM {table} ORDER BY token_hash");
    let hashes = |rows: Vec<provisio_server::store::Row>| -> Vec<String> {
        rows.iter().map(|r| r.text(0).unwrap()).collect()
    };
    assert_eq!(hashes(app.rows(&left("pending_consents")).await), ["c_done", "c_other"]);
    assert_eq!(hashes(app.rows(&left("deep_links")).await), ["l_other", "l_used"]);

    let revoked = events_of(&app, "tokens.revoked").await;
    let organizations: BTreeSet<String> =
        revoked.iter().map(|d| d["organization_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(revoked.len(), 2, "{revoked:?}");
    assert_eq!(organizations.len(), 2);
    for data in &revoked {
        assert_eq!(
            data,
            &json!({"user_id": user_id, "organization_id": data["organization_id"], "reason": "operator"})
        );
    }
    let audited = app
        .scalar_i64(&format!(
            "SELECT COUNT(*) FROM audit_events WHERE event = 'user.revoked_by_operator' AND user_id = '{user_id}'"
        ))
        .await;
    assert_eq!(audited, 1);

    // Again: nothing more to kill, nothing reported.
    operator(&app, &format!("/v1/connector/users/{user_id}/revoke")).await.assert(200, ok());
    assert_eq!(events_of(&app, "tokens.revoked").await.len(), 2);
    // An unknown user is fine too.
    operator(&app, "/v1/connector/users/u_never_seen/revoke").await.assert(200, ok());
    assert_eq!(events_of(&app, "tokens.revoked").await.len(), 2);

    // The SaaS receives them as events.
    app.deliver_events().await;
    let delivered: Vec<Value> = saas
        .world()
        .events
        .iter()
        .filter(|e| e["type"] == "tokens.revoked")
        .map(|e| e["data"].clone())
        .collect();
    assert_eq!(delivered, revoked);

    // Revocation is not a ban: the user links again.
    let again = app.redeem(&app.code_with(code_for_team(alpha)).await).await;
    let fresh = again["access_token"].as_str().unwrap();
    assert_eq!(get(&app, id, fresh).await.status, 200);
}

#[backend_test]
async fn revoke_in_built_in_mode_ends_sessions_too() {
    let app = TestApp::with_operator_token().await;
    let access =
        app.tokens_for("solo@example.com").await["access_token"].as_str().unwrap().to_string();
    let id = provision(&app, &access, json!({})).await;
    let user_id = app.scalar_text("SELECT id FROM users").await;
    app.exec(&format!(
        "INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES ('s1', '{user_id}', {NOW}, {NOW} + 3600)"
    ))
    .await;
    operator(&app, &format!("/v1/connector/users/{user_id}/revoke")).await.assert(200, ok());
    get(&app, id, &access)
        .await
        .assert(401, status_error(id, "unauthorized", "Invalid or expired access token"));
    assert_eq!(app.count("sessions").await, 0);
    assert_eq!(app.count("events").await, 0, "built-in without [events]: no outbox");
}

#[backend_test]
async fn a_removed_project_reads_removed_and_refuses_changes() {
    let (saas, app) = connected().await;
    let access =
        app.tokens_for("proj@example.com").await["access_token"].as_str().unwrap().to_string();
    let id = provision(&app, &access, json!({"service_id": "analytics"})).await;
    let organization = app.scalar_text("SELECT organization_id FROM resources").await;

    operator(&app, &format!("/v1/connector/projects/{id}/removed")).await.assert(200, ok());

    get(&app, id, &access).await.assert(200, json!({"status": "removed", "id": id.to_string()}));
    let removed = status_error(id, "invalid_state", "Resource has been removed");
    app.with_bearer(
        Req::post(&format!("/provisioning/resources/{id}/rotate_credentials"), ""),
        &access,
    )
    .await
    .assert(409, removed.clone());
    app.with_bearer(
        Req::json(
            &format!("/provisioning/resources/{id}/update_service"),
            &json!({"service_id": "free"}),
        ),
        &access,
    )
    .await
    .assert(409, removed);
    assert!(saas.calls("resources.rotate").is_empty());
    assert!(saas.calls("resources.remove").is_empty(), "the SaaS removed it itself");
    let expected = vec![json!({"resource_id": id.to_string(), "project_id": id,
                               "organization_id": organization, "service_id": "analytics"})];
    assert_eq!(events_of(&app, "resource.removed").await, expected);
    let audited = app
        .scalar_i64(&format!(
            "SELECT COUNT(*) FROM audit_events WHERE event = 'resource.removed_by_operator' AND project_id = {id}"
        ))
        .await;
    assert_eq!(audited, 1);

    // Again, and a project provisio never saw: nothing more.
    operator(&app, &format!("/v1/connector/projects/{id}/removed")).await.assert(200, ok());
    operator(&app, "/v1/connector/projects/424242/removed").await.assert(200, ok());
    assert_eq!(events_of(&app, "resource.removed").await, expected);
    // The user's token still works for what else it reaches.
    assert_eq!(get(&app, id, &access).await.status, 200);
}

#[backend_test]
async fn a_removed_project_in_built_in_mode_kills_its_keys() {
    let app = TestApp::with_operator_token().await;
    let access =
        app.tokens_for("keys@example.com").await["access_token"].as_str().unwrap().to_string();
    let created = app.provision(&access, &json!({})).await;
    let id: i64 = created.json["id"].as_str().unwrap().parse().unwrap();
    let personal = created.json["complete"]["access_configuration"]["personal_api_key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.introspect(&personal).await["active"], true);
    operator(&app, &format!("/v1/connector/projects/{id}/removed")).await.assert(200, ok());
    get(&app, id, &access).await.assert(200, json!({"status": "removed", "id": id.to_string()}));
    assert_eq!(app.introspect(&personal).await, json!({"active": false}));
    let revoked = app
        .scalar_i64(&format!(
            "SELECT COUNT(*) FROM personal_keys WHERE project_id = {id} AND revoked_at IS NULL"
        ))
        .await;
    assert_eq!(revoked, 0);
}

#[backend_test]
async fn erase_leaves_no_address_of_the_user() {
    let (saas, app) = connected().await;
    let email = "Erase.Me@Example.com";
    // A new SaaS user (account.created carries the address), then linked again.
    let tokens = app.tokens_for(email).await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    app.redeem(&app.code_for(email).await).await;
    app.code_for(email).await;
    let id = provision(&app, &access, json!({})).await;
    let user_id = saas_user_id(&saas, email);
    // Another user's records stay as they are.
    app.tokens_for("keep@example.com").await;
    let keep_id = saas_user_id(&saas, "keep@example.com");
    assert!(!mentions(&app, "events", "erase.me@example.com").await.is_empty());
    assert!(!mentions(&app, "account_requests", "erase.me@example.com").await.is_empty());

    operator(&app, &format!("/v1/connector/users/{user_id}/erase")).await.assert(200, ok());

    for table in ["account_requests", "audit_events", "events", "authorization_codes"] {
        assert_eq!(
            mentions(&app, table, "erase.me@example.com").await,
            Vec::<String>::new(),
            "{table}"
        );
    }
    assert_eq!(
        app.scalar_i64(&format!("SELECT COUNT(*) FROM audit_events WHERE user_id = '{user_id}'"))
            .await,
        0
    );
    let pseudonym = provisio_server::domain::inbound::pseudonym(&user_id);
    let erased = format!("erased+{pseudonym}@invalid");
    assert_eq!(
        app.scalar_text(&format!(
            "SELECT DISTINCT email_normalized FROM account_requests WHERE user_id = '{user_id}'"
        ))
        .await,
        erased
    );
    assert_eq!(
        app.scalar_i64(&format!(
            "SELECT COUNT(*) FROM audit_events WHERE user_id = '{pseudonym}' AND detail IS NULL"
        ))
        .await,
        app.scalar_i64(&format!("SELECT COUNT(*) FROM audit_events WHERE user_id = '{pseudonym}'"))
            .await
    );
    let created = events_of(&app, "account.created").await;
    assert_eq!(created.len(), 2);
    assert_eq!((&created[0]["user_id"], &created[0]["email"]), (&json!(pseudonym), &json!(erased)));
    assert_eq!(created[1]["user_id"], json!(keep_id), "another user's event is untouched");
    assert_eq!(created[1]["email"], "keep@example.com");
    for linked in events_of(&app, "account.linked").await {
        assert!(linked["user_id"] == json!(pseudonym) || linked["user_id"] == json!(keep_id));
    }
    // The erase's own report carries the id (the SaaS matches it), and no address.
    let revoked = events_of(&app, "tokens.revoked").await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["user_id"], json!(user_id));
    assert_eq!(revoked[0]["reason"], "operator");
    get(&app, id, &access)
        .await
        .assert(401, status_error(id, "unauthorized", "Invalid or expired access token"));

    // Again: no more reports, still no address.
    operator(&app, &format!("/v1/connector/users/{user_id}/erase")).await.assert(200, ok());
    assert_eq!(events_of(&app, "tokens.revoked").await.len(), 1);
    assert!(mentions(&app, "events", "erase.me@example.com").await.is_empty());
    operator(&app, "/v1/connector/users/u_never_seen/erase").await.assert(200, ok());
    assert_eq!(mentions(&app, "account_requests", "keep@example.com").await.len(), 1);
}

#[backend_test]
async fn erasing_a_built_in_user_frees_the_address() {
    let app = TestApp::with_operator_token().await;
    let email = "Builtin@Example.com";
    let access = app.tokens_for(email).await["access_token"].as_str().unwrap().to_string();
    let id = provision(&app, &access, json!({})).await;
    let user_id = app.scalar_text("SELECT id FROM users").await;
    app.exec(&format!(
        "INSERT INTO sessions (id_hash, user_id, created_at, expires_at) VALUES ('s1', '{user_id}', {NOW}, {NOW} + 3600)"
    ))
    .await;

    operator(&app, &format!("/v1/connector/users/{user_id}/erase")).await.assert(200, ok());

    let erased =
        format!("erased+{}@invalid", provisio_server::domain::inbound::pseudonym(&user_id));
    let row = &app.rows(&format!(
        "SELECT email, email_normalized, first_name, name, deleted_at FROM users WHERE id = '{user_id}'"
    ))
    .await[0];
    assert_eq!(row.text(0).unwrap(), erased);
    assert_eq!(row.text(1).unwrap(), erased);
    assert_eq!((row.opt_text(2).unwrap(), row.opt_text(3).unwrap()), (None, None));
    assert_eq!(row.opt_int(4).unwrap(), Some(NOW));
    for table in
        ["users", "organizations", "account_requests", "audit_events", "authorization_codes"]
    {
        assert_eq!(
            mentions(&app, table, "builtin@example.com").await,
            Vec::<String>::new(),
            "{table}"
        );
    }
    assert_eq!(app.count("sessions").await, 0);
    get(&app, id, &access)
        .await
        .assert(401, status_error(id, "unauthorized", "Invalid or expired access token"));

    // The address is free: it makes a new user.
    app.tokens_for(email).await;
    assert_eq!(app.count("users").await, 2);
    operator(&app, &format!("/v1/connector/users/{user_id}/erase")).await.assert(200, ok());
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM users WHERE deleted_at IS NULL").await,
        1,
        "erasing again touches only the erased user"
    );
}

#[backend_test]
async fn the_operators_revoke_tokens_closes_every_other_way_in_too() {
    // Found in a security review: after `provisio admin revoke-tokens`, a code issued before still
    // redeemed, an unused dashboard link still opened a session, an open session kept working.
    let app = TestApp::new().await;
    let unused_code = app.code_for("carol@example.com").await;
    let tokens = app.tokens_for("carol@example.com").await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let link = |reply: crate::support::Reply| {
        let url = reply.json["url"].as_str().unwrap().to_string();
        url.strip_prefix("https://provider.example").unwrap().to_string()
    };
    let deep_link = json!({"purpose": "dashboard"});
    let opened =
        link(app.with_bearer(Req::json("/provisioning/deep_links", &deep_link), &access).await);
    let (status, headers, _) = app.browse(&opened, None).await;
    assert_eq!(status, 303);
    let session = headers["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let unused =
        link(app.with_bearer(Req::json("/provisioning/deep_links", &deep_link), &access).await);

    let now = app.state.clock.now();
    let revoked = provisio_server::admin::accounts::revoke_user_tokens(
        &app.state.store,
        "carol@example.com",
        now,
    )
    .await
    .unwrap();
    assert_eq!(revoked, 1);

    let redeemed = app.token(&format!("grant_type=authorization_code&code={unused_code}")).await;
    assert_eq!(redeemed.status, 400, "{}", redeemed.json);
    let (_, headers, _) = app.browse(&unused, None).await;
    assert_eq!(headers["location"], "/?error=expired_or_invalid_token");
    let (_, _, home) = app.browse("/", Some(&session)).await;
    assert!(!home.contains("Your projects"), "the open session ended: {home}");
}

//! Connector mode, account requests: the SaaS's own users, linked by the same rules, over real HTTP
//! on loopback; refusals and outages answered as the contract maps them.

use provisio_testkit::backend_test;
use serde_json::{Value, json};

use crate::{
    saas::{Fault, Saas},
    support::{TestApp, account_body, unique_id},
};

async fn connected() -> (Saas, TestApp) {
    let saas = Saas::start().await;
    let app = TestApp::with_connector(&saas, true).await;
    (saas, app)
}

fn teams_of(tokens: &Value) -> Vec<i64> {
    tokens["account"]["available_teams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect()
}

#[backend_test]
async fn a_new_email_becomes_a_saas_user() {
    let (saas, app) = connected().await;
    let code = app.code_with(account_body("req_new", "Ada@Example.com")).await;
    assert_eq!(saas.users_with("ada@example.com"), 1);
    let tokens = app.redeem(&code).await;
    let (org, project) = {
        let world = saas.world();
        let user = world.users.iter().find(|u| u.email == "Ada@Example.com").unwrap();
        let org = user.memberships[0].0.clone();
        let project = world.projects.iter().find(|p| p.organization == org).unwrap().id;
        (org, project)
    };
    assert_eq!(tokens["account"]["id"], json!(org));
    assert_eq!(
        tokens["account"]["available_teams"],
        json!([{"id": project, "name": "Default project", "organization_id": org,
                "organization_name": "Stripe (Ada@Example.com)"}])
    );
    // provisio keeps no user of its own.
    assert_eq!(app.count("users").await, 0);
    assert_eq!(app.count("projects").await, 0);
    assert_eq!(saas.calls("users.create").len(), 1);
    let event = app.rows("SELECT type, data FROM events").await;
    assert_eq!(event[0].text(0).unwrap(), "account.created");
    let data: Value = serde_json::from_str(&event[0].text(1).unwrap()).unwrap();
    assert_eq!(data["user_id"], json!(user_id_of(&saas, "ada@example.com")));
    assert_eq!(data["request_id"], "req_new");
    assert_eq!(data["orchestrator"], "stripe");
}

fn user_id_of(saas: &Saas, email: &str) -> String {
    saas.world().users.iter().find(|u| u.email.eq_ignore_ascii_case(email)).unwrap().id.clone()
}

#[backend_test]
async fn an_existing_user_is_linked_to_their_one_project() {
    let (saas, app) = connected().await;
    saas.seed_user(
        "grace@example.com",
        true,
        &[("Navy", "2020-01-01T00:00:00Z", &[("Demo", true), ("COBOL", false)])],
    );
    let tokens = app.redeem(&app.code_for(" GRACE@example.com ").await).await;
    let cobol = saas.world().projects.iter().find(|p| p.name == "COBOL").unwrap().id;
    assert_eq!(teams_of(&tokens), vec![cobol]);
    assert!(saas.calls("users.create").is_empty());
    assert!(saas.calls("projects.create").is_empty());
    assert_eq!(app.scalar_text("SELECT type FROM events").await, "account.linked");
}

#[backend_test]
async fn several_projects_make_a_new_one_in_the_oldest_organization() {
    let (saas, app) = connected().await;
    // Same joined_at: the tie is broken by organization id (the first seeded has the lower id).
    saas.seed_user(
        "linus@example.com",
        true,
        &[
            ("Later", "2021-06-01T00:00:00Z", &[("a", false)]),
            ("Oldest", "2019-01-01T00:00:00Z", &[("b", false)]),
            ("Tied", "2019-01-01T00:00:00Z", &[]),
        ],
    );
    let tokens = app.redeem(&app.code_for("linus@example.com").await).await;
    let oldest = saas.world().organizations.iter().find(|(_, n)| *n == "Oldest").unwrap().0.clone();
    assert_eq!(tokens["account"]["id"], json!(oldest));
    let created = saas.project_ids_of(&oldest);
    assert_eq!(created.len(), 2);
    assert!(teams_of(&tokens).contains(&created[1]));
    assert_eq!(saas.calls("projects.create").len(), 1);
}

#[backend_test]
async fn team_id_names_a_project_of_the_user_or_fails_alike() {
    let (saas, app) = connected().await;
    saas.seed_user(
        "barbara@example.com",
        true,
        &[("Lab", "2020-01-01T00:00:00Z", &[("x", false), ("y", false), ("demo", true)])],
    );
    let ids: Vec<i64> = saas.world().projects.iter().map(|p| p.id).collect();
    let mut body = account_body("req_team", "barbara@example.com");
    body["configuration"] = json!({"team_id": ids[1]});
    let tokens = app.redeem(&app.code_with(body).await).await;
    assert_eq!(tokens["account"]["available_teams"].as_array().unwrap().len(), 2);
    for team_id in [ids[2], 999_999] {
        let mut body = account_body(&unique_id(), "barbara@example.com");
        body["configuration"] = json!({"team_id": team_id});
        let id = body["id"].clone();
        app.account_request(&body).await.assert(
            400,
            json!({"id": id, "type": "error", "error": {"code": "team_resolution_failed",
                   "message": "Could not resolve a project for this user"}}),
        );
    }
}

#[backend_test]
async fn an_unverified_address_is_never_linked_silently() {
    let (saas, app) = connected().await;
    saas.seed_user(
        "mallory@example.com",
        false,
        &[("Org", "2020-01-01T00:00:00Z", &[("p", false)])],
    );
    app.account_request(&account_body("req_unverified", "mallory@example.com")).await.assert(
        400,
        json!({"id": "req_unverified", "type": "error", "error": {"code": "team_resolution_failed",
               "message": "Could not resolve a project for this user"}}),
    );
    assert_eq!(app.count("authorization_codes").await, 0);
}

#[backend_test]
async fn refusals_are_mapped_without_saying_more_than_app_allows() {
    let (saas, app) = connected().await;
    saas.fail("users.lookup", &[Fault::Refuse(400, "too_many_projects")]);
    app.account_request(&account_body("req_lookup", "a@example.com")).await.assert(
        400,
        json!({"id": "req_lookup", "type": "error", "error": {"code": "team_resolution_failed",
               "message": "Could not resolve a project for this user"}}),
    );
    saas.fail("users.create", &[Fault::Refuse(422, "email_blocked")]);
    app.account_request(&account_body("req_create", "b@example.com")).await.assert(
        400,
        json!({"id": "req_create", "type": "error", "error": {"code": "account_creation_failed",
               "message": "The account could not be created"}}),
    );
    assert_eq!(app.count("account_requests").await, 0);
    assert_eq!(app.count("events").await, 0);
}

#[backend_test]
async fn one_failure_then_success_carries_the_same_webhook_id() {
    let (saas, app) = connected().await;
    saas.fail("users.create", &[Fault::Status(502)]);
    app.code_with(account_body("req_retry", "c@example.com")).await;
    let ids = saas.calls("users.create");
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1]);
    assert!(ids[0].starts_with("op_"));
    assert_eq!(saas.users_with("c@example.com"), 1);
}

#[backend_test]
async fn an_outage_past_the_deadline_is_503_and_the_retry_completes() {
    let (saas, app) = connected().await;
    saas.fail("users.create", &[Fault::Status(503); 100]);
    let reply = app.account_request(&account_body("req_down", "d@example.com")).await;
    reply.assert(
        503,
        json!({"id": "req_down", "type": "error", "error": {"code": "provider_unavailable",
               "message": "The provider's systems are unavailable; retry later"}}),
    );
    assert!(reply.headers.get("retry-after").is_some());
    // Nothing half-made: no resolution, no code, no event.
    for table in ["account_requests", "authorization_codes", "events"] {
        assert_eq!(app.count(table).await, 0, "{table}");
    }
    let first_ids = saas.calls("users.create");
    assert_eq!(saas.users_with("d@example.com"), 0);
    saas.clear_faults("users.create");
    app.code_with(account_body("req_down", "d@example.com")).await;
    let ids = saas.calls("users.create");
    assert_eq!(ids.last(), first_ids.first(), "the retry carries the same webhook-id");
    assert_eq!(saas.users_with("d@example.com"), 1);
}

#[backend_test]
async fn a_lost_answer_is_completed_by_the_retry_without_a_second_user() {
    let (saas, app) = connected().await;
    // The SaaS creates the user, but every answer is lost until the deadline: as if provisio died
    // between the call and recording its outcome.
    saas.fail("users.create", &[Fault::LoseAnswer; 100]);
    let reply = app.account_request(&account_body("req_lost", "e@example.com")).await;
    assert_eq!(reply.status, 503, "{}", reply.json);
    assert_eq!(saas.users_with("e@example.com"), 1);
    assert_eq!(app.scalar_text("SELECT state FROM connector_calls").await, "pending");
    saas.clear_faults("users.create");
    let tokens = app.redeem(&app.code_with(account_body("req_lost", "e@example.com")).await).await;
    assert_eq!(saas.users_with("e@example.com"), 1);
    let ids = saas.calls("users.create");
    assert!(ids.iter().all(|id| *id == ids[0]), "one operation, one webhook-id");
    assert_eq!(app.scalar_text("SELECT type FROM events").await, "account.created");
    assert_eq!(app.scalar_text("SELECT state FROM connector_calls").await, "done");
    assert_eq!(teams_of(&tokens).len(), 1);
}

#[backend_test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_requests_for_one_new_email_make_one_user_and_twenty_good_codes() {
    let (saas, app) = connected().await;
    let app = std::sync::Arc::new(app);
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                app.code_with(account_body(&format!("req_race_{i}"), "race@example.com")).await
            })
        })
        .collect();
    let mut codes = vec![];
    for task in tasks {
        codes.push(task.await.unwrap());
    }
    assert_eq!(saas.users_with("race@example.com"), 1);
    let mut organizations = std::collections::HashSet::new();
    for code in codes {
        let tokens = app.redeem(&code).await;
        organizations.insert(tokens["account"]["id"].as_str().unwrap().to_string());
    }
    assert_eq!(organizations.len(), 1, "every code reaches the one user's organization");
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM events WHERE type = 'account.created'").await,
        1
    );
}

#[backend_test]
async fn a_slow_attempt_times_out_and_the_next_one_carries_the_same_id() {
    let (saas, app) = connected().await;
    // Longer than one attempt's timeout (500 ms in these tests), shorter than the deadline.
    saas.fail("users.create", &[Fault::Delay(800)]);
    app.code_with(account_body("req_slow", "slow@example.com")).await;
    let ids = saas.calls("users.create");
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1]);
    assert_eq!(saas.users_with("slow@example.com"), 1);
}

#[backend_test]
async fn readiness_includes_the_saas_health() {
    let (saas, app) = connected().await;
    let ready = app.send(crate::support::Req::get("/readyz").build()).await;
    ready.assert(200, json!({"status": "ok", "database": "ok", "connector": "ok"}));
    assert_eq!(saas.calls("health").len(), 1);
    // Cached for a few seconds: a busy balancer is not a stream of calls to the SaaS.
    app.send(crate::support::Req::get("/readyz").build()).await;
    assert_eq!(saas.calls("health").len(), 1);

    let down = Saas::start().await;
    down.fail("health", &[Fault::Status(502); 100]);
    let app = TestApp::with_connector(&down, false).await;
    let reply = app.send(crate::support::Req::get("/readyz").build()).await;
    reply.assert(
        503,
        json!({"status": "unavailable", "database": "ok", "connector": "unreachable"}),
    );
}

#[backend_test]
async fn a_consent_orchestrator_sends_every_address_to_the_browser_first() {
    let saas = Saas::start().await;
    let app = TestApp::with_connector_orchestrator(&saas, |o| {
        o.linking = provisio_server::orchestrators::LinkingPolicy::Consent;
    })
    .await;
    let user = saas.seed_user(
        "eve@example.com",
        false,
        &[("Org", "2020-01-01T00:00:00Z", &[("p", false)])],
    );
    let reply = app.account_request(&account_body("req_consent", "eve@example.com")).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(reply.json["type"], "requires_auth");
    let url = reply.json["requires_auth"]["redirect"]["url"].as_str().unwrap();
    assert!(url.starts_with("https://provider.example/consent?token="), "{url}");
    // The user is looked up only once the email is proved (the consent leg).
    assert_eq!(app.scalar_text("SELECT email FROM pending_consents").await, "eve@example.com");
    assert!(
        app.rows("SELECT user_id FROM pending_consents").await[0].opt_text(0).unwrap().is_none()
    );
    let _ = user;
    assert_eq!(app.count("authorization_codes").await, 0);
    assert!(saas.calls("users.lookup").is_empty() && saas.calls("projects.create").is_empty());
}

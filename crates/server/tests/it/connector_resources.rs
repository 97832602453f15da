//! Connector mode, resources, deep links and events: the SaaS provisions and signs users in; provisio
//! keeps the protocol's bookkeeping, never a secret, and answers every failure as the contract maps
//! it.

use provisio_testkit::backend_test;
use serde_json::{Value, json};

use crate::{
    saas::{DASHBOARD_ORIGIN, Fault, Saas},
    support::{Req, TestApp},
};

struct Connected {
    saas: Saas,
    app: TestApp,
    token: String,
}

async fn connected() -> Connected {
    let saas = Saas::start().await;
    let app = TestApp::with_connector(&saas, true).await;
    let tokens = app.tokens_for("ops@example.com").await;
    let token = tokens["access_token"].as_str().unwrap().to_string();
    Connected { saas, app, token }
}

impl Connected {
    async fn post(&self, path: &str, body: &Value) -> crate::support::Reply {
        self.app.with_bearer(Req::json(path, body), &self.token).await
    }

    async fn post_keyed(&self, path: &str, body: &Value, key: &str) -> crate::support::Reply {
        self.app
            .with_bearer(Req::json(path, body).header("idempotency-key", key), &self.token)
            .await
    }

    async fn get(&self, id: i64) -> crate::support::Reply {
        self.app.with_bearer(Req::get(&format!("/provisioning/resources/{id}")), &self.token).await
    }

    /// Provisions and returns the resource id and its access configuration.
    async fn provision(&self, body: Value) -> (i64, Value) {
        let reply = self.post("/provisioning/resources", &body).await;
        assert_eq!(reply.status, 200, "{}", reply.json);
        let id = reply.json["id"].as_str().unwrap().parse().unwrap();
        (id, reply.json["complete"]["access_configuration"].clone())
    }

    fn live_secret(&self, id: i64) -> Option<String> {
        self.saas.world().live_secret.get(&id.to_string()).cloned()
    }
}

#[backend_test]
async fn provisioning_answers_the_saas_credentials_and_keeps_no_secret() {
    let c = connected().await;
    let (id, access) = c.provision(json!({"service_id": "analytics"})).await;
    assert_eq!(
        access,
        json!({"api_key": format!("pk_{id}"), "host": "https://api.saas.test",
               "secret_key": format!("sk_{id}_1")})
    );
    // The resource is the token's primary project in the SaaS.
    let primary = c.saas.world().projects[0].id;
    assert_eq!(id, primary);
    c.get(id).await.assert(
        200,
        json!({"status": "complete", "id": id.to_string(),
               "complete": {"access_configuration": {"api_key": format!("pk_{id}"), "host": "https://api.saas.test"}}}),
    );
    // No secret at rest: not in the resource row, the call record, the outbox or the audit log.
    for (table, column) in [
        ("resources", "public_access"),
        ("connector_calls", "result"),
        ("events", "data"),
        ("audit_events", "detail"),
    ] {
        let leaked = c
            .app
            .scalar_i64(&format!("SELECT COUNT(*) FROM {table} WHERE {column} LIKE '%sk_%'"))
            .await;
        assert_eq!(leaked, 0, "{table}.{column}");
    }
}

#[backend_test]
async fn a_project_id_makes_one_saas_project_and_a_repeat_fresh_credentials() {
    let c = connected().await;
    let body = json!({"service_id": "analytics", "project_id": "orch_p1",
                      "configuration": {"project_name": "Checkout"}});
    let (id, first) = c.provision(body.clone()).await;
    assert_eq!(c.saas.calls("projects.create").len(), 1);
    assert!(c.saas.world().projects.iter().any(|p| p.id == id && p.name == "Checkout"));
    let (again, second) = c.provision(body).await;
    assert_eq!(again, id, "the same project_id is the same resource");
    assert_eq!(c.saas.calls("projects.create").len(), 1, "no second project");
    assert_ne!(first["secret_key"], second["secret_key"]);
    assert_eq!(
        c.live_secret(id).as_deref(),
        second["secret_key"].as_str(),
        "the latest answer is live"
    );
    let provisions = c.saas.calls("resources.provision");
    assert_ne!(
        provisions[0], provisions[1],
        "a recorded create is done; the repeat is a new operation"
    );
    let (other, _) = c.provision(json!({"service_id": "analytics", "project_id": "orch_p2"})).await;
    assert_ne!(other, id);
}

#[backend_test]
async fn rotation_replaces_the_credentials_and_each_has_its_own_webhook_id() {
    let c = connected().await;
    let (id, created) = c.provision(json!({})).await;
    let path = format!("/provisioning/resources/{id}/rotate_credentials");
    let first = c.post(&path, &json!({})).await;
    assert_eq!(first.status, 200, "{}", first.json);
    let rotated = &first.json["complete"]["access_configuration"];
    assert_ne!(rotated["secret_key"], created["secret_key"]);
    assert_eq!(c.live_secret(id).as_deref(), rotated["secret_key"].as_str());
    c.post(&path, &json!({})).await;
    let ids = c.saas.calls("resources.rotate");
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1]);
}

#[backend_test]
async fn removal_then_recreate_reactivates_with_new_credentials() {
    let c = connected().await;
    let body = json!({"project_id": "orch_rm"});
    let (id, _) = c.provision(body.clone()).await;
    let remove = format!("/provisioning/resources/{id}/remove");
    c.post(&remove, &json!({}))
        .await
        .assert(200, json!({"status": "removed", "id": id.to_string()}));
    assert_eq!(c.live_secret(id), None, "the SaaS revoked the connector's credentials");
    c.get(id).await.assert(200, json!({"status": "removed", "id": id.to_string()}));
    c.post(&format!("/provisioning/resources/{id}/rotate_credentials"), &json!({})).await.assert(
        409,
        json!({"status": "error", "id": id.to_string(),
               "error": {"code": "invalid_state", "message": "Resource has been removed"}}),
    );
    c.post(&remove, &json!({}))
        .await
        .assert(200, json!({"status": "removed", "id": id.to_string()}));
    assert_eq!(c.saas.calls("resources.remove").len(), 1, "removing twice calls the SaaS once");
    let (again, access) = c.provision(body).await;
    assert_eq!(again, id);
    assert_eq!(c.live_secret(id).as_deref(), access["secret_key"].as_str());
    assert_eq!(c.get(id).await.json["status"], "complete");
}

#[backend_test]
async fn refusals_carry_app_codes_through_and_nothing_else() {
    let c = connected().await;
    c.saas.fail("resources.provision", &[Fault::Refuse(402, "requires_payment_credentials")]);
    c.post("/provisioning/resources", &json!({})).await.assert(
        400,
        json!({"status": "error", "id": "", "error": {"code": "requires_payment_credentials",
               "message": "refused: requires_payment_credentials"}}),
    );
    c.saas.fail("resources.provision", &[Fault::Refuse(400, "quota_exceeded")]);
    c.post("/provisioning/resources", &json!({})).await.assert(
        400,
        json!({"status": "error", "id": "", "error": {"code": "provider_refused",
               "message": "refused: quota_exceeded"}}),
    );
    assert_eq!(c.app.count("resources").await, 0);
    let (id, _) = c.provision(json!({})).await;
    c.saas.fail("resources.rotate", &[Fault::Refuse(400, "rotation_locked")]);
    c.post(&format!("/provisioning/resources/{id}/rotate_credentials"), &json!({})).await.assert(
        500,
        json!({"status": "error", "id": id.to_string(), "error": {"code": "credential_rotation_failed",
               "message": "The credentials could not be rotated"}}),
    );
}

#[backend_test]
async fn project_gone_marks_the_resource_removed() {
    let c = connected().await;
    let (id, _) = c.provision(json!({})).await;
    c.saas.fail("resources.rotate", &[Fault::Refuse(400, "project_gone")]);
    c.post(&format!("/provisioning/resources/{id}/rotate_credentials"), &json!({})).await.assert(
        409,
        json!({"status": "error", "id": id.to_string(),
               "error": {"code": "invalid_state", "message": "Resource has been removed"}}),
    );
    c.get(id).await.assert(200, json!({"status": "removed", "id": id.to_string()}));
}

#[backend_test]
async fn not_a_member_revokes_the_token() {
    let c = connected().await;
    c.saas.fail("resources.provision", &[Fault::Refuse(400, "not_a_member")]);
    c.post("/provisioning/resources", &json!({})).await.assert(
        403,
        json!({"status": "error", "id": "", "error": {"code": "forbidden",
               "message": "Resource not accessible with this token"}}),
    );
    let after = c.post("/provisioning/resources", &json!({})).await;
    assert_eq!(after.status, 401, "{}", after.json);
}

#[backend_test]
async fn an_outage_is_503_and_the_retry_carries_the_same_webhook_id() {
    let c = connected().await;
    c.saas.fail("resources.provision", &[Fault::Status(503); 100]);
    let reply = c.post_keyed("/provisioning/resources", &json!({"project_id": "p"}), "k1").await;
    reply.assert(
        503,
        json!({"status": "error", "id": "", "error": {"code": "provider_unavailable",
               "message": "The provider's systems are unavailable; retry later"}}),
    );
    assert!(reply.headers.get("retry-after").is_some());
    assert_eq!(c.app.count("resources").await, 0, "nothing is marked provisioned");
    let first = c.saas.calls("resources.provision")[0].clone();
    c.saas.clear_faults("resources.provision");
    let retry = c.post_keyed("/provisioning/resources", &json!({"project_id": "p"}), "k1").await;
    assert_eq!(retry.status, 200, "{}", retry.json);
    assert_eq!(c.saas.calls("resources.provision").last(), Some(&first));
    assert_eq!(
        c.saas.calls("projects.create").len(),
        1,
        "the project made before the outage is reused"
    );
}

#[backend_test]
async fn a_lost_provision_answer_leaves_one_live_credential_set() {
    let c = connected().await;
    c.saas.fail("resources.provision", &[Fault::LoseAnswer; 100]);
    let lost = c.post("/provisioning/resources", &json!({})).await;
    assert_eq!(lost.status, 503, "{}", lost.json);
    c.saas.clear_faults("resources.provision");
    let (id, access) = c.provision(json!({})).await;
    let ids = c.saas.calls("resources.provision");
    assert!(ids.iter().all(|i| *i == ids[0]), "one operation, one webhook-id");
    assert_eq!(c.saas.world().minted[&id.to_string()], 1, "the SaaS minted one set");
    assert_eq!(c.live_secret(id).as_deref(), access["secret_key"].as_str());
}

#[backend_test]
async fn update_service_goes_through_the_saas() {
    let c = connected().await;
    let (id, _) = c.provision(json!({"service_id": "analytics"})).await;
    let reply = c
        .post(
            &format!("/provisioning/resources/{id}/update_service"),
            &json!({"service_id": "free"}),
        )
        .await;
    reply.assert(
        200,
        json!({"status": "complete", "id": id.to_string(),
               "complete": {"access_configuration": {"api_key": format!("pk_{id}"), "host": "https://api.saas.test"}}}),
    );
    assert_eq!(c.saas.world().services[&id.to_string()], "free");
    assert_eq!(
        c.app
            .scalar_text(&format!("SELECT service_id FROM resources WHERE project_id = {id}"))
            .await,
        "free"
    );
}

#[backend_test]
async fn events_report_each_operation_with_its_operation_id_and_no_secret() {
    let c = connected().await;
    let (id, _) = c.provision(json!({})).await;
    c.post(&format!("/provisioning/resources/{id}/rotate_credentials"), &json!({})).await;
    c.post(&format!("/provisioning/resources/{id}/remove"), &json!({})).await;
    assert_eq!(c.app.deliver_events().await, 4);
    let events = c.saas.events_in_order();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "account.created",
            "resource.provisioned",
            "resource.credentials_rotated",
            "resource.removed"
        ]
    );
    assert_eq!(events[1]["data"]["operation_id"], json!(c.saas.calls("resources.provision")[0]));
    assert_eq!(events[1]["data"]["resource_id"], json!(id.to_string()));
    // No secret: neither the SaaS's keys (`sk_{id}_1`, `sk_{id}_2` after the rotation) nor the
    // bearer. (A bare "sk_" could occur by chance inside a random identifier.)
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains(&format!("sk_{id}_")) && !text.contains(&c.token), "{text}");
    assert_eq!(c.app.deliver_events().await, 0, "delivered events are not sent again");
}

#[backend_test]
async fn events_survive_an_outage_of_the_receiver() {
    let c = connected().await;
    c.saas.fail("events", &[Fault::Status(503)]);
    assert_eq!(c.app.deliver_events().await, 1);
    assert!(c.saas.world().events.is_empty());
    let (state, attempts) = (
        c.app.scalar_text("SELECT state FROM events").await,
        c.app.scalar_i64("SELECT attempts FROM events").await,
    );
    assert_eq!((state.as_str(), attempts), ("pending", 1));
    // Not due until the pause (1 s) has passed.
    assert_eq!(c.app.deliver_events().await, 0);
    c.app.state.clock.advance(2);
    assert_eq!(c.app.deliver_events().await, 1);
    assert_eq!(c.saas.world().events.len(), 1);
    assert_eq!(c.app.scalar_text("SELECT state FROM events").await, "delivered");
}

#[backend_test]
async fn an_event_older_than_the_give_up_age_is_failed() {
    let c = connected().await;
    c.saas.fail("events", &[Fault::Status(500)]);
    c.app.state.clock.advance(73 * 3600);
    assert_eq!(c.app.deliver_events().await, 1);
    assert_eq!(c.app.scalar_text("SELECT state FROM events").await, "failed");
    assert_eq!(c.app.deliver_events().await, 0, "a failed event waits for an operator's retry");
}

#[backend_test]
async fn a_deep_link_opens_the_saas_dashboard_once() {
    let c = connected().await;
    let reply = c.post("/provisioning/deep_links", &json!({"purpose": "dashboard"})).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let url = reply.json["url"].as_str().unwrap();
    let path = url.strip_prefix("https://provider.example").unwrap();
    let (status, headers, _) = c.app.browse(path, None).await;
    assert_eq!(status, 302);
    assert_eq!(headers["location"], format!("{DASHBOARD_ORIGIN}/session?token=login_1").as_str());
    let (status, headers, _) = c.app.browse(path, None).await;
    assert_eq!(
        (status, &headers["location"]),
        (303, &"/?error=expired_or_invalid_token".parse().unwrap())
    );
    assert_eq!(c.saas.calls("dashboard.login").len(), 1);
}

#[backend_test]
async fn a_refused_dashboard_login_is_an_error_page() {
    let c = connected().await;
    c.saas.fail("dashboard.login", &[Fault::Refuse(403, "staff_account")]);
    let reply = c.post("/provisioning/deep_links", &json!({"purpose": "dashboard"})).await;
    let path = reply.json["url"]
        .as_str()
        .unwrap()
        .strip_prefix("https://provider.example")
        .unwrap()
        .to_string();
    let (status, headers, body) = c.app.browse(&path, None).await;
    assert_eq!(status, 502);
    assert!(headers.get("set-cookie").is_none());
    assert!(body.contains("saas_login_failed"), "{body}");
}

#[backend_test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_deliver_every_event_and_none_twice_at_once() {
    let saas = Saas::start().await;
    let first = TestApp::with_connector(&saas, true).await;
    for i in 0..30 {
        first.code_for(&format!("many{i}@example.com")).await;
    }
    let instances = std::sync::Arc::new([
        first.another_connected(&saas, true).await,
        first.another_connected(&saas, true).await,
        first.another_connected(&saas, true).await,
    ]);
    let workers: Vec<_> = (0..3)
        .map(|i| {
            let instances = instances.clone();
            tokio::spawn(async move {
                let mut delivered = 0;
                while instances[i].deliver_events().await > 0 {
                    delivered += 1;
                }
                delivered
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
    let mut ids: Vec<String> =
        saas.world().events.iter().map(|e| e["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), 30, "each event delivered once: claims are exclusive");
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 30);
    assert_eq!(first.scalar_i64("SELECT COUNT(*) FROM events WHERE state = 'delivered'").await, 30);
}

#[backend_test]
async fn built_in_mode_reports_events_too_and_revocations_by_reason() {
    let saas = Saas::start().await;
    let app = TestApp::builtin_with_events(&saas).await;
    let code = app.code_for("builtin@example.com").await;
    let tokens = app.redeem(&code).await;
    let access = tokens["access_token"].as_str().unwrap();
    let created = app.provision(access, &json!({})).await;
    assert_eq!(created.status, 200, "{}", created.json);
    // A second redemption of the code revokes its tokens; a reused refresh token its family.
    app.token(&format!("grant_type=authorization_code&code={code}")).await;
    let again = app.tokens_for("builtin2@example.com").await;
    let refresh = again["refresh_token"].as_str().unwrap();
    app.token(&format!("grant_type=refresh_token&refresh_token={refresh}")).await;
    app.token(&format!("grant_type=refresh_token&refresh_token={refresh}")).await;
    while app.deliver_events().await > 0 {}
    let events = saas.events_in_order();
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (e["type"].as_str().unwrap().into(), e["data"]["reason"].as_str().unwrap_or("").into())
        })
        .collect();
    let expected = [
        ("account.created", ""),
        ("resource.provisioned", ""),
        ("tokens.revoked", "code_replay"),
        ("account.created", ""),
        ("tokens.revoked", "refresh_reuse"),
    ];
    assert_eq!(summary, expected.map(|(a, b)| (a.to_string(), b.to_string())));
    assert!(events[1]["data"].get("operation_id").is_none(), "built-in work has no SaaS call");
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains("pvpk_") && !text.contains("pvrt_") && !text.contains(&code), "{text}");
}

#[backend_test]
async fn a_login_url_off_the_dashboard_origin_is_refused() {
    let c = connected().await;
    c.saas.world().login_origin = Some("https://evil.example".into());
    let reply = c.post("/provisioning/deep_links", &json!({"purpose": "dashboard"})).await;
    let url = reply.json["url"].as_str().unwrap();
    let path = url.strip_prefix("https://provider.example").unwrap().to_string();
    let (status, headers, body) = c.app.browse(&path, None).await;
    assert_eq!(status, 502);
    assert!(headers.get("location").is_none());
    assert!(!body.contains("evil.example"), "{body}");
}

#[backend_test]
async fn housekeeping_forgets_delivered_events_and_old_calls_after_a_week() {
    let c = connected().await;
    c.provision(json!({})).await;
    c.saas.fail("events", &[Fault::Status(503)]);
    assert_eq!(c.app.deliver_events().await, 2);
    // One of the two was refused: it stays, pending, however old.
    let week = 7 * 24 * 3600;
    c.app.state.clock.advance(week + 1);
    let now = c.app.state.clock.now();
    c.app.state.store.sweep(now, now * 1000).await.unwrap();
    assert_eq!(c.app.count("connector_calls").await, 0);
    assert_eq!(c.app.scalar_text("SELECT state FROM events").await, "pending");
    assert_eq!(c.app.count("events").await, 1);
}

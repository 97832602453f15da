//! What a SaaS registers with Stripe: the account configuration schema (`[accounts]`) that account
//! requests are held to, the scopes granted, and `/llm-context.md`.

use provisio_server::registration::{AccountSettings, AccountsSpec, ProviderSpec};
use provisio_testkit::backend_test;
use serde_json::{Value, json};

use crate::{
    saas::Saas,
    support::{Req, Setup, account_body},
};

fn accounts() -> AccountSettings {
    AccountSettings::new(&AccountsSpec {
        configuration_schema: Some(json!({
            "type": "object",
            "properties": {
                "region": {"type": "string", "enum": ["us", "eu"]},
                "organization_name": {"type": "string"}
            },
            "required": ["region"],
            "additionalProperties": false
        })),
        scopes: vec!["provision".into(), "analytics:read".into()],
    })
    .unwrap()
}

fn with_configuration(id: &str, email: &str, configuration: Value) -> Value {
    let mut body = account_body(id, email);
    body["configuration"] = configuration;
    body
}

fn typed(id: &str, code: &str, message: &str) -> Value {
    json!({"id": id, "type": "error", "error": {"code": code, "message": message}})
}

#[backend_test]
async fn account_requests_are_held_to_the_configuration_schema() {
    let app = Setup { accounts: accounts(), ..Setup::default() }.open().await;
    let body = |id: &str, configuration: Value| {
        with_configuration(id, "schema@example.com", configuration)
    };
    app.account_request(&body("ar_c1", json!({"region": "mars"}))).await.assert(
        400,
        typed(
            "ar_c1",
            "invalid_configuration",
            r#"configuration.region: "mars" is not one of "us" or "eu""#,
        ),
    );
    app.account_request(&body("ar_c2", json!({}))).await.assert(
        400,
        typed(
            "ar_c2",
            "invalid_configuration",
            r#"configuration: "region" is a required property"#,
        ),
    );
    let extra = app.account_request(&body("ar_c3", json!({"region": "eu", "color": "red"}))).await;
    assert_eq!(
        (extra.status, &extra.json["error"]["code"]),
        (400, &json!("invalid_configuration"))
    );
    assert!(extra.json["error"]["message"].as_str().unwrap().contains("color"), "{}", extra.json);
    assert_eq!(app.count("users").await, 0, "a refused request makes nothing");
    // team_id is the protocol's own: it passes the schema whatever the schema says, and keeps its
    // own check.
    app.account_request(&body("ar_c4", json!({"region": "eu", "team_id": "x"})))
        .await
        .assert(400, typed("ar_c4", "invalid_request", "configuration.team_id must be an integer"));
    let ok = app
        .account_request(&body(
            "ar_c5",
            json!({"region": "eu", "organization_name": "Acme", "team_id": null}),
        ))
        .await;
    assert_eq!(ok.status, 200, "{}", ok.json);
    assert_eq!(app.scalar_text("SELECT name FROM organizations").await, "Acme");
}

#[backend_test]
async fn only_the_listed_scopes_are_granted() {
    let app = Setup { accounts: accounts(), ..Setup::default() }.open().await;
    let mut body = with_configuration("ar_s1", "scopes@example.com", json!({"region": "us"}));
    body["scopes"] = json!(["provision", "admin"]);
    app.account_request(&body)
        .await
        .assert(400, typed("ar_s1", "invalid_request", "Unknown scope: admin"));
    body["id"] = json!("ar_s2");
    body["scopes"] = json!(["analytics:read"]);
    assert_eq!(app.account_request(&body).await.status, 200);
}

#[tokio::test]
async fn in_connector_mode_the_checked_configuration_reaches_users_create() {
    let saas = Saas::start().await;
    let app =
        Setup { saas: Some(&saas), connector: true, accounts: accounts(), ..Setup::default() }
            .open()
            .await;
    let reply = app
        .account_request(&with_configuration(
            "ar_k1",
            "conf@example.com",
            json!({"region": "eu", "team_id": null}),
        ))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let bodies = saas.world().bodies.clone();
    let (_, create) = bodies.iter().find(|(op, _)| op == "users.create").unwrap();
    assert_eq!(create["configuration"], json!({"region": "eu"}), "checked, without team_id");
}

#[backend_test]
async fn the_llm_context_page_describes_the_catalog_and_the_operator_text() {
    let provider = ProviderSpec {
        name: Some("Acme Analytics".into()),
        llm_context: Some("Send events to `{host}/capture` with the `api_key`.".into()),
    };
    let app = Setup { provider, accounts: accounts(), ..Setup::default() }.open().await;
    let (status, headers, page) = app.raw(Req::get("/llm-context.md").build()).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/markdown; charset=utf-8");
    assert!(page.starts_with("# Acme Analytics: provisioning through Stripe Projects\n"), "{page}");
    for expected in [
        "### `analytics` (resource)",
        "free on `free`; Usage-based pricing, $0 base; billed monthly for what you use on `pay_as_you_go`",
        "### `pay_as_you_go` (plan)",
        "`configuration.project_name` (string): Name of the new project",
        "`personal_api_key` — a secret key",
        "## Account configuration",
        "\"region\"",
        "Send events to `{host}/capture` with the `api_key`.",
    ] {
        assert!(page.contains(expected), "{expected:?} missing from:\n{page}");
    }
    // Public, unsigned, like the services a registration points at.
    let unsigned = app.raw(Req::get("/llm-context.md").signature(None).build()).await;
    assert_eq!(unsigned.0, 200);
}

#[test]
fn a_schema_that_is_not_one_for_an_object_is_refused_at_start() {
    for (schema, why) in [
        (json!("object"), "must be a JSON Schema for an object"),
        (json!({"type": "array"}), "must be a JSON Schema for an object"),
        (
            json!({"type": "object", "properties": {"a": {"type": "strnig"}}}),
            "is not a valid JSON Schema",
        ),
    ] {
        let spec = AccountsSpec { configuration_schema: Some(schema), scopes: vec![] };
        let e = AccountSettings::new(&spec).unwrap_err();
        assert_eq!((e.section, e.key), ("accounts", "configuration_schema"));
        assert!(e.message.contains(why), "{}", e.message);
    }
    let spec = AccountsSpec { configuration_schema: None, scopes: vec![" ".into()] };
    assert_eq!(AccountSettings::new(&spec).unwrap_err().key, "scopes");
}

#[backend_test]
async fn a_consent_keeps_the_checked_configuration_for_the_account_it_makes() {
    let app = Setup { accounts: accounts(), ..Setup::consent() }.open().await;
    let reply = app
        .account_request(&with_configuration(
            "ar_p1",
            "pending@example.com",
            json!({"region": "us"}),
        ))
        .await;
    assert_eq!(reply.json["type"], "requires_auth", "{}", reply.json);
    let kept: Value =
        serde_json::from_str(&app.scalar_text("SELECT configuration FROM pending_consents").await)
            .unwrap();
    assert_eq!(kept, json!({"region": "us"}));
}

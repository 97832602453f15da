//! `provisio admin`: find and show users, add a demo project, revoke a user's tokens, read the audit
//! log — against a database a real server wrote; list and retry the events outbox.

use std::process::Command;

use provisio_orchestrator::{Client, ClientConfig, client::account_request_body};
use serde_json::Value;

use crate::server::{Server, config_file};

fn admin(db: &str, args: &[&str]) -> (bool, String) {
    let (ok, out, _) = admin_output(db, args);
    (ok, out)
}

/// Signs up the account request `body` and redeems its code: the access token.
pub(crate) async fn signed_up(client: &Client, body: &Value) -> String {
    let answer = client.account_request(body).await.unwrap().json.unwrap();
    let code = answer["oauth"]["code"].as_str().unwrap().to_string();
    let tokens = client.redeem_code(&code, None).await.unwrap().json.unwrap();
    tokens["access_token"].as_str().unwrap().to_string()
}

/// The SQLite URL of the database `server` writes.
pub(crate) fn database_of(server: &Server) -> String {
    format!("sqlite://{}", server.dir.as_ref().unwrap().path().join("provisio.db").display())
}

/// `provisio admin …` on `db`: success, stdout, stderr.
pub(crate) fn admin_output(db: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_provisio"))
        .args(["admin", "--database-url", db])
        .args(args)
        .output()
        .unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[tokio::test]
async fn operators_find_users_add_demo_projects_and_revoke_tokens() {
    let server = Server::start(&["--signing-secret", "whsec_admin"]);
    let client =
        Client::new(ClientConfig::new(&server.base_url, vec!["whsec_admin".into()])).unwrap();
    let body = account_request_body("ar_admin", "Ops@Example.com", "acct_admin");
    let access = signed_up(&client, &body).await;
    let db = database_of(&server);

    let (ok, out) = admin(&db, &["users", "--email", "ops@"]);
    assert!(ok);
    let user: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(user["email"], "Ops@Example.com");

    let (ok, out) = admin(&db, &["user", "ops@example.com"]);
    assert!(ok, "{out}");
    let view: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(view["live_token_families"], 1);
    let org = view["organizations"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(view["organizations"][0]["role"], "owner");

    let (ok, out) = admin(&db, &["demo-project", "--organization", &org, "--name", "Sandbox"]);
    assert!(ok, "{out}");
    let (_, out) = admin(&db, &["user", "ops@example.com"]);
    let view: Value = serde_json::from_str(&out).unwrap();
    let projects = view["organizations"][0]["projects"].as_array().unwrap();
    assert_eq!(projects.len(), 2);
    assert_eq!(projects[1]["is_demo"], true);
    assert!(!admin(&db, &["demo-project", "--organization", "org_nope"]).0, "unknown organization");

    let (ok, out) = admin(&db, &["revoke-tokens", "ops@example.com"]);
    assert!(ok);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["revoked_token_families"], 1);
    let reply = client.get_resource("1", &access).await.unwrap();
    assert_eq!(reply.status, 401, "the revoked token no longer works");

    let (ok, out) = admin(&db, &["audit", "--user", "ops@example.com"]);
    assert!(ok);
    let events: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        events,
        ["account.created", "code.issued", "code.redeemed", "tokens.revoked_by_admin"]
    );
}

/// `GET /provisioning/health` signed with `secret`: its status.
async fn health_with(server: &Server, secret: &str) -> u16 {
    let client = Client::new(ClientConfig::new(&server.base_url, vec![secret.into()])).unwrap();
    client.health().await.unwrap().status
}

/// Polls until the health check signed with `secret` answers `status` (the server reloads its
/// database secrets every second here).
async fn eventually(server: &Server, secret: &str, status: u16) {
    for _ in 0..100 {
        if health_with(server, secret).await == status {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("a request signed with {secret} never answered {status}");
}

#[tokio::test]
async fn operators_add_list_and_retire_signing_secrets_while_the_server_runs() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(
        dir.path(),
        "[limits]\nsigning_secrets_refresh_secs = 1\n\n[[orchestrators]]\nname = \"stripe\"\nsigning_secrets = [\"whsec_configured\"]\n",
    );
    let db = format!("sqlite://{}", dir.path().join("provisio.db").display());
    let server = Server::start_in(dir, &["--config", &config]);
    assert_eq!(health_with(&server, "whsec_configured").await, 200);

    let (ok, out) =
        admin(&db, &["signing-secret", "add", "--orchestrator", "stripe", "--label", "rotation"]);
    assert!(ok, "{out}");
    let added: Value = serde_json::from_str(out.trim()).unwrap();
    let generated = added["secret"].as_str().unwrap().to_string();
    assert!(generated.starts_with("whsec_") && generated.len() > 40, "{generated}");
    let generated_id = added["id"].as_i64().unwrap();
    let (ok, out) = admin(
        &db,
        &["signing-secret", "add", "--orchestrator", "stripe", "--secret", "whsec_given_secret"],
    );
    assert!(ok, "{out}");
    let given_id = serde_json::from_str::<Value>(out.trim()).unwrap()["id"].as_i64().unwrap();

    eventually(&server, &generated, 200).await;
    eventually(&server, "whsec_given_secret", 200).await;
    assert_eq!(health_with(&server, "whsec_configured").await, 200);

    let (ok, out) =
        admin(&db, &["signing-secret", "retire", "--id", &given_id.to_string(), "--after", "24h"]);
    assert!(ok, "{out}");
    let retiring: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(retiring["status"], "retiring");
    let (ok, out) = admin(&db, &["signing-secret", "retire", "--id", &generated_id.to_string()]);
    assert!(ok, "{out}");

    let (ok, out) = admin(&db, &["signing-secret", "list"]);
    assert!(ok, "{out}");
    assert!(!out.contains(&generated) && !out.contains("whsec_given_secret"), "{out}");
    let listed: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["id"], generated_id);
    assert_eq!(listed[0]["label"], "rotation");
    assert_eq!(listed[0]["status"], "retired");
    assert_eq!(listed[1]["status"], "retiring");
    assert!(listed[1]["retire_at"].as_i64().unwrap() > listed[1]["created_at"].as_i64().unwrap());
    assert!(listed.iter().all(|s| s.get("secret").is_none()));

    // The retired secret is refused; the retiring one verifies during its overlap window.
    eventually(&server, &generated, 401).await;
    assert_eq!(health_with(&server, "whsec_given_secret").await, 200);

    assert!(!admin(&db, &["signing-secret", "retire", "--id", &generated_id.to_string()]).0);
    assert!(!admin(&db, &["signing-secret", "retire", "--id", "999"]).0);
    let (ok, out) = admin(&db, &["audit"]);
    assert!(ok);
    let events: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["event"].as_str().unwrap().to_string())
        .filter(|e| e.starts_with("signing_secret."))
        .collect();
    assert_eq!(
        events,
        [
            "signing_secret.added",
            "signing_secret.added",
            "signing_secret.retired",
            "signing_secret.retired"
        ]
    );
}

/// Writes three events the way the server does: `account.created` (with an email) given up on,
/// `resource.provisioned` delivered, `tokens.revoked` still pending. Their ids, in that order.
async fn seed_events(db: &str) -> [String; 3] {
    use provisio_server::store::{Store, StoreError, events};

    let store = Store::open(db).await.unwrap();
    let now = provisio_server::clock::Clock::system().now();
    let ids = ["evt_admin_failed", "evt_admin_delivered", "evt_admin_pending"].map(String::from);
    let seeded = ids.clone();
    store
        .write(move |conn| -> Result<(), StoreError> {
            let rows = [
                ("account.created", r#"{"user_id":"u_1","email":"ada@example.com"}"#, now - 100),
                ("resource.provisioned", r#"{"resource_id":"7","project_id":7}"#, now - 50),
                ("tokens.revoked", r#"{"user_id":"u_1","reason":"operator"}"#, now - 10),
            ];
            for (id, (kind, data, at)) in seeded.iter().zip(rows) {
                events::insert(conn, id, kind, data, at, at * 1000)?;
            }
            let sequence = |conn: &mut dyn provisio_server::store::Conn, id: &str| {
                conn.query_one("SELECT sequence FROM events WHERE id = $1", &[id.into()])?.int(0)
            };
            // Too old to try again: given up on after this attempt.
            let failed = sequence(conn, &seeded[0])?;
            events::mark_attempt_failed(conn, failed, now * 1000, "the SaaS answered 503", now)?;
            let delivered = sequence(conn, &seeded[1])?;
            events::mark_delivered(conn, delivered, now)
        })
        .await
        .unwrap();
    store.close().await.unwrap();
    ids
}

fn json_lines(out: &str) -> Vec<Value> {
    out.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[tokio::test]
async fn operators_list_the_events_outbox_and_retry_failed_events() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("provisio.db").display());
    let [failed, delivered, pending] = seed_events(&db).await;

    let (ok, out) = admin(&db, &["events", "list"]);
    assert!(ok, "{out}");
    assert!(!out.contains("ada@example.com"), "the email is never printed in full: {out}");
    let listed = json_lines(&out);
    let ids: Vec<&str> = listed.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [&pending, &delivered, &failed], "newest first");
    let states: Vec<&str> = listed.iter().map(|e| e["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["pending", "delivered", "failed"]);
    assert_eq!(listed[2]["type"], "account.created");
    assert_eq!(listed[2]["data"]["email"], "a***@example.com");
    assert_eq!(listed[2]["data"]["user_id"], "u_1", "data is an object, the rest as stored");
    assert_eq!(listed[2]["attempts"], 1);
    assert_eq!(listed[2]["last_error"], "the SaaS answered 503");
    assert!(listed[1]["delivered_at"].is_i64());

    let (ok, out) = admin(&db, &["events", "list", "--limit", "1"]);
    assert!(ok);
    assert_eq!(json_lines(&out).len(), 1);
    let (ok, out) = admin(&db, &["events", "list", "--failed"]);
    assert!(ok);
    let only_failed = json_lines(&out);
    assert_eq!(only_failed.len(), 1);
    assert_eq!(only_failed[0]["id"], failed.as_str());

    // Every failed event is due again, its attempts from zero; nothing else changes.
    let (ok, out) = admin(&db, &["events", "retry", "--failed"]);
    assert!(ok, "{out}");
    assert_eq!(serde_json::from_str::<Value>(out.trim()).unwrap()["made_due"], 1);
    let (_, out) = admin(&db, &["events", "list", "--failed"]);
    assert_eq!(out, "", "no failed event left");
    let (_, out) = admin(&db, &["events", "list"]);
    let retried = json_lines(&out).into_iter().find(|e| e["id"] == failed.as_str()).unwrap();
    assert_eq!(retried["state"], "pending");
    assert_eq!(retried["attempts"], 0);
    let (ok, out) = admin(&db, &["events", "retry", "--failed"]);
    assert!(ok, "nothing to retry is not an error");
    assert_eq!(serde_json::from_str::<Value>(out.trim()).unwrap()["made_due"], 0);

    // By id: a pending event is made due now; a delivered or unknown one is refused.
    let (ok, out) = admin(&db, &["events", "retry", &pending]);
    assert!(ok, "{out}");
    assert_eq!(serde_json::from_str::<Value>(out.trim()).unwrap()["made_due"], 1);
    let (ok, out) = admin(&db, &["events", "retry", &delivered]);
    assert!(!ok, "a delivered event is never sent again");
    assert_eq!(serde_json::from_str::<Value>(out.trim()).unwrap()["made_due"], 0);
    assert!(!admin(&db, &["events", "retry", "evt_unknown"]).0);
    assert!(!admin(&db, &["events", "retry"]).0, "an id or --failed is required");
    assert!(!admin(&db, &["events", "retry", &pending, "--failed"]).0, "not both");
    assert!(!admin(&db, &["events", "list", "--limit", "0"]).0);
}

#[test]
fn admin_commands_open_an_existing_database_only() {
    // Run in the wrong folder, an admin command says where it looked instead of creating an empty
    // provisio.db there.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_provisio"))
        .current_dir(dir.path())
        .args(["admin", "users"])
        .env_remove("PROVISIO_DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!("no database at {}", dir.path().join("provisio.db").display());
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(!dir.path().join("provisio.db").exists(), "nothing was created");
}

#[test]
fn errors_say_their_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_provisio"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config", missing.to_str().unwrap()])
        .args(["--database-url", &format!("sqlite://{}", dir.path().join("p.db").display())])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("No such file or directory").count(), 1, "{stderr}");
    let out = Command::new(env!("CARGO_BIN_EXE_provisio"))
        .args(["migrate", "--database-url", "postgres://postgres@127.0.0.1:1/none?sslmode=disable"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error connecting to server"), "{stderr}");
    assert_eq!(stderr.matches("error connecting to server").count(), 1, "{stderr}");
}

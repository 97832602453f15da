//! `provisio admin`: find and show users, add a demo project, revoke a user's tokens, read the audit
//! log — against a database a real server wrote.

use std::process::Command;

use provisio_orchestrator::{Client, ClientConfig, client::account_request_body};
use serde_json::Value;

use crate::server::{Server, config_file};

fn admin(db: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_provisio"))
        .args(["admin", "--database-url", db])
        .args(args)
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test]
async fn operators_find_users_add_demo_projects_and_revoke_tokens() {
    let server = Server::start(&["--signing-secret", "whsec_admin"]);
    let client =
        Client::new(ClientConfig::new(&server.base_url, vec!["whsec_admin".into()])).unwrap();
    let code = client
        .account_request(&account_request_body("ar_admin", "Ops@Example.com", "acct_admin"))
        .await
        .unwrap()
        .json
        .unwrap()["oauth"]["code"]
        .as_str()
        .unwrap()
        .to_string();
    let tokens = client.redeem_code(&code, None).await.unwrap().json.unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let db =
        format!("sqlite://{}", server.dir.as_ref().unwrap().path().join("provisio.db").display());

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

//! `provisio admin`: find and show users, add a demo project, revoke a user's tokens, read the audit
//! log — against a database a real server wrote.

use std::process::Command;

use provisio_orchestrator::{Client, ClientConfig, client::account_request_body};
use serde_json::Value;

use crate::server::Server;

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

//! Connector mode against the real binary: SIGKILL between the SaaS's answer and provisio recording
//! it, then the orchestrator's retry on a restarted server. The SaaS sees one user and one set of
//! credentials, and events written before the kill reach it after an outage of its receiver.

use std::time::Duration;

use provisio_orchestrator::{Client, ClientConfig, client::account_request_body};
use serde_json::json;

use crate::{
    saas::{CONNECTOR_SECRET, DASHBOARD_ORIGIN, EVENTS_SECRET, Fault, Saas},
    server::{Server, config_file},
};

const SECRET: &str = "whsec_connector_crash";

fn start(dir: tempfile::TempDir, saas: &Saas) -> (Server, Client) {
    let config = config_file(
        dir.path(),
        &format!(
            "[connector]\nurl = \"{}\"\nsecret_env = \"CONNECTOR_SECRET\"\ntimeout_ms = 5000\n\
             deadline_ms = 30000\ndashboard_origin = \"{DASHBOARD_ORIGIN}\"\n\n\
             [events]\nurl = \"{}\"\nsecret_env = \"EVENTS_SECRET\"\n",
            saas.connector_url(),
            saas.events_url()
        ),
    );
    let server = Server::start_in_with_env(
        dir,
        &["--signing-secret", SECRET, "--config", &config],
        &[("CONNECTOR_SECRET", CONNECTOR_SECRET), ("EVENTS_SECRET", EVENTS_SECRET)],
    );
    let client = Client::new(ClientConfig::new(&server.base_url, vec![SECRET.into()])).unwrap();
    (server, client)
}

/// Runs `call` against `client`, kills the server once the SaaS has done the work of a held call,
/// then lets the SaaS answer into the void; the server's directory, to start again on.
async fn kill_mid_call<F>(saas: &Saas, server: Server, call: F) -> tempfile::TempDir
where
    F: std::future::Future + Send + 'static,
    F::Output: Send,
{
    let pending = tokio::spawn(call);
    tokio::time::timeout(Duration::from_secs(30), saas.held())
        .await
        .expect("the call reached the SaaS");
    let dir = server.kill_hard();
    saas.release();
    let _ = pending.await;
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_between_the_saas_call_and_the_record_is_completed_by_the_retry() {
    let saas = Saas::start().await;
    let (server, client) = start(tempfile::tempdir().unwrap(), &saas);
    let body = account_request_body("req_killed", "killed@example.com", "acct_kill");

    // 1. Killed while users.create's answer is on its way.
    saas.fail("users.create", &[Fault::Hold]);
    let (c, b) = (client.clone(), body.clone());
    let dir = kill_mid_call(&saas, server, async move { c.account_request(&b).await }).await;
    assert_eq!(saas.users_with("killed@example.com"), 1, "the SaaS made the user");

    // The receiver of events is down for a while from here on.
    saas.fail("events", &[Fault::Status(503); 3]);
    let (server, client) = start(dir, &saas);
    let reply = client.account_request(&body).await.unwrap();
    assert_eq!(reply.status, 200, "{:?}", reply.json);
    let code = reply.json.unwrap()["oauth"]["code"].as_str().unwrap().to_string();
    let tokens = client.redeem_code(&code, None).await.unwrap().json.unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_string();
    assert_eq!(saas.users_with("killed@example.com"), 1, "the retry made no second user");
    let creates = saas.calls("users.create");
    assert!(creates.iter().all(|id| *id == creates[0]), "one operation, one webhook-id");

    // 2. Killed while resources.provision's answer is on its way.
    saas.fail("resources.provision", &[Fault::Hold]);
    let (c, a) = (client.clone(), access.clone());
    let dir = kill_mid_call(&saas, server, async move {
        c.provision(&json!({"project_id": "orch_kill"}), &a).await
    })
    .await;
    let (_server, client) = start(dir, &saas);
    let created = client.provision(&json!({"project_id": "orch_kill"}), &access).await.unwrap();
    assert_eq!(created.status, 200, "{:?}", created.json);
    let body = created.json.unwrap();
    let id = body["id"].as_str().unwrap().to_string();
    assert_eq!(saas.world().minted[&id], 1, "one set of credentials minted");
    assert_eq!(
        saas.world().live_secret[&id].as_str(),
        body["complete"]["access_configuration"]["secret_key"].as_str().unwrap()
    );
    assert_eq!(saas.calls("projects.create").len(), 1);

    // 3. Every event written before a kill or during the outage arrives, once the receiver is up.
    let mut types = vec![];
    for _ in 0..300 {
        types =
            saas.world().events.iter().map(|e| e["type"].as_str().unwrap().to_string()).collect();
        if types.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    types.sort();
    assert_eq!(types, ["account.created", "resource.provisioned"]);
}

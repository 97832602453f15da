//! Crash safety: SIGKILL the server in the middle of a load of account requests, token exchanges and
//! resource creates, restart it on the same database, and check that every answered request's
//! effects are there and nothing is half-made.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use provisio_orchestrator::{Client, ClientConfig, client::account_request_body};
use provisio_server::store::{Query, Store, StoreError};
use serde_json::json;

use crate::server::Server;

const SECRET: &str = "whsec_crash";

/// What the server answered before it died: (email, organization id, resource id, personal key).
type Answered = (String, String, String, String);

async fn one_flow(client: &Client, worker: usize, n: usize) -> Option<Answered> {
    let email = format!("crash-{worker}-{n}@example.com");
    let reply = client
        .account_request(&account_request_body(
            &format!("ar_crash_{worker}_{n}"),
            &email,
            "acct_crash",
        ))
        .await
        .ok()?;
    let code = reply.json?["oauth"]["code"].as_str()?.to_string();
    let tokens = client.redeem_code(&code, None).await.ok()?.json?;
    let (access, org) = (
        tokens["access_token"].as_str()?.to_string(),
        tokens["account"]["id"].as_str()?.to_string(),
    );
    let created =
        client.provision(&json!({"project_id": format!("p-{worker}-{n}")}), &access).await.ok()?;
    let body = created.json.filter(|_| created.status == 200)?;
    let key = body["complete"]["access_configuration"]["personal_api_key"].as_str()?.to_string();
    Some((email, org, body["id"].as_str()?.to_string(), key))
}

fn count(conn: &mut dyn Query, sql: &str) -> Result<i64, StoreError> {
    conn.query_one(sql, &[])?.int(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_server_keeps_every_answered_request_and_nothing_half_made() {
    let server = Server::start(&["--signing-secret", SECRET]);
    let client = Client::new(ClientConfig::new(&server.base_url, vec![SECRET.into()])).unwrap();
    let answered: Arc<Mutex<Vec<Answered>>> = Arc::default();
    let workers: Vec<_> = (0..8)
        .map(|worker| {
            let (client, answered) = (client.clone(), answered.clone());
            tokio::spawn(async move {
                for n in 0.. {
                    match one_flow(&client, worker, n).await {
                        Some(done) => answered.lock().unwrap().push(done),
                        None => break,
                    }
                }
            })
        })
        .collect();
    // Kill once the load is well under way (not after a fixed time: machines differ in speed).
    for _ in 0..600 {
        if answered.lock().unwrap().len() >= 40 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dir = server.kill_hard();
    for worker in workers {
        worker.await.unwrap();
    }
    let answered = answered.lock().unwrap().clone();
    assert!(answered.len() >= 40, "the load ran before the kill ({} flows)", answered.len());

    // The server starts again on the crashed database and serves.
    let restarted = Server::start_in(dir, &["--signing-secret", SECRET]);
    let client = Client::new(ClientConfig::new(&restarted.base_url, vec![SECRET.into()])).unwrap();
    assert_eq!(client.health().await.unwrap().status, 200);

    let db = format!(
        "sqlite://{}",
        restarted.dir.as_ref().unwrap().path().join("provisio.db").display()
    );
    let store = Store::connect(&db).await.unwrap();
    let checked = store
        .read(move |conn| -> Result<usize, StoreError> {
            assert_eq!(conn.query_one("PRAGMA integrity_check", &[])?.text(0)?, "ok");
            for (email, org, id, key) in &answered {
                let user = conn.query_one("SELECT COUNT(*) FROM users WHERE email_normalized = $1", &[email.into()])?.int(0)?;
                let member = conn
                    .query_one("SELECT COUNT(*) FROM memberships WHERE organization_id = $1", &[org.into()])?
                    .int(0)?;
                let resource = conn
                    .query_one("SELECT COUNT(*) FROM resources WHERE project_id = $1 AND status = 'active'", &[id.parse::<i64>().unwrap().into()])?
                    .int(0)?;
                let hash = provisio_server::crypto::token_hash(key);
                let live_key = conn
                    .query_one("SELECT COUNT(*) FROM personal_keys WHERE key_hash = $1 AND revoked_at IS NULL", &[(&hash).into()])?
                    .int(0)?;
                assert_eq!((user, member, resource, live_key), (1, 1, 1, 1), "answered flow for {email} survived");
            }
            // Nothing half-made: every piece has the pieces its transaction made with it.
            let half_made = [
                "SELECT COUNT(*) FROM users u WHERE NOT EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = u.id)",
                "SELECT COUNT(*) FROM organizations o WHERE NOT EXISTS (SELECT 1 FROM memberships m WHERE m.organization_id = o.id)",
                "SELECT COUNT(*) FROM organizations o WHERE NOT EXISTS (SELECT 1 FROM projects p WHERE p.organization_id = o.id)",
                "SELECT COUNT(*) FROM personal_keys k WHERE NOT EXISTS (SELECT 1 FROM resources r WHERE r.project_id = k.project_id)",
                "SELECT COUNT(*) FROM token_families f JOIN authorization_codes c ON c.code_hash = f.code_hash WHERE c.consumed_at IS NULL",
                "SELECT COUNT(*) FROM token_families f WHERE NOT EXISTS (SELECT 1 FROM access_tokens a WHERE a.family_id = f.id)",
                "SELECT COUNT(*) FROM resources r WHERE NOT EXISTS (SELECT 1 FROM personal_keys k WHERE k.project_id = r.project_id)",
            ];
            for sql in half_made {
                assert_eq!(count(conn, sql)?, 0, "{sql}");
            }
            Ok(answered.len())
        })
        .await
        .unwrap();
    eprintln!("{checked} answered flows survived the kill");
}

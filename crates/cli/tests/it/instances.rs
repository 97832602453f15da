//! Three `provisio serve` processes on one PostgreSQL database, with racing requests spread over
//! them: every at-most-once rule holds across instances, `Idempotency-Key` included. Needs `TEST_DATABASE_URL` (CI sets it);
//! without it the test says so and passes.

use std::{future::Future, process::Command};

use provisio_orchestrator::{Auth, Client, ClientConfig, client::account_request_body};
use serde_json::{Value, json};

use provisio_testdb::Schema;

use crate::server::{Server, config_file};

const SECRET: &str = "whsec_instances";

/// Runs one future per instance at once; their answers, in instance order.
async fn on_all<F, Fut>(clients: &[Client], call: F) -> Vec<(u16, Value)>
where
    F: Fn(Client) -> Fut,
    Fut: Future<Output = (u16, Value)> + Send + 'static,
{
    let tasks: Vec<_> = clients.iter().map(|c| tokio::spawn(call(c.clone()))).collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    answers
}

fn successes(answers: &[(u16, Value)]) -> usize {
    answers.iter().filter(|(status, _)| *status == 200).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rules_hold_across_three_instances_on_one_postgresql() {
    let Some(admin_url) = provisio_testdb::database_url() else {
        eprintln!("skipped: TEST_DATABASE_URL is not set");
        return;
    };
    let schema = Schema::create(&admin_url, "instances");
    let url = schema.url();

    // Two deployments migrating at once: both succeed, the schema is made once.
    let migrations: Vec<_> = (0..2)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_provisio"))
                .args(["migrate", "--database-url", &url])
                .env("RUST_LOG", "warn")
                .output()
                .unwrap()
        })
        .collect();
    for out in &migrations {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("is at schema version"));
    }

    // The per-email limit (20 at once, shared by the instances) would refuse a third of the race.
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(
        dir.path(),
        "[rate_limits.account_requests_per_email]\nburst = 100\nper_minute = 6000\n",
    );
    let args = ["--signing-secret", SECRET, "--config", &config];
    let servers: Vec<Server> = (0..3).map(|_| Server::start_on(&url, &args)).collect();
    let clients: Vec<Client> = servers
        .iter()
        .map(|s| Client::new(ClientConfig::new(&s.base_url, vec![SECRET.into()])).unwrap())
        .collect();

    // 30 concurrent account requests for one new email, spread over the instances: one user.
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let client = clients[i % 3].clone();
            tokio::spawn(async move {
                let body =
                    account_request_body(&format!("ar_race_{i}"), "race@example.com", "acct_x");
                let reply = client.account_request(&body).await.unwrap();
                assert_eq!(reply.status, 200, "{}", reply.pretty());
                reply.json.unwrap()["oauth"]["code"].as_str().unwrap().to_string()
            })
        })
        .collect();
    let mut codes = Vec::new();
    for task in tasks {
        codes.push(task.await.unwrap());
    }
    assert_eq!(schema.scalar("SELECT COUNT(*) FROM users"), 1);
    assert_eq!(schema.scalar("SELECT COUNT(*) FROM organizations"), 1);
    assert_eq!(schema.scalar("SELECT COUNT(*) FROM projects"), 1);

    // One code redeemed on all three at once: one success.
    let code = codes[0].clone();
    let redeemed = on_all(&clients, |c| {
        let code = code.clone();
        async move {
            let r = c.redeem_code(&code, None).await.unwrap();
            (r.status, r.json.unwrap_or_default())
        }
    })
    .await;
    assert_eq!(successes(&redeemed), 1, "{redeemed:?}");
    for (status, body) in redeemed.iter().filter(|(s, _)| *s != 200) {
        assert_eq!((*status, body["error"].as_str()), (400, Some("invalid_grant")));
    }

    // One refresh token rotated on all three at once: one success. (Fresh tokens: the losing
    // redemptions above revoked what the winner got.)
    let tokens = clients[0].redeem_code(&codes[1], None).await.unwrap().json.unwrap();
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_string();
    let refreshed = on_all(&clients, |c| {
        let refresh_token = refresh_token.clone();
        async move {
            let r = c.refresh(&refresh_token).await.unwrap();
            (r.status, r.json.unwrap_or_default())
        }
    })
    .await;
    assert_eq!(successes(&refreshed), 1, "{refreshed:?}");

    // The same project_id created on all three at once: one project, the same id everywhere.
    let tokens = clients[1].redeem_code(&codes[2], None).await.unwrap().json.unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let created = on_all(&clients, |c| {
        let access = access.clone();
        async move {
            let r = c.provision(&json!({"project_id": "p-shared"}), &access).await.unwrap();
            (r.status, r.json.unwrap_or_default())
        }
    })
    .await;
    assert_eq!(successes(&created), 3, "{created:?}");
    assert!(created.iter().all(|(_, body)| body["id"] == created[0].1["id"]), "{created:?}");
    assert_eq!(
        schema.scalar("SELECT COUNT(*) FROM resources WHERE orchestrator_project_id = 'p-shared'"),
        1
    );
    assert_eq!(schema.scalar("SELECT COUNT(*) FROM projects"), 2);

    // One rotation sent to all three at once with one Idempotency-Key: it runs once, and every
    // instance answers its credentials.
    let id = created[0].1["id"].as_str().unwrap().to_string();
    let retired_before = schema.scalar("SELECT COUNT(*) FROM retired_project_keys");
    let rotated = on_all(&clients, |c| {
        let path = format!("/provisioning/resources/{id}/rotate_credentials");
        let auth = Auth {
            bearer: Some(access.clone()),
            extra_headers: vec![("idempotency-key".into(), "rotate-once".into())],
            ..Auth::default()
        };
        async move {
            let r = c.post_json(&path, &json!({}), &auth).await.unwrap();
            (r.status, r.json.unwrap_or_default())
        }
    })
    .await;
    assert_eq!(successes(&rotated), 3, "{rotated:?}");
    assert!(rotated.iter().all(|(_, body)| body == &rotated[0].1), "{rotated:?}");
    assert_eq!(schema.scalar("SELECT COUNT(*) FROM retired_project_keys"), retired_before + 1);

    // One deep link opened on all three at once: one session.
    let link = clients[2].deep_link(&json!({"purpose": "dashboard"}), &access).await.unwrap();
    assert_eq!(link.status, 200, "{}", link.pretty());
    let link_url = link.json.unwrap()["url"].as_str().unwrap().to_string();
    let path = link_url[link_url.find("/login").unwrap()..].to_string();
    let opened = on_all(&clients, |c| {
        let url = c.url(&path);
        async move {
            let r = c.open(&url).await.unwrap();
            let location =
                r.headers.get("location").and_then(|l| l.to_str().ok()).unwrap_or("").to_string();
            (if location.starts_with("/projects/") { 200 } else { r.status }, json!(location))
        }
    })
    .await;
    assert_eq!(successes(&opened), 1, "{opened:?}");
    assert_eq!(schema.scalar("SELECT COUNT(*) FROM sessions"), 1);

    drop(servers);
}

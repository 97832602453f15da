//! At-most-once rules under racing requests: many tasks, exactly one winner.

use provisio_testkit::backend_test;
use std::sync::Arc;

use serde_json::{Value, json};

use crate::support::{NOW, Req, SECRET, TestApp, account_body};

/// Runs `n` copies of a request concurrently and returns what each returned.
async fn race<T, F, Fut>(n: usize, make: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(make(i))).collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

#[backend_test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_account_requests_for_one_new_email_make_one_user_and_fifty_codes() {
    let app = Arc::new(TestApp::new().await);
    let codes = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let statuses = race(50, |i| {
        let (app, codes) = (app.clone(), codes.clone());
        async move {
            let reply = app
                .account_request(&account_body(&format!("ar_race_{i}"), "race@example.com"))
                .await;
            if let Some(code) = reply.json["oauth"]["code"].as_str() {
                codes.lock().await.push(code.to_string());
            }
            reply.status
        }
    })
    .await;
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    assert_eq!(
        (
            app.count("users").await,
            app.count("organizations").await,
            app.count("memberships").await
        ),
        (1, 1, 1)
    );
    assert_eq!(app.count("projects").await, 1, "every request links to the one project");
    let mut codes = codes.lock().await.clone();
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), 50);
}

#[backend_test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_redemptions_of_one_code_have_one_winner() {
    let app = Arc::new(TestApp::new().await);
    let code = Arc::new(app.code_for("one-code@example.com").await);
    let statuses = race(20, |_| {
        let (app, code) = (app.clone(), code.clone());
        async move { app.token(&format!("grant_type=authorization_code&code={code}")).await.status }
    })
    .await;
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|&s| s == 200 || s == 400), "{statuses:?}");
    assert_eq!(app.count("token_families").await, 1);
}

#[backend_test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_refreshes_of_one_token_have_one_winner() {
    let app = Arc::new(TestApp::new().await);
    let tokens = app.tokens_for("one-refresh@example.com").await;
    let refresh = Arc::new(tokens["refresh_token"].as_str().unwrap().to_string());
    let statuses = race(20, |_| {
        let (app, refresh) = (app.clone(), refresh.clone());
        async move {
            app.token(&format!("grant_type=refresh_token&refresh_token={refresh}")).await.status
        }
    })
    .await;
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|&s| s == 200 || s == 400), "{statuses:?}");
    assert_eq!(app.count("access_tokens").await, 2, "one original, one rotated");
}

/// Answers of racing requests: every one 200 with the same body, which it returns.
fn one_answer(replies: Vec<(u16, Value)>) -> Value {
    let first = replies[0].1.clone();
    for (status, json) in &replies {
        assert_eq!((*status, json), (200, &first), "every racer gets the one answer");
    }
    first
}

/// Twenty rotations sent at once with one Idempotency-Key (each signed afresh, as a retrying
/// client would): one rotation runs, and all twenty answer its credentials.
#[backend_test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_rotations_with_one_idempotency_key_rotate_once() {
    let app = Arc::new(TestApp::new().await);
    let tokens = app.tokens_for("race-idem@example.com").await;
    let access = Arc::new(tokens["access_token"].as_str().unwrap().to_string());
    let created = app.provision(&access, &json!({"project_id": "ri"})).await;
    let path = Arc::new(format!(
        "/provisioning/resources/{}/rotate_credentials",
        created.json["id"].as_str().unwrap()
    ));
    let replies = race(20, |i| {
        let (app, access, path) = (app.clone(), access.clone(), path.clone());
        async move {
            let rotate = Req::post(&path, "")
                .header("idempotency-key", "rotate-once")
                .signed_with(&[SECRET], NOW - i64::try_from(i).unwrap());
            let reply = app.with_bearer(rotate, &access).await;
            (reply.status, reply.json)
        }
    })
    .await;
    let answer = one_answer(replies);
    assert_eq!(app.count("retired_project_keys").await, 1, "one rotation retired the created key");
    let current = app
        .scalar_text(&format!(
            "SELECT api_key FROM projects WHERE id = {}",
            answer["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(answer["complete"]["access_configuration"]["api_key"], current.as_str());
}

/// Twenty copies of one signed deep-link request (same signature, same body) in flight at once
/// make one link; every copy answers it.
#[backend_test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_copies_of_one_signed_request_in_flight_run_once() {
    let app = Arc::new(TestApp::new().await);
    let tokens = app.tokens_for("race-replay@example.com").await;
    let access = Arc::new(tokens["access_token"].as_str().unwrap().to_string());
    let replies = race(20, |_| {
        let (app, access) = (app.clone(), access.clone());
        async move {
            let link = Req::json("/provisioning/deep_links", &json!({"purpose": "dashboard"}))
                .signed_with(&[SECRET], NOW - 3);
            let reply = app.with_bearer(link, &access).await;
            (reply.status, reply.json)
        }
    })
    .await;
    one_answer(replies);
    assert_eq!(app.count("deep_links").await, 1);
}

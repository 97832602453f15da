//! At-most-once rules under racing requests: many tasks, exactly one winner.

use provisio_testkit::backend_test;
use std::sync::Arc;

use crate::support::{TestApp, account_body};

/// Runs `n` copies of a request concurrently and returns their statuses.
async fn race<F, Fut>(n: usize, make: F) -> Vec<u16>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = u16> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(make(i))).collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses
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

//! Replay safety: a byte-identical signed POST (same signature header, same body) seen again inside
//! the signature window is answered from the recorded response and never runs twice.

use provisio_server::store::{Backend, Conn, StoreError};
use provisio_testkit::backend_test;
use serde_json::json;

use crate::support::{NOW, Req, SECRET, TestApp, account_body, on_backend};

#[backend_test]
async fn a_replayed_create_returns_the_same_answer_and_changes_nothing() {
    let app = TestApp::new().await;
    let access =
        app.tokens_for("replay@example.com").await["access_token"].as_str().unwrap().to_string();
    let request = || {
        Req::json("/provisioning/resources", &json!({"project_id": "r"}))
            .signed_with(&[SECRET], NOW - 7)
    };
    let first = app.with_bearer(request(), &access).await;
    let keys = app.count("personal_keys").await;
    let second = app.with_bearer(request(), &access).await;
    assert_eq!(
        (second.status, &second.json),
        (200, &first.json),
        "the same personal key, not a new one"
    );
    assert_eq!(second.headers["idempotent-replayed"], "true");
    assert_eq!(app.count("personal_keys").await, keys, "nothing ran twice");
    // A fresh signature is a new request and runs.
    let third = app
        .with_bearer(
            Req::json("/provisioning/resources", &json!({"project_id": "r"}))
                .signed_with(&[SECRET], NOW - 8),
            &access,
        )
        .await;
    assert_ne!(third.json, first.json);
}

#[backend_test]
async fn a_replayed_account_request_returns_the_same_code() {
    let app = TestApp::new().await;
    let request = || {
        Req::json(
            "/provisioning/account_requests",
            &account_body("ar_replay", "replay-ar@example.com"),
        )
        .signed_with(&[SECRET], NOW - 3)
    };
    let first = app.send(request().build()).await;
    let second = app.send(request().build()).await;
    assert_eq!((second.status, &second.json), (200, &first.json));
    assert_eq!(app.count("authorization_codes").await, 1, "one code, not two");
}

#[backend_test]
async fn a_replayed_deep_link_request_returns_the_same_link() {
    let app = TestApp::new().await;
    let access =
        app.tokens_for("replay-dl@example.com").await["access_token"].as_str().unwrap().to_string();
    let request = || {
        Req::json("/provisioning/deep_links", &json!({"purpose": "dashboard"}))
            .signed_with(&[SECRET], NOW - 5)
    };
    let first = app.with_bearer(request(), &access).await;
    let second = app.with_bearer(request(), &access).await;
    assert_eq!(second.json, first.json);
    assert_eq!(app.count("deep_links").await, 1);
}

#[backend_test]
async fn two_tokens_sending_the_same_signed_body_are_two_requests() {
    // The signature does not cover `Authorization`: the same body signed in the same second by the
    // orchestrator for two different users must not share a recorded answer.
    let app = TestApp::new().await;
    let a =
        app.tokens_for("replay-a@example.com").await["access_token"].as_str().unwrap().to_string();
    let b =
        app.tokens_for("replay-b@example.com").await["access_token"].as_str().unwrap().to_string();
    let request =
        || Req::json("/provisioning/resources", &json!({})).signed_with(&[SECRET], NOW - 9);
    let for_a = app.with_bearer(request(), &a).await;
    let for_b = app.with_bearer(request(), &b).await;
    assert_eq!((for_a.status, for_b.status), (200, 200));
    assert_ne!(for_a.json["id"], for_b.json["id"], "each user gets their own resource");
    assert!(for_b.headers.get("idempotent-replayed").is_none());
}

/// On PostgreSQL a write transaction waits for its commit to reach disk; a replay record, written
/// on its own, does not (a crash may lose the last moment's records, which costs a rerun only).
#[tokio::test]
async fn on_postgresql_only_write_transactions_wait_for_a_durable_commit() {
    on_backend(Backend::Postgres, || async {
        let app = TestApp::new().await;
        let setting = |conn: &mut dyn Conn| -> Result<String, StoreError> {
            conn.query("SHOW synchronous_commit", &[])?[0].text(0)
        };
        assert_eq!(app.state.store.write(setting).await.unwrap(), "on");
        assert_eq!(app.state.store.write_atomic(setting).await.unwrap(), "on");
        assert_eq!(app.state.store.write_each(setting).await.unwrap(), "off");
    })
    .await;
}

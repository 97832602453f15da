//! Signing secrets kept in the database (`provisio admin signing-secret`): an added secret verifies
//! on every instance after the refresh interval, old and new both verify during the overlap window,
//! and a retired secret answers the exact 401.

use provisio_server::signing_secrets::{self, SigningSecretError};
use provisio_testkit::backend_test;
use serde_json::{Value, json};

use crate::support::{Req, SECRET, TestApp};

/// The default `signing_secrets_refresh_secs`.
const REFRESH: i64 = 5;

fn invalid_signature() -> Value {
    json!({"error":{"code":"invalid_signature","message":"Signature verification failed"}})
}

/// `GET /provisioning/health` signed with `secrets` at the app's current time.
async fn health(app: &TestApp, secrets: &[&str]) -> crate::support::Reply {
    let now = app.state.clock.now();
    app.send(Req::get("/provisioning/health").signed_with(secrets, now).build()).await
}

async fn add(app: &TestApp, orchestrator: &str, secret: &str) -> i64 {
    signing_secrets::add(
        &app.state.store,
        &app.state.server_secret,
        orchestrator,
        Some(secret.to_string()),
        None,
        app.state.clock.now(),
    )
    .await
    .unwrap()
    .info
    .id
}

async fn retire(app: &TestApp, id: i64, after: i64) -> Result<(), SigningSecretError> {
    signing_secrets::retire(&app.state.store, id, after, app.state.clock.now()).await.map(|_| ())
}

#[backend_test]
async fn an_added_secret_verifies_after_the_refresh_interval_beside_the_configured_one() {
    let app = TestApp::new().await;
    assert_eq!(health(&app, &[SECRET]).await.status, 200);
    add(&app, "stripe", "whsec_from_the_database").await;
    // The secrets held were loaded by the first request, less than the interval ago.
    health(&app, &["whsec_from_the_database"]).await.assert(401, invalid_signature());
    app.state.clock.advance(REFRESH);
    assert_eq!(health(&app, &["whsec_from_the_database"]).await.status, 200);
    assert_eq!(health(&app, &[SECRET]).await.status, 200, "the configured secret still verifies");
    health(&app, &["whsec_never_added"]).await.assert(401, invalid_signature());
}

#[backend_test]
async fn old_and_new_both_verify_during_the_overlap_and_the_retired_one_is_refused_after() {
    let app = TestApp::new().await;
    let old = add(&app, "stripe", "whsec_old_one").await;
    app.state.clock.advance(REFRESH);
    assert_eq!(health(&app, &["whsec_old_one"]).await.status, 200);

    add(&app, "stripe", "whsec_new_one").await;
    retire(&app, old, 3600).await.unwrap();
    app.state.clock.advance(REFRESH);
    assert_eq!(health(&app, &["whsec_old_one"]).await.status, 200, "old, inside the overlap");
    assert_eq!(health(&app, &["whsec_new_one"]).await.status, 200, "new");
    assert_eq!(health(&app, &["whsec_old_one", "whsec_new_one"]).await.status, 200, "both");

    app.state.clock.advance(3600);
    health(&app, &["whsec_old_one"]).await.assert(401, invalid_signature());
    assert_eq!(health(&app, &["whsec_new_one"]).await.status, 200);
    assert_eq!(health(&app, &["whsec_old_one", "whsec_new_one"]).await.status, 200);
    assert!(
        matches!(retire(&app, old, 0).await, Err(SigningSecretError::AlreadyRetired(id)) if id == old)
    );
    assert!(matches!(retire(&app, 999_999, 0).await, Err(SigningSecretError::NotFound(999_999))));
}

#[backend_test]
async fn a_secret_retired_at_once_is_refused_within_the_refresh_interval() {
    let app = TestApp::new().await;
    let id = add(&app, "stripe", "whsec_leaked").await;
    app.state.clock.advance(REFRESH);
    assert_eq!(health(&app, &["whsec_leaked"]).await.status, 200);
    retire(&app, id, 0).await.unwrap();
    app.state.clock.advance(REFRESH);
    health(&app, &["whsec_leaked"]).await.assert(401, invalid_signature());
    let listed = signing_secrets::list(&app.state.store, None).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status(app.state.clock.now()), "retired");
}

#[backend_test]
async fn another_instance_picks_up_added_and_retired_secrets_without_restart() {
    let app = TestApp::new().await;
    let other = app.another_instance().await;
    assert_eq!(health(&other, &[SECRET]).await.status, 200);
    let id = add(&app, "stripe", "whsec_shared").await;
    other.state.clock.advance(REFRESH);
    assert_eq!(health(&other, &["whsec_shared"]).await.status, 200);
    retire(&app, id, 0).await.unwrap();
    other.state.clock.advance(REFRESH);
    health(&other, &["whsec_shared"]).await.assert(401, invalid_signature());
}

#[backend_test]
async fn secrets_are_sealed_at_rest_and_only_configured_orchestrators_use_them() {
    let app = TestApp::new().await;
    add(&app, "stripe", "whsec_sealed_secret").await;
    add(&app, "acme", "whsec_for_an_unknown_orchestrator").await;
    let stored = app.rows("SELECT hint, nonce, secret_sealed FROM signing_secrets").await;
    for row in &stored {
        for column in 0..3 {
            assert!(!row.text(column).unwrap().contains("_secret"), "{row:?}");
            assert!(!row.text(column).unwrap().contains("unknown"), "{row:?}");
        }
    }
    app.state.clock.advance(REFRESH);
    assert_eq!(health(&app, &["whsec_sealed_secret"]).await.status, 200);
    health(&app, &["whsec_for_an_unknown_orchestrator"]).await.assert(401, invalid_signature());
    // Another server secret cannot unseal them: they are ignored, not accepted.
    let other_key = signing_secrets::load_valid(
        &app.state.store,
        b"another-server-secret",
        app.state.clock.now(),
    )
    .await
    .unwrap();
    assert!(other_key.is_empty());
}

#[backend_test]
async fn a_database_secret_alone_makes_an_unconfigured_provider_answer() {
    let app = TestApp::with_secrets(&[]).await;
    assert_eq!(health(&app, &["whsec_only"]).await.status, 500);
    add(&app, "stripe", "whsec_only").await;
    app.state.clock.advance(REFRESH);
    assert_eq!(health(&app, &["whsec_only"]).await.status, 200);
}

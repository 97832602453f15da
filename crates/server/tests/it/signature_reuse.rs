//! One signature authorizes at most one state-changing request (security review, issue 16 item 1).
//! The protocol signs the timestamp and the body, not the method, the path or the token, so the
//! headers of a captured request would verify on any endpoint taking the same body; provisio binds
//! a signature to the first request it is seen on.

use provisio_protocol::signature;
use provisio_server::store::Backend;
use provisio_testkit::backend_test;
use serde_json::{Value, json};

use crate::support::{NOW, Req, SECRET, TestApp, on_backend};

fn already_used() -> Value {
    json!({"error":{"code":"invalid_signature",
        "message":"This signature was already used for another request; sign each request anew"}})
}

/// A user with one resource: (app, access token, resource id, its personal key).
async fn owner(app: &TestApp, email: &str) -> (String, String, String) {
    let access = app.tokens_for(email).await["access_token"].as_str().unwrap().to_string();
    let created = app.provision(&access, &json!({})).await;
    assert_eq!(created.status, 200, "{}", created.json);
    let id = created.json["id"].as_str().unwrap().to_string();
    let key = created.json["complete"]["access_configuration"]["personal_api_key"]
        .as_str()
        .unwrap()
        .to_string();
    (access, id, key)
}

#[backend_test]
async fn the_signature_of_a_read_does_not_rotate_or_remove() {
    let app = TestApp::new().await;
    let (access, id, key) = owner(&app, "captured-read@example.com").await;
    let header = signature::header_value(&[SECRET], NOW - 40, b"");
    let read = app
        .with_bearer(
            Req::get(&format!("/provisioning/resources/{id}")).signature(Some(&header)),
            &access,
        )
        .await;
    assert_eq!(read.status, 200, "{}", read.json);
    for action in ["rotate_credentials", "remove", "update_service"] {
        let path = format!("/provisioning/resources/{id}/{action}");
        let reply = app.with_bearer(Req::post(&path, "").signature(Some(&header)), &access).await;
        reply.assert(401, already_used());
    }
    assert_eq!(app.introspect(&key).await["active"], true, "the owner's key still works");
    assert_eq!(app.count("personal_keys").await, 1, "nothing was issued");
}

#[backend_test]
async fn a_signed_deep_link_body_does_not_create_or_remove() {
    let app = TestApp::new().await;
    let (access, id, key) = owner(&app, "captured-link@example.com").await;
    let body = json!({"purpose": "dashboard"});
    let link = || Req::json("/provisioning/deep_links", &body).signed_with(&[SECRET], NOW - 41);
    assert_eq!(app.with_bearer(link(), &access).await.status, 200);
    let header = signature::header_value(&[SECRET], NOW - 41, &serde_json::to_vec(&body).unwrap());
    for path in
        ["/provisioning/resources".to_string(), format!("/provisioning/resources/{id}/remove")]
    {
        let reply =
            app.with_bearer(Req::json(&path, &body).signature(Some(&header)), &access).await;
        reply.assert(401, already_used());
    }
    assert_eq!(app.introspect(&key).await["active"], true);
    assert_eq!(app.count("personal_keys").await, 1);
    // The link request itself, sent again unchanged, is still answered from its record.
    let again = app.with_bearer(link(), &access).await;
    assert_eq!(
        (again.status, again.headers["idempotent-replayed"].to_str().unwrap()),
        (200, "true")
    );
}

#[backend_test]
async fn a_reworded_header_is_the_same_signed_request() {
    // Extra or upper-case `v1` values, spaces and unknown keys still verify; they must not make a
    // replay a new request (the recorded answer, nothing run twice) or free a signature for
    // another path.
    let app = TestApp::new().await;
    let (access, id, _) = owner(&app, "reworded@example.com").await;
    let path = format!("/provisioning/resources/{id}/rotate_credentials");
    let digest = signature::sign(SECRET.as_bytes(), NOW - 42, b"");
    let first = app
        .with_bearer(
            Req::post(&path, "").signature(Some(&format!("t={},v1={digest}", NOW - 42))),
            &access,
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.json);
    let keys = app.count("personal_keys").await;
    let junk = "0".repeat(64);
    for reworded in [
        format!("t={},v1={}", NOW - 42, digest.to_uppercase()),
        format!("t={}, v1={junk}, v1={digest}", NOW - 42),
        format!("v0=x,t={},v1={digest},v1={junk}", NOW - 42),
    ] {
        let again = app.with_bearer(Req::post(&path, "").signature(Some(&reworded)), &access).await;
        assert_eq!((again.status, &again.json), (200, &first.json), "{reworded}");
        assert_eq!(again.headers["idempotent-replayed"], "true", "{reworded}");
        let elsewhere = format!("/provisioning/resources/{id}/remove");
        let remove = app.with_bearer(Req::post(&elsewhere, "").signature(Some(&reworded)), &access);
        remove.await.assert(401, already_used());
    }
    assert_eq!(app.count("personal_keys").await, keys, "nothing ran twice");
}

#[backend_test]
async fn reads_share_a_signature_and_each_token_has_its_own() {
    // An orchestrator may read several resources in one second (one empty-body signature), and two
    // users' calls in one second are two requests: neither is refused.
    let app = TestApp::new().await;
    let (a, id_a, _) = owner(&app, "reads-a@example.com").await;
    let (b, id_b, _) = owner(&app, "reads-b@example.com").await;
    let header = signature::header_value(&[SECRET], NOW - 43, b"");
    let get =
        |id: &str| Req::get(&format!("/provisioning/resources/{id}")).signature(Some(&header));
    assert_eq!(app.with_bearer(get(&id_a), &a).await.status, 200);
    assert_eq!(app.with_bearer(get(&id_b), &b).await.status, 200);
    assert_eq!(
        app.send(Req::get("/provisioning/health").signature(Some(&header)).build()).await.status,
        200
    );
    assert_eq!(app.with_bearer(get(&id_a), &a).await.status, 200, "a read after a read");
    // b read with this signature; a's rotate under it is refused (a read it), b's own rotate is too.
    let rotate = |id: &str| {
        Req::post(&format!("/provisioning/resources/{id}/rotate_credentials"), "")
            .signature(Some(&header))
    };
    app.with_bearer(rotate(&id_a), &a).await.assert(401, already_used());
    app.with_bearer(rotate(&id_b), &b).await.assert(401, already_used());
    // A new timestamp is a new signature: the orchestrator's retry goes through.
    let fresh = Req::post(&format!("/provisioning/resources/{id_a}/rotate_credentials"), "")
        .signed_with(&[SECRET], NOW - 44);
    assert_eq!(app.with_bearer(fresh, &a).await.status, 200);
}

/// Many requests racing with one captured signature to different state-changing endpoints: exactly
/// one runs, every other is refused.
async fn one_of_many_racers_wins(first: &TestApp, second: &TestApp) {
    let (access, id, _) = owner(first, "race-sig@example.com").await;
    let header = signature::header_value(&[SECRET], NOW - 45, b"");
    let paths = [
        format!("/provisioning/resources/{id}/rotate_credentials"),
        format!("/provisioning/resources/{id}/remove"),
        format!("/provisioning/resources/{id}/update_service"),
        "/provisioning/resources".to_string(),
        "/provisioning/deep_links".to_string(),
    ];
    let mut racers = Vec::new();
    for round in 0..4 {
        for (i, path) in paths.iter().enumerate() {
            let app = if (round + i) % 2 == 0 { first } else { second };
            let req = Req::post(path, "").signature(Some(&header));
            racers.push(app.with_bearer(req, &access));
        }
    }
    let replies = futures_util::future::join_all(racers).await;
    let (refused, ran): (Vec<_>, Vec<_>) =
        replies.iter().partition(|r| (r.status, &r.json) == (401, &already_used()));
    let targets: std::collections::HashSet<_> = ran.iter().map(|r| r.json.to_string()).collect();
    assert!(!ran.is_empty(), "one target runs");
    assert_eq!(refused.len() + ran.len(), 20);
    assert!(ran.len() <= 4, "only the copies of the winner ran or were answered: {ran:?}");
    assert_eq!(targets.len(), 1, "all answers are of one target: {targets:?}");
}

#[backend_test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_one_signature_to_many_endpoints_runs_one() {
    let app = TestApp::new().await;
    one_of_many_racers_wins(&app, &app).await;
}

/// On PostgreSQL the binding holds across instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_postgresql_a_signature_is_bound_across_instances() {
    on_backend(Backend::Postgres, || async {
        let first = TestApp::new().await;
        let second = first.another_instance().await;
        let (access, id, _) = owner(&first, "two-instances@example.com").await;
        let header = signature::header_value(&[SECRET], NOW - 46, b"");
        let read = Req::get(&format!("/provisioning/resources/{id}")).signature(Some(&header));
        assert_eq!(first.with_bearer(read, &access).await.status, 200);
        let rotate = Req::post(&format!("/provisioning/resources/{id}/rotate_credentials"), "")
            .signature(Some(&header));
        second.with_bearer(rotate, &access).await.assert(401, already_used());
        one_of_many_racers_wins(&first, &second).await;
    })
    .await;
}

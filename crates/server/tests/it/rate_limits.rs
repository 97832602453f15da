//! Rate limits: per orchestrator account and per email on account requests, per token on resource
//! and deep-link calls, per client address on dashboard logins — 429 with `Retry-After` in each
//! endpoint's own envelope, and calls pass again once the bucket refills.

use std::net::SocketAddr;

use axum::{body::Body, extract::ConnectInfo, http::Request};
use provisio_server::{
    client_addr::TrustedProxies,
    rate_limit::{Rate, RateLimits},
    store::Backend,
};
use provisio_testkit::backend_test;
use serde_json::json;

use crate::support::{NOW, Req, SECRET, TestApp, account_body, on_backend};

/// Two calls at once, then one a second, for every limit.
fn tight() -> RateLimits {
    let rate = Rate { burst: 2, per_minute: 60 };
    RateLimits {
        enabled: true,
        account_requests_per_orchestrator_account: Rate { burst: 4, per_minute: 60 },
        account_requests_per_email: rate,
        resource_calls_per_token: rate,
        dashboard_logins_per_ip: rate,
        ..RateLimits::default()
    }
}

fn typed_limited(id: &str) -> serde_json::Value {
    json!({"id": id, "type": "error", "error": {"code": "rate_limited", "message": "Too many account requests; retry later"}})
}

#[backend_test]
async fn account_requests_are_limited_per_email_and_per_orchestrator_account() {
    let app = TestApp::with_rate_limits(tight()).await;
    for i in 0..2 {
        assert_eq!(
            app.account_request(&account_body(&format!("ar_e{i}"), "Same@example.com"))
                .await
                .status,
            200
        );
    }
    let reply = app.account_request(&account_body("ar_e2", " same@example.com")).await;
    reply.assert(429, typed_limited("ar_e2"));
    assert_eq!(reply.headers["retry-after"], "1");
    // Other emails still pass until the account's own limit (4) is spent.
    assert_eq!(app.account_request(&account_body("ar_o1", "other1@example.com")).await.status, 200);
    app.account_request(&account_body("ar_o2", "other2@example.com"))
        .await
        .assert(429, typed_limited("ar_o2"));
    let mut other_account = account_body("ar_o3", "other3@example.com");
    other_account["orchestrator"]["stripe"]["account"] = json!("acct_other");
    assert_eq!(
        app.account_request(&other_account).await.status,
        200,
        "another Stripe account has its own bucket"
    );

    // A second later one more call fits.
    app.state.clock.advance(1);
    let later = app
        .send(
            Req::json("/provisioning/account_requests", &account_body("ar_e3", "same@example.com"))
                .signed_with(&[SECRET], NOW + 1)
                .build(),
        )
        .await;
    assert_eq!(later.status, 200, "{}", later.json);
}

#[backend_test]
async fn resource_and_deep_link_calls_are_limited_per_token() {
    let app = TestApp::with_rate_limits(RateLimits {
        account_requests_per_email: Rate { burst: 10, per_minute: 600 },
        ..tight()
    })
    .await;
    let access =
        app.tokens_for("limited@example.com").await["access_token"].as_str().unwrap().to_string();
    let id = app.provision(&access, &json!({})).await.json["id"].as_str().unwrap().to_string();
    assert_eq!(
        app.with_bearer(Req::get(&format!("/provisioning/resources/{id}")), &access).await.status,
        200
    );
    let reply = app.with_bearer(Req::get(&format!("/provisioning/resources/{id}")), &access).await;
    reply.assert(429, json!({"status":"error","id":id,"error":{"code":"rate_limited","message":"Too many requests for this token; retry later"}}));
    assert_eq!(reply.headers["retry-after"], "1");
    let reply = app
        .with_bearer(
            Req::json("/provisioning/deep_links", &json!({"purpose": "dashboard"})),
            &access,
        )
        .await;
    reply.assert(429, json!({"error":{"code":"rate_limited","message":"Too many requests for this token; retry later"}}));
    assert_eq!(reply.headers["retry-after"], "1");
}

#[backend_test]
async fn dashboard_logins_are_limited_per_address() {
    let app = TestApp::with_rate_limits(tight()).await;
    for _ in 0..2 {
        assert_eq!(app.browse("/login?token=guess", None).await.0, 303);
    }
    let (status, headers, html) = app.browse("/login?token=guess", None).await;
    assert_eq!((status, headers["retry-after"].to_str().unwrap()), (429, "1"));
    assert!(html.contains("Too many attempts"));
}

/// A login arriving from `peer` with an `X-Forwarded-For` header; answers the status.
async fn login_via(app: &TestApp, peer: &str, forwarded: &str) -> u16 {
    let mut request = Request::builder()
        .uri("/login?token=guess")
        .header("x-forwarded-for", forwarded)
        .body(Body::empty())
        .unwrap();
    let peer = SocketAddr::new(peer.parse().unwrap(), 40_000);
    request.extensions_mut().insert(ConnectInfo(peer));
    app.raw(request).await.0
}

#[backend_test]
async fn behind_a_trusted_proxy_logins_are_limited_per_forwarded_address() {
    let trusted_proxies = TrustedProxies::try_from(vec!["10.0.0.0/8".to_string()]).unwrap();
    let app = TestApp::with_rate_limits(RateLimits { trusted_proxies, ..tight() }).await;
    for _ in 0..2 {
        assert_eq!(login_via(&app, "10.0.0.2", "198.51.100.1").await, 303);
    }
    assert_eq!(login_via(&app, "10.0.0.2", "198.51.100.1").await, 429);
    // Another client behind the same balancers still gets in; the spent one cannot hide behind
    // an entry of its own left of the one the balancer appended.
    assert_eq!(login_via(&app, "10.0.0.3", "198.51.100.2").await, 303);
    assert_eq!(login_via(&app, "10.0.0.3", "203.0.113.66, 198.51.100.1").await, 429);
    // A peer that is no trusted proxy counts as itself, whatever it forwards.
    for client in ["192.0.2.1", "192.0.2.2"] {
        assert_eq!(login_via(&app, "203.0.113.5", client).await, 303);
    }
    assert_eq!(login_via(&app, "203.0.113.5", "192.0.2.3").await, 429);
}

/// On PostgreSQL every instance counts against the same buckets: calls spread over two instances
/// meet one limit. (On SQLite there is one instance, with its buckets in memory.)
#[tokio::test]
async fn instances_on_postgresql_share_their_buckets() {
    on_backend(Backend::Postgres, || async {
        let first = TestApp::with_rate_limits(tight()).await;
        let second = first.another_instance().await;
        let body = |id: &str| account_body(id, "shared@example.com");
        assert_eq!(first.account_request(&body("ar_s1")).await.status, 200);
        assert_eq!(second.account_request(&body("ar_s2")).await.status, 200);
        first.account_request(&body("ar_s3")).await.assert(429, typed_limited("ar_s3"));
        second.account_request(&body("ar_s4")).await.assert(429, typed_limited("ar_s4"));
        assert_eq!(first.count("rate_limit_buckets").await, 2, "one per email, one per account");

        // Once refilled, the housekeeping forgets them.
        first.state.clock.advance(3600);
        let now = first.state.clock.now();
        let deleted = first.state.store.sweep(now, now * 1000).await.unwrap();
        assert!(deleted >= 2, "the buckets and the expired replay records: {deleted}");
        assert_eq!(first.count("rate_limit_buckets").await, 0);
    })
    .await;
}

#[backend_test]
async fn limited_answers_say_where_the_caller_stands() {
    // RateLimit-Policy / RateLimit (IETF draft): one item per limit the call counted against, on
    // success and on 429, beside Retry-After.
    let app = TestApp::with_rate_limits(tight()).await;
    let policy = r#""orchestrator_account";q=4;w=4, "email";q=2;w=2"#;
    let first = app.account_request(&account_body("ar_h1", "h@example.com")).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.headers["ratelimit-policy"], policy);
    assert_eq!(first.headers["ratelimit"], r#""orchestrator_account";r=3;t=1, "email";r=1;t=1"#);
    let second = app.account_request(&account_body("ar_h2", "h@example.com")).await;
    assert_eq!(second.headers["ratelimit"], r#""orchestrator_account";r=2;t=2, "email";r=0;t=2"#);
    let refused = app.account_request(&account_body("ar_h3", "h@example.com")).await;
    refused.assert(429, typed_limited("ar_h3"));
    assert_eq!(refused.headers["retry-after"], "1");
    assert_eq!(refused.headers["ratelimit-policy"], policy);
    assert_eq!(refused.headers["ratelimit"], r#""orchestrator_account";r=1;t=3, "email";r=0;t=2"#);

    // Resource calls count against the token's limit.
    let access = app.redeem(&app.code_for("h2@example.com").await).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let created = app.provision(&access, &json!({})).await;
    assert_eq!(created.status, 200, "{}", created.json);
    assert_eq!(created.headers["ratelimit-policy"], r#""token";q=2;w=2"#);
    assert_eq!(created.headers["ratelimit"], r#""token";r=1;t=1"#);
    // Endpoints without a limit say nothing.
    let health = app.send(Req::get("/provisioning/health").build()).await;
    assert!(health.headers.get("ratelimit").is_none());
    assert!(health.headers.get("ratelimit-policy").is_none());
}

//! `/metrics` after a flow: the Prometheus names an operator dashboards on are present.

use provisio_testkit::backend_test;
use serde_json::json;

use crate::support::{NOW, Req, SECRET, TestApp};

#[backend_test]
async fn metric_names_are_present_after_a_flow() {
    let app = TestApp::new().await;
    let tokens = app.tokens_for("metrics@example.com").await;
    let access = tokens["access_token"].as_str().unwrap();
    app.provision(access, &json!({})).await;
    // The same Idempotency-Key twice: the second is a replay.
    for at in [NOW - 1, NOW - 2] {
        let create = Req::json("/provisioning/resources", &json!({})).signed_with(&[SECRET], at);
        app.with_bearer(create.header("idempotency-key", "metrics"), access).await;
    }
    app.send(Req::get("/provisioning/health").signed_with(&["wrong"], NOW).build()).await;
    let (status, headers, text) = app.browse("/metrics", None).await;
    assert_eq!(status, 200);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/plain"));
    for name in [
        r#"provisio_http_requests_total{endpoint="/provisioning/account_requests",method="POST",status="200"}"#,
        r#"provisio_http_requests_total{endpoint="/provisioning/resources",method="POST",status="200"}"#,
        r#"provisio_http_request_duration_seconds_bucket{endpoint="/oauth/token",le="0.005"}"#,
        r#"provisio_events_total{event="account.created"}"#,
        r#"provisio_events_total{event="code.redeemed"}"#,
        r#"provisio_events_total{event="resource.created"}"#,
        r#"provisio_signature_failures_total{reason="mismatch"}"#,
        r#"provisio_db_jobs_in_flight{kind="write"}"#,
        r#"provisio_idempotency_total{outcome="replayed"}"#,
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    assert!(!text.contains(access), "no token in labels");
    // Every metric says what it is, and the process tells its build, start and size.
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split_whitespace().nth(2).unwrap();
        assert!(text.contains(&format!("# HELP {name} ")), "{name} has no HELP line:\n{text}");
    }
    let build = format!(r#"provisio_build_info{{version="{}"}} 1"#, env!("CARGO_PKG_VERSION"));
    for name in [
        build.as_str(),
        "provisio_start_time_seconds ",
        "provisio_process_resident_memory_bytes ",
        "provisio_process_open_fds ",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
}

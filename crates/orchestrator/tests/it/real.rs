//! The suite against the real provider: everything passes, in every mode.

use std::collections::HashSet;

use provisio_orchestrator::conformance::{self, Config, Group, Outcome, Preflight, Scope};

use crate::{
    proxy::{Answer, Breakage, Forward, Proxy},
    support::{RealServer, SECRET, run, run_with},
};

#[tokio::test]
async fn every_check_passes_against_provisio() {
    let server = RealServer::start().await;
    let report = run(&server.base_url).await;
    assert_eq!(report.failed_ids(), Vec::<&str>::new(), "\n{}", report.table());
    assert_eq!(report.skipped, 0);
    assert!(report.checks.len() >= 50, "only {} checks", report.checks.len());
    assert_eq!(report.summary(), format!("{} passed, 0 failed", report.checks.len()));
    let ids: HashSet<_> = report.checks.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids.len(), report.checks.len(), "check ids are unique");
    for group in Group::ALL {
        assert!(
            report.checks.iter().any(|c| c.group == group.as_str()),
            "group {} has checks",
            group.as_str()
        );
    }
}

#[tokio::test]
async fn strict_protocol_only_skips_exactly_the_provisio_checks() {
    let server = RealServer::start().await;
    let strict = Config { strict_protocol_only: true, ..Config::new(&server.base_url, SECRET) };
    let report = run_with(strict).await;
    assert_eq!(report.failed, 0, "\n{}", report.table());
    let skipped: Vec<_> = report.ids(Outcome::Skip);
    let provisio: Vec<_> = report
        .checks
        .iter()
        .filter(|c| c.scope == Scope::Provisio)
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(skipped, provisio);
    assert!(skipped.contains(&"oauth.refresh_reuse_revokes_family"));
    assert!(skipped.contains(&"accounts.request_id_retry"));
    assert!(skipped.contains(&"envelopes.unknown_path_flat"));
}

#[tokio::test]
async fn only_runs_the_named_groups() {
    let server = RealServer::start().await;
    let only =
        Config { only: vec![Group::Health, Group::OAuth], ..Config::new(&server.base_url, SECRET) };
    let report = run_with(only).await;
    assert_eq!(report.failed, 0, "\n{}", report.table());
    assert!(report.checks.iter().all(|c| c.group == "health" || c.group == "oauth"));
    assert!(report.checks.iter().any(|c| c.group == "oauth"));
}

#[tokio::test]
async fn a_wrong_secret_fails_the_checks_that_need_a_signature() {
    let server = RealServer::start().await;
    let report = run_with(Config::new(&server.base_url, "whsec_not_the_one")).await;
    assert!(report.failed > 50, "{}", report.summary());
    // A client the provider does not trust sees refusals only, and the suite does not pass them.
    assert!(report.failed_ids().contains(&"health.ok"));
}

#[tokio::test]
async fn the_preflight_tells_a_refused_secret_from_an_accepted_one() {
    let server = RealServer::start().await;
    let ask = |secret: &str| Config::new(&server.base_url, secret);
    assert_eq!(conformance::preflight(&ask(SECRET)).await.unwrap(), Preflight::Accepted);
    match conformance::preflight(&ask("whsec_not_the_one")).await.unwrap() {
        Preflight::SecretRefused(got) => {
            assert!(got.starts_with("401 ") && got.contains("invalid_signature"), "{got}")
        }
        other => panic!("{other:?}"),
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nobody = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let unreachable = conformance::preflight(&Config::new(&nobody, SECRET)).await.unwrap();
    assert!(matches!(unreachable, Preflight::Unreachable(_)), "{unreachable:?}");
}

/// A provider that mounts the protocol under `/api/agentic`, token endpoint included.
struct Prefixed;

impl Breakage for Prefixed {
    fn request(&self, request: &mut Forward) -> Option<Answer> {
        if let Some(rest) = request.path.strip_prefix("/api/agentic") {
            request.path = rest.to_string();
            return None;
        }
        let unprefixed = ["/provisioning", "/oauth"].iter().any(|p| request.path.starts_with(p));
        unprefixed.then(|| Answer { status: 404, headers: Default::default(), body: Vec::new() })
    }
}

#[tokio::test]
async fn a_provider_under_a_path_prefix_with_its_own_token_url() {
    let server = RealServer::start().await;
    let proxy = Proxy::start(&server.base_url, Prefixed).await;
    let config = Config {
        path_prefix: "/api/agentic".into(),
        token_url: Some(format!("{}/api/agentic/oauth/token", proxy.base_url)),
        ..Config::new(&proxy.base_url, SECRET)
    };
    let report = run_with(config).await;
    assert_eq!(report.failed_ids(), Vec::<&str>::new(), "\n{}", report.table());
}

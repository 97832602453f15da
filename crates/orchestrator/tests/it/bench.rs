//! The load generator against the real provider: every scenario completes its flows without an
//! error, and failures are counted by call, status and code.

use provisio_orchestrator::{
    Client, ClientConfig,
    bench::{self, BenchConfig, BenchReport, Scenario, Stop},
};

use crate::support::{RealServer, SECRET};

async fn run(base_url: &str, secret: &str, scenario: Scenario, flows: u64) -> BenchReport {
    let mut config = ClientConfig::new(base_url, vec![secret.to_string()]);
    config.parse_json = false;
    let client = Client::new(config).unwrap();
    bench::run(
        vec![client],
        BenchConfig {
            scenario,
            concurrency: 4,
            stop: Stop::Flows(flows),
            email_domain: "bench.example.com".into(),
            existing_users: 3,
            users: Vec::new(),
            provision: true,
            progress: false,
        },
    )
    .await
    .unwrap()
}

/// `(call, count, errors)` of each call in the report.
type Calls<'a> = Vec<(&'a str, u64, u64)>;

fn calls(report: &BenchReport) -> Calls<'_> {
    report.calls.iter().map(|c| (c.call.as_str(), c.count, c.errors)).collect()
}

#[tokio::test]
async fn every_scenario_completes_its_flows_against_provisio() {
    let server = RealServer::start().await;
    let cases: [(Scenario, Calls); 5] = [
        (
            Scenario::NewUserFlow,
            vec![("account_request", 12, 0), ("provision", 12, 0), ("token", 12, 0)],
        ),
        (Scenario::ExistingUserFlow, vec![("account_request", 12, 0), ("token", 12, 0)]),
        (Scenario::Services, vec![("services", 12, 0)]),
        (Scenario::ResourceRead, vec![("get", 12, 0)]),
        (Scenario::Rotate, vec![("rotate", 12, 0)]),
    ];
    for (scenario, expected) in cases {
        let report = run(&server.base_url, SECRET, scenario, 12).await;
        assert_eq!((report.flows_ok, report.flows_failed), (12, 0), "{scenario:?}: {report:?}");
        assert_eq!(calls(&report), expected, "{scenario:?}");
        assert!(report.errors_by_code.is_empty(), "{scenario:?}: {:?}", report.errors_by_code);
        assert!(report.calls.iter().all(|c| c.p50_ms <= c.p99_ms && c.p99_ms <= c.max_ms));
    }
}

#[tokio::test]
async fn failures_are_counted_by_call_status_and_code() {
    let server = RealServer::start().await;
    let report = run(&server.base_url, "whsec_not_the_secret", Scenario::Services, 5).await;
    assert_eq!((report.flows_ok, report.flows_failed), (0, 5));
    assert_eq!(calls(&report), [("services", 5, 5)]);
    assert_eq!(
        report.errors_by_code.into_iter().collect::<Vec<_>>(),
        [("services 401 invalid_signature".to_string(), 5)]
    );
}

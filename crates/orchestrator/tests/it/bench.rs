//! The load generator against the real provider: every scenario completes its flows without an
//! error, and failures are counted by call, status and code.

use std::collections::BTreeMap;

use provisio_orchestrator::{
    Client, ClientConfig,
    bench::{self, BenchConfig, BenchReport, CallReport, Scenario, Stop},
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
        printed_as_people_read_it(&report, scenario.as_str(), 12);
    }
}

/// A rate as the report prints it: a whole number, or one decimal below 10.
fn is_rate(text: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match text.split_once('.') {
        None => digits(text),
        Some((whole, tenths)) => digits(whole) && tenths.len() == 1 && digits(tenths),
    }
}

/// The printed report names the scenario as `--scenario` does and prints rates as whole numbers
/// (or one decimal), never four.
fn printed_as_people_read_it(report: &BenchReport, name: &str, flows: u64) {
    let printed = report.table();
    let first = printed.lines().next().unwrap();
    let head = format!("{name} at concurrency 4: {flows} flows ok, 0 failed in ");
    assert!(first.starts_with(&head), "{printed}");
    let rate = first.strip_suffix(" flows/s").unwrap().rsplit(' ').next().unwrap();
    assert!(is_rate(rate), "{first}");
    assert_eq!(report.scenario, name);
    // The table: `| call | count | errors | rate/s | p50 ms | …`, the rate the fourth cell.
    for call in &report.calls {
        let row = printed.lines().find(|l| l.starts_with(&format!("| {} ", call.call))).unwrap();
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert!(is_rate(cells[4]), "{row}");
        for latency in &cells[5..9] {
            assert!(latency.parse::<f64>().is_ok() && !latency.contains("e"), "{row}");
            assert!(latency.split_once('.').is_none_or(|(_, d)| d.len() <= 2), "{row}");
        }
    }
}

#[test]
fn the_report_prints_names_rates_and_durations_for_people() {
    let call = |call: &str, rate_per_sec: f64, p50_ms: f64| CallReport {
        call: call.into(),
        count: 2469,
        errors: 0,
        rate_per_sec,
        p50_ms,
        p90_ms: 12.3456,
        p99_ms: 123.456,
        max_ms: 1234.56,
    };
    let report = BenchReport {
        scenario: Scenario::NewUserFlow.as_str().into(),
        concurrency: 16,
        elapsed_secs: 2.000_4,
        flows_ok: 2469,
        flows_failed: 0,
        flows_per_sec: 1234.5678,
        calls: vec![call("account_request", 1234.5678, 0.4567), call("slow", 3.06, 0.5)],
        errors_by_code: BTreeMap::new(),
    };
    let printed = report.table();
    assert!(
        printed.starts_with(
            "new-user-flow at concurrency 16: 2469 flows ok, 0 failed in 2.0 s = 1235 flows/s\n"
        ),
        "{printed}"
    );
    let row = |name: &str| -> Vec<String> {
        let line = printed.lines().find(|l| l.starts_with(&format!("| {name} "))).unwrap();
        line.split('|').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect()
    };
    assert_eq!(
        row("account_request"),
        ["account_request", "2469", "0", "1235", "0.46", "12.3", "123", "1235"]
    );
    assert_eq!(row("slow")[3], "3.1");
    assert!(!printed.contains("1234.5678") && !printed.contains("NewUserFlow"), "{printed}");
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

//! `provisio bench`: drives whole protocol flows against a provider from many concurrent workers and
//! reports throughput, latency percentiles per call, and errors by code.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde::Serialize;
use serde_json::{Value, json};

use crate::{Client, ClientError, Reply};

/// What one flow does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// An account request for a fresh email, then the code exchange.
    NewUserFlow,
    /// An account request for one of a set of prepared users, then the code exchange.
    ExistingUserFlow,
    /// One signed `GET /provisioning/services`.
    Services,
    /// `GET /provisioning/resources/{id}` of a resource prepared per worker.
    ResourceRead,
    /// `rotate_credentials` of a resource prepared per worker.
    Rotate,
}

impl Scenario {
    pub const ALL: [Self; 5] = [
        Self::NewUserFlow,
        Self::ExistingUserFlow,
        Self::Services,
        Self::ResourceRead,
        Self::Rotate,
    ];

    /// The name `provisio bench --scenario` takes, and the report shows.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NewUserFlow => "new-user-flow",
            Self::ExistingUserFlow => "existing-user-flow",
            Self::Services => "services",
            Self::ResourceRead => "resource-read",
            Self::Rotate => "rotate",
        }
    }
}

/// When to stop.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    After(Duration),
    Flows(u64),
}

#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub scenario: Scenario,
    pub concurrency: usize,
    pub stop: Stop,
    pub email_domain: String,
    /// How many users `existing-user-flow` prepares through the protocol when `users` is empty.
    pub existing_users: usize,
    /// Users to link to (email, `team_id`), e.g. from `provisio admin seed`.
    pub users: Vec<(String, Option<i64>)>,
    /// New-user flows also provision a resource (account request → token → create).
    pub provision: bool,
    pub progress: bool,
}

/// Latency figures of one call, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct CallReport {
    pub call: String,
    pub count: u64,
    pub errors: u64,
    pub rate_per_sec: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// The scenario's name, as `--scenario` takes it (`new-user-flow`).
    pub scenario: String,
    pub concurrency: usize,
    pub elapsed_secs: f64,
    pub flows_ok: u64,
    pub flows_failed: u64,
    pub flows_per_sec: f64,
    pub calls: Vec<CallReport>,
    /// `<call> <status> <code>` → count.
    pub errors_by_code: BTreeMap<String, u64>,
}

/// What the workers record.
#[derive(Default)]
struct Samples {
    latencies: BTreeMap<&'static str, Vec<u32>>,
    errors: BTreeMap<String, u64>,
    call_errors: BTreeMap<&'static str, u64>,
}

struct Recorder {
    samples: Mutex<Samples>,
}

impl Recorder {
    /// Records one call; `true` when it succeeded.
    fn record(
        &self,
        call: &'static str,
        started: Instant,
        reply: &Result<Reply, ClientError>,
    ) -> bool {
        let micros = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.latencies.entry(call).or_default().push(micros);
        let failure = match reply {
            Ok(r) if r.is_success() => return true,
            Ok(r) => format!("{call} {} {}", r.status, error_code(r)),
            Err(_) => format!("{call} transport error"),
        };
        *samples.errors.entry(failure).or_default() += 1;
        *samples.call_errors.entry(call).or_default() += 1;
        false
    }
}

/// The error code in whichever envelope the provider answered.
fn error_code(reply: &Reply) -> String {
    let body = reply.parsed().unwrap_or(Value::Null);
    body["error"]["code"].as_str().or_else(|| body["error"].as_str()).unwrap_or("-").to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("preparing existing users failed: {0}")]
    Prepare(String),
}

/// Runs the benchmark and returns its report. With several clients (instances behind no load
/// balancer), worker `w` sends all its flows through client `w mod n`, so the load is spread
/// evenly and a flow's calls stay on one instance, as a sticky load balancer would keep them.
pub async fn run(clients: Vec<Client>, config: BenchConfig) -> Result<BenchReport, BenchError> {
    let Some(client) = clients.first().cloned() else {
        return Err(BenchError::Prepare("no provider to benchmark".into()));
    };
    let run_id = crate::client::unix_now_nanos();
    let existing = match config.scenario {
        Scenario::ExistingUserFlow if config.users.is_empty() => {
            Arc::new(prepare_users(&client, &config, run_id).await?)
        }
        _ => Arc::new(config.users.clone()),
    };
    let recorder = Arc::new(Recorder { samples: Mutex::new(Samples::default()) });
    let started_flows = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let progress = Progress::start(&config, started, [ok.clone(), failed.clone()]);
    let deadline = match config.stop {
        Stop::After(d) => Some(started + d),
        Stop::Flows(_) => None,
    };
    let limit = match config.stop {
        Stop::Flows(n) => n,
        Stop::After(_) => u64::MAX,
    };
    let mut workers = Vec::new();
    for worker in 0..config.concurrency.max(1) {
        let client = clients[worker % clients.len()].with_own_connection();
        let (recorder, existing) = (recorder.clone(), existing.clone());
        let (started_flows, ok, failed) = (started_flows.clone(), ok.clone(), failed.clone());
        let config = config.clone();
        workers.push(tokio::spawn(async move {
            let resource = match config.scenario {
                Scenario::ResourceRead | Scenario::Rotate => {
                    match prepare_resource(&client, &config, run_id).await {
                        Some(r) => Some(r),
                        None => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                }
                _ => None,
            };
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                let n = started_flows.fetch_add(1, Ordering::Relaxed);
                if n >= limit {
                    break;
                }
                let success =
                    one_flow(&client, &config, &recorder, &existing, resource.as_ref(), run_id, n)
                        .await;
                if success { &ok } else { &failed }.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for worker in workers {
        let _ = worker.await;
    }
    progress.finish();
    let elapsed = started.elapsed().as_secs_f64();
    let samples = std::mem::take(&mut *recorder.samples.lock().unwrap_or_else(|p| p.into_inner()));
    let (flows_ok, flows_failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    Ok(BenchReport {
        scenario: config.scenario.as_str().to_string(),
        concurrency: config.concurrency,
        elapsed_secs: elapsed,
        flows_ok,
        flows_failed,
        flows_per_sec: (flows_ok + flows_failed) as f64 / elapsed,
        calls: samples
            .latencies
            .into_iter()
            .map(|(call, mut latencies)| {
                latencies.sort_unstable();
                let pct = |p: f64| {
                    let idx = ((latencies.len() as f64 * p).ceil() as usize)
                        .clamp(1, latencies.len())
                        - 1;
                    f64::from(latencies[idx]) / 1000.0
                };
                CallReport {
                    call: call.to_string(),
                    count: latencies.len() as u64,
                    errors: samples.call_errors.get(call).copied().unwrap_or(0),
                    rate_per_sec: latencies.len() as f64 / elapsed,
                    p50_ms: pct(0.50),
                    p90_ms: pct(0.90),
                    p99_ms: pct(0.99),
                    max_ms: pct(1.0),
                }
            })
            .collect(),
        errors_by_code: samples.errors,
    })
}

/// The progress line on a terminal: a bar that fills with the flows done (`--flows`) or the time
/// gone (`--duration`), and what was done, how long it has run (and has left) and the rate of the
/// last two seconds, redrawn four times a second.
struct Progress {
    bar: indicatif::ProgressBar,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

/// How far back the live rate looks.
const RATE_WINDOW: Duration = Duration::from_secs(2);

impl Progress {
    /// `done`: the counters whose sum is the flows finished.
    fn start(config: &BenchConfig, started: Instant, done: [Arc<AtomicU64>; 2]) -> Self {
        let stop = config.stop;
        let bar = if config.progress {
            indicatif::ProgressBar::new(match stop {
                Stop::Flows(n) => n,
                Stop::After(d) => u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            })
        } else {
            indicatif::ProgressBar::hidden()
        };
        if bar.is_hidden() {
            return Self { bar, ticker: None };
        }
        if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {bar:30} {msg}") {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(200));
        let shown = bar.clone();
        let ticker = tokio::spawn(async move {
            let mut window = VecDeque::new();
            let mut interval = tokio::time::interval(Duration::from_millis(250));
            loop {
                interval.tick().await;
                let now = Instant::now();
                let flows: u64 = done.iter().map(|c| c.load(Ordering::Relaxed)).sum();
                window.push_back((now, flows));
                while window.front().is_some_and(|(t, _)| now.duration_since(*t) > RATE_WINDOW) {
                    window.pop_front();
                }
                let rate = match (window.front(), window.back()) {
                    (Some((t0, n0)), Some((t1, n1))) if t1 > t0 => {
                        (n1 - n0) as f64 / t1.duration_since(*t0).as_secs_f64()
                    }
                    _ => 0.0,
                };
                let elapsed = now.duration_since(started);
                shown.set_position(match stop {
                    Stop::Flows(_) => flows,
                    Stop::After(total) => {
                        u64::try_from(elapsed.min(total).as_millis()).unwrap_or(u64::MAX)
                    }
                });
                shown.set_message(progress_message(stop, elapsed, flows, rate));
            }
        });
        Self { bar, ticker: Some(ticker) }
    }

    fn finish(self) {
        if let Some(ticker) = self.ticker {
            ticker.abort();
        }
        self.bar.finish_and_clear();
    }
}

/// The words after the bar: `4.2 s of 10.0 s, 5.8 s left: 1234 flows, 296 flows/s` in a timed run,
/// `500/2000 flows in 4.2 s, 119 flows/s` in a counted one.
fn progress_message(stop: Stop, elapsed: Duration, flows: u64, rate: f64) -> String {
    match stop {
        Stop::After(total) => format!(
            "{} of {}, {} left: {flows} flows, {} flows/s",
            format_duration(elapsed.min(total)),
            format_duration(total),
            format_duration(total.saturating_sub(elapsed)),
            format_rate(rate)
        ),
        Stop::Flows(n) => format!(
            "{flows}/{n} flows in {}, {} flows/s",
            format_duration(elapsed),
            format_rate(rate)
        ),
    }
}

/// A rate for people: a whole number from 10 up, one decimal below (`1235`, `9.5`).
pub fn format_rate(rate: f64) -> String {
    if !rate.is_finite() {
        "-".to_string()
    } else if rate >= 10.0 {
        format!("{rate:.0}")
    } else {
        format!("{rate:.1}")
    }
}

/// A duration for people: `850 ms`, `4.2 s`, `2 min 05 s`.
pub fn format_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else if d < Duration::from_secs(60) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} min {:02} s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

/// A latency in milliseconds, to about three significant digits: `0.42`, `12.3`, `1235`.
pub fn format_ms(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.2}")
    } else if ms < 100.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

/// One flow; `true` when every call in it succeeded.
async fn one_flow(
    client: &Client,
    config: &BenchConfig,
    recorder: &Recorder,
    existing: &[(String, Option<i64>)],
    resource: Option<&(String, String)>,
    run_id: u128,
    n: u64,
) -> bool {
    match config.scenario {
        Scenario::ResourceRead | Scenario::Rotate => {
            let Some((access, id)) = resource else { return false };
            let t = Instant::now();
            if config.scenario == Scenario::ResourceRead {
                let reply = client.get_resource(id, access).await;
                recorder.record("get", t, &reply)
            } else {
                // A unique (ignored) field: two byte-identical signed POSTs are one request.
                let reply = client
                    .resource_action(id, "rotate_credentials", &json!({"bench_call": n}), access)
                    .await;
                recorder.record("rotate", t, &reply)
            }
        }
        Scenario::Services => {
            let t = Instant::now();
            let reply = client.services().await;
            recorder.record("services", t, &reply)
        }
        Scenario::NewUserFlow => {
            let email = format!("bench-{run_id}-{n}@{}", config.email_domain);
            let Some(access) =
                signup(client, recorder, &account_body(&format!("ar_bench_{run_id}_{n}"), &email))
                    .await
            else {
                return false;
            };
            if !config.provision {
                return true;
            }
            let t = Instant::now();
            let reply = client.provision(&json!({}), &access).await;
            recorder.record("provision", t, &reply)
        }
        Scenario::ExistingUserFlow => {
            let Some((email, team_id)) = existing.get((n as usize) % existing.len().max(1)) else {
                return false;
            };
            let mut body = account_body(&format!("ar_bench_{run_id}_{n}"), email);
            if let Some(team_id) = team_id {
                body["configuration"] = json!({"team_id": team_id});
            }
            signup(client, recorder, &body).await.is_some()
        }
    }
}

/// Account request, then code exchange; the access token when both succeeded.
async fn signup(client: &Client, recorder: &Recorder, body: &Value) -> Option<String> {
    let t = Instant::now();
    let reply = client.account_request(body).await;
    if !recorder.record("account_request", t, &reply) {
        return None;
    }
    let code = reply.ok()?.parsed()?["oauth"]["code"].as_str().map(String::from)?;
    let t = Instant::now();
    let reply = client.redeem_code(&code, None).await;
    if !recorder.record("token", t, &reply) {
        return None;
    }
    reply.ok()?.parsed()?["access_token"].as_str().map(String::from)
}

/// A user with a provisioned resource, for the per-resource scenarios: `(access token, id)`.
async fn prepare_resource(
    client: &Client,
    config: &BenchConfig,
    run_id: u128,
) -> Option<(String, String)> {
    let worker = crate::client::unix_now_nanos();
    let email = format!("bench-res-{run_id}-{worker}@{}", config.email_domain);
    let quiet = Recorder { samples: Mutex::new(Samples::default()) };
    let access =
        signup(client, &quiet, &account_body(&format!("ar_res_{run_id}_{worker}"), &email)).await?;
    let reply = client.provision(&json!({}), &access).await.ok()?;
    let id = reply.parsed()?["id"].as_str()?.to_string();
    Some((access, id))
}

fn account_body(id: &str, email: &str) -> Value {
    crate::client::account_request_body(id, email, "acct_provisio_bench")
}

/// Creates the users an existing-user run links to, through the protocol itself.
async fn prepare_users(
    client: &Client,
    config: &BenchConfig,
    run_id: u128,
) -> Result<Vec<(String, Option<i64>)>, BenchError> {
    let mut emails = Vec::new();
    for i in 0..config.existing_users.max(1) {
        let email = format!("bench-existing-{run_id}-{i}@{}", config.email_domain);
        let reply = client
            .account_request(&account_body(&format!("ar_prep_{run_id}_{i}"), &email))
            .await
            .map_err(|e| BenchError::Prepare(e.to_string()))?;
        if !reply.is_success() {
            return Err(BenchError::Prepare(format!("HTTP {}: {}", reply.status, reply.pretty())));
        }
        emails.push((email, None));
    }
    Ok(emails)
}

impl BenchReport {
    /// A table for people.
    pub fn table(&self) -> String {
        let mut table = comfy_table::Table::new();
        table.set_header([
            "call", "count", "errors", "rate/s", "p50 ms", "p90 ms", "p99 ms", "max ms",
        ]);
        for c in &self.calls {
            table.add_row([
                c.call.clone(),
                c.count.to_string(),
                c.errors.to_string(),
                format_rate(c.rate_per_sec),
                format_ms(c.p50_ms),
                format_ms(c.p90_ms),
                format_ms(c.p99_ms),
                format_ms(c.max_ms),
            ]);
        }
        let mut out = format!(
            "{} at concurrency {}: {} flows ok, {} failed in {} = {} flows/s\n{table}\n",
            self.scenario,
            self.concurrency,
            self.flows_ok,
            self.flows_failed,
            format_duration(Duration::from_secs_f64(self.elapsed_secs.max(0.0))),
            format_rate(self.flows_per_sec)
        );
        for (error, count) in &self.errors_by_code {
            out.push_str(&format!("  error {error}: {count}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_durations_and_latencies_read_well() {
        assert_eq!(format_rate(1234.5678), "1235");
        assert_eq!(format_rate(10.0), "10");
        assert_eq!(format_rate(9.5432), "9.5");
        assert_eq!(format_rate(0.0), "0.0");
        assert_eq!(format_rate(f64::NAN), "-");
        assert_eq!(format_duration(Duration::from_millis(850)), "850 ms");
        assert_eq!(format_duration(Duration::from_millis(4_249)), "4.2 s");
        assert_eq!(format_duration(Duration::from_secs(125)), "2 min 05 s");
        assert_eq!(format_ms(0.4249), "0.42");
        assert_eq!(format_ms(12.3456), "12.3");
        assert_eq!(format_ms(1234.6), "1235");
    }

    #[test]
    fn the_progress_line_says_time_left_and_the_live_rate() {
        let timed = Stop::After(Duration::from_secs(10));
        assert_eq!(
            progress_message(timed, Duration::from_millis(4_200), 1234, 296.4567),
            "4.2 s of 10.0 s, 5.8 s left: 1234 flows, 296 flows/s"
        );
        // Past the deadline (the last flows finishing): no negative time.
        assert_eq!(
            progress_message(timed, Duration::from_millis(10_300), 3000, 0.0),
            "10.0 s of 10.0 s, 0 ms left: 3000 flows, 0.0 flows/s"
        );
        assert_eq!(
            progress_message(Stop::Flows(2000), Duration::from_millis(4_200), 500, 119.04),
            "500/2000 flows in 4.2 s, 119 flows/s"
        );
    }

    #[test]
    fn scenario_names_are_the_cli_names() {
        let names: Vec<_> = Scenario::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            ["new-user-flow", "existing-user-flow", "services", "resource-read", "rotate"]
        );
    }
}

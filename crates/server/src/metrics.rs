//! Prometheus metrics, served at `/metrics` (text format) from the main listener: requests by
//! endpoint and status, latency histograms, domain events (accounts created vs linked, codes issued,
//! redeemed and expired, refresh reuse), signature failures by reason, rate-limit hits, answers
//! given by the idempotency rules, and the database's in-flight work. `docs/deployment.md` lists
//! them for operators.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Latency buckets in seconds: fine below 25 ms where the targets are.
const LATENCY_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Finer buckets for one call to the SaaS, whose cost on loopback is well under a millisecond.
const CONNECTOR_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 10.0,
];

/// Installs the process-wide recorder once; later calls (tests build many apps) reuse it.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("provisio_connector_call_duration_seconds".into()),
                    CONNECTOR_BUCKETS,
                )
                .ok()?
                .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), LATENCY_BUCKETS)
                .ok()?
                .install_recorder()
                .map_err(|e| tracing::warn!(error = %e, "metrics recorder not installed"))
                .ok()
                .inspect(|_| describe())
        })
        .as_ref()
}

/// The text exposition, or a note when no recorder could be installed. The process gauges are
/// read now, so they are as fresh as the scrape.
pub fn render() -> String {
    process_gauges();
    handle().map_or_else(|| "# metrics recorder unavailable\n".into(), PrometheusHandle::render)
}

/// Every metric's `# HELP` line (`docs/deployment.md` says more), and the build and start gauges.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "provisio_http_requests_total",
        "HTTP requests answered, by route template, method and status"
    );
    describe_histogram!(
        "provisio_http_request_duration_seconds",
        "Time to answer an HTTP request, by route template"
    );
    describe_gauge!("provisio_http_connections_open", "HTTP connections open now");
    describe_counter!(
        "provisio_http_connections_refused_total",
        "Connections answered 503 and closed because [limits] max_connections were open"
    );
    describe_counter!("provisio_events_total", "What the domain did, by audit event name");
    describe_counter!(
        "provisio_signature_failures_total",
        "Refused Stripe-Signature headers, by reason"
    );
    describe_counter!("provisio_rate_limited_total", "Calls refused by a rate limit, by limit");
    describe_counter!(
        "provisio_codes_expired_total",
        "Authorization codes presented after they expired"
    );
    describe_counter!(
        "provisio_idempotency_total",
        "Answers given by the idempotency rules instead of running, by outcome"
    );
    describe_gauge!("provisio_db_jobs_in_flight", "Database work queued or running, by kind");
    describe_counter!(
        "provisio_db_conflicts_total",
        "PostgreSQL write transactions run again after a conflict"
    );
    describe_counter!(
        "provisio_connector_calls_total",
        "Calls to the SaaS in connector mode, by operation and outcome"
    );
    describe_histogram!(
        "provisio_connector_call_duration_seconds",
        "One call to the SaaS, retries included, by operation"
    );
    describe_gauge!("provisio_outbox_events", "Events in the outbox, by state");
    describe_counter!("provisio_outbox_deliveries_total", "Event delivery attempts, by outcome");
    describe_counter!(
        "provisio_outbox_events_written_total",
        "Events written to the outbox, by type"
    );
    describe_gauge!(
        "provisio_build_info",
        "Always 1; the version of the running binary is its label"
    );
    describe_gauge!("provisio_start_time_seconds", "When this process started, in Unix seconds");
    describe_gauge!("provisio_process_resident_memory_bytes", "Resident memory of this process");
    describe_gauge!("provisio_process_open_fds", "File descriptors this process holds open");
    metrics::gauge!("provisio_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    metrics::gauge!("provisio_start_time_seconds").set(started);
}

/// Resident memory and open descriptors, where the platform tells them (`/proc`).
fn process_gauges() {
    let rss_kb = std::fs::read_to_string("/proc/self/status").ok().and_then(|status| {
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse::<f64>().ok()
    });
    if let Some(kb) = rss_kb {
        metrics::gauge!("provisio_process_resident_memory_bytes").set(kb * 1024.0);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        metrics::gauge!("provisio_process_open_fds").set(fds.count() as f64);
    }
}

/// One domain event (the audit log's names).
pub fn event(name: &'static str) {
    metrics::counter!("provisio_events_total", "event" => name).increment(1);
}

/// An HTTP connection opened (+1) or closed (-1).
pub fn connections_open(delta: f64) {
    metrics::gauge!("provisio_http_connections_open").increment(delta);
}

/// A connection answered 503 and closed because `[limits] max_connections` were open.
pub fn connection_refused() {
    metrics::counter!("provisio_http_connections_refused_total").increment(1);
}

pub fn signature_failure(reason: &'static str) {
    metrics::counter!("provisio_signature_failures_total", "reason" => reason).increment(1);
}

pub fn rate_limited(scope: &'static str) {
    metrics::counter!("provisio_rate_limited_total", "scope" => scope).increment(1);
}

pub fn code_expired() {
    metrics::counter!("provisio_codes_expired_total").increment(1);
}

/// A request answered by the idempotency rules instead of running (`replayed`: a recorded answer;
/// `conflict`: another body under the key; `busy`: its twin still ran after the wait), or one that
/// waited for a twin in flight (`waited`).
pub fn idempotency(outcome: &'static str) {
    metrics::counter!("provisio_idempotency_total", "outcome" => outcome).increment(1);
}

/// A finished HTTP request.
pub fn request(endpoint: String, method: String, status: u16, seconds: f64) {
    metrics::counter!("provisio_http_requests_total", "endpoint" => endpoint.clone(), "method" => method, "status" => status.to_string())
        .increment(1);
    metrics::histogram!("provisio_http_request_duration_seconds", "endpoint" => endpoint)
        .record(seconds);
}

/// Database work queued or running, by kind (`write`, `read`).
pub fn db_in_flight(kind: &'static str, delta: f64) {
    metrics::gauge!("provisio_db_jobs_in_flight", "kind" => kind).increment(delta);
}

/// A PostgreSQL write transaction attempted again after a serialization conflict.
pub fn db_conflict() {
    metrics::counter!("provisio_db_conflicts_total").increment(1);
}

/// One call to the SaaS behind provisio (all its attempts), by operation and outcome (`ok`,
/// `refused`, `unavailable`).
pub fn connector_call(operation: &'static str, outcome: &'static str, took: std::time::Duration) {
    metrics::counter!("provisio_connector_calls_total", "operation" => operation, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("provisio_connector_call_duration_seconds", "operation" => operation)
        .record(took.as_secs_f64());
}

/// An event written to the outbox, by type.
pub fn outbox_written(kind: &'static str) {
    metrics::counter!("provisio_outbox_events_written_total", "type" => kind).increment(1);
}

/// One delivery attempt's outcome (`delivered`, `failed_attempt`).
pub fn outbox_delivery(outcome: &'static str) {
    metrics::counter!("provisio_outbox_deliveries_total", "outcome" => outcome).increment(1);
}

/// The outbox's events by state (`pending`, `delivered`, `failed`), as the database holds them.
pub fn outbox_counts(counts: &[(String, i64)]) {
    for state in ["pending", "delivered", "failed"] {
        let n = counts.iter().find(|(s, _)| s == state).map_or(0, |(_, n)| *n);
        metrics::gauge!("provisio_outbox_events", "state" => state).set(n as f64);
    }
}

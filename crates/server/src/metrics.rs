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
        })
        .as_ref()
}

/// The text exposition, or a note when no recorder could be installed.
pub fn render() -> String {
    handle().map_or_else(|| "# metrics recorder unavailable\n".into(), PrometheusHandle::render)
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

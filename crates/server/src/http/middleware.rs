//! The layers every request passes through, outermost first: request id, header redaction, tracing,
//! panic catching, timeout, body-size limit. Every failure they produce is a flat JSON error.

use std::time::Duration;

use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request},
    http::{HeaderName, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use provisio_protocol::{FlatError, envelope::FlatCode};
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    sensitive_headers::SetSensitiveRequestHeadersLayer,
    trace::{DefaultOnResponse, TraceLayer},
};
use tracing::Level;

use super::reply::ApiError;
use crate::config::Limits;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn apply(router: Router, limits: &Limits, emit_events: bool) -> Router {
    let timeout = limits.request_timeout();
    let max_body = limits.max_body_bytes;
    let sensitive = [
        header::AUTHORIZATION,
        header::COOKIE,
        header::SET_COOKIE,
        HeaderName::from_static("stripe-signature"),
    ];
    router.layer(
        ServiceBuilder::new()
            .layer(axum::middleware::from_fn(drop_unfit_request_id))
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(SetSensitiveRequestHeadersLayer::new(sensitive))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(|req: &Request| {
                        let id = req
                            .extensions()
                            .get::<RequestId>()
                            .and_then(|id| id.header_value().to_str().ok())
                            .unwrap_or("-");
                        tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                    })
                    .on_request(())
                    .on_response(DefaultOnResponse::new().level(Level::DEBUG)),
            )
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(axum::middleware::from_fn(move |req, next| with_request(emit_events, req, next)))
            .layer(axum::middleware::from_fn(measure))
            .layer(CatchPanicLayer::custom(|_| ApiError::server_error().into_response()))
            .layer(axum::middleware::from_fn(move |req, next| with_timeout(timeout, req, next)))
            .layer(axum::middleware::from_fn(move |req, next| refuse_oversized(max_body, req, next)))
            .layer(DefaultBodyLimit::max(limits.max_body_bytes)),
    )
}

/// The longest client-given `X-Request-Id` kept.
const MAX_REQUEST_ID: usize = 128;

/// A client's `X-Request-Id` is kept only when it is 1–128 visible ASCII characters; otherwise it
/// is dropped and a fresh one generated, so what reaches logs and the audit log stays bounded and
/// printable.
async fn drop_unfit_request_id(mut req: Request, next: Next) -> Response {
    let fit = |v: &axum::http::HeaderValue| {
        let bytes = v.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= MAX_REQUEST_ID
            && bytes.iter().all(|b| b.is_ascii_graphic())
    };
    let headers = req.headers_mut();
    if headers.get_all(&REQUEST_ID).iter().count() > 1
        || headers.get(&REQUEST_ID).is_some_and(|v| !fit(v))
    {
        headers.remove(&REQUEST_ID);
    }
    next.run(req).await
}

/// Counts the request by route template (never the raw path: ids and tokens stay out of labels)
/// and writes its access-log line: one at `info` per request (method, route, status, duration,
/// the orchestrator that signed it; the request id is the span's), at `debug` for the probes.
async fn measure(req: Request, next: Next) -> Response {
    let endpoint = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().to_string();
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    let signer = crate::request_scope::signer();
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    let duration_ms = elapsed.as_secs_f64() * 1000.0;
    let orchestrator = signer.as_deref().unwrap_or("-");
    if matches!(endpoint.as_str(), "/healthz" | "/readyz" | "/metrics") {
        tracing::debug!(target: "provisio::access", %method, route = %endpoint, status, duration_ms, orchestrator, "request");
    } else {
        tracing::info!(target: "provisio::access", %method, route = %endpoint, status, duration_ms, orchestrator, "request");
    }
    crate::metrics::request(endpoint, method, status, elapsed.as_secs_f64());
    response
}

/// Makes the request id (and whether events are on) available to the domain for the rest of the
/// request, and answers where the caller stands with every rate limit the request counted against
/// (`RateLimit-Policy`, `RateLimit`).
async fn with_request(emit_events: bool, req: Request, next: Next) -> Response {
    let id = req
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .unwrap_or("-")
        .to_string();
    let (mut response, allowances) =
        crate::request_scope::run(id, emit_events, next.run(req)).await;
    if let Some((policy, state)) = crate::rate_limit::header_values(&allowances) {
        let headers = response.headers_mut();
        for (name, value) in [("ratelimit-policy", policy), ("ratelimit", state)] {
            if let Ok(value) = axum::http::HeaderValue::from_str(&value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
    }
    response
}

/// A `Content-Length` over the limit is answered 413 before the body is read into memory. A
/// client waiting for `100 Continue` is answered at once (it sends nothing more). Any other client
/// may be sending the body already: what arrives within a second (up to [`MAX_DRAINED`] bytes) is
/// read and thrown away first, so it reads the answer rather than a reset connection — and one that
/// announced a body it never sends is answered after that second, not after the request timeout.
async fn refuse_oversized(max: usize, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_none_or(|length| length <= max as u64) {
        return next.run(req).await;
    }
    let expects_continue = req
        .headers()
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if !expects_continue {
        let _ = tokio::time::timeout(Duration::from_secs(1), drain(req.into_body())).await;
    }
    let mut response =
        ApiError::from(FlatError::new(FlatCode::RequestTooLarge, "Request body is too large"))
            .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    response
}

/// The most of a refused body read (and thrown away) before answering.
const MAX_DRAINED: usize = 8 * 1024 * 1024;

async fn drain(body: axum::body::Body) {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut read = 0;
    while read < MAX_DRAINED {
        match body.frame().await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, |d| d.len()),
            _ => return,
        }
    }
}

async fn with_timeout(timeout: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(?timeout, "request timed out");
            ApiError::from(FlatError::new(FlatCode::Timeout, "The request took too long"))
                .into_response()
        }
    }
}

//! Turning answers and the four error envelopes into HTTP responses. The only place a status code or
//! an error body is put on the wire.

use axum::{
    body::{Body, Bytes},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use provisio_protocol::{FlatError, OAuthError, StatusError, TypedError, envelope::FlatCode};
use serde::Serialize;

/// An error answer in one of the protocol's envelopes.
#[derive(Debug)]
pub enum ApiError {
    Flat(FlatError),
    Typed(TypedError),
    Status(StatusError),
    OAuth(OAuthError),
    /// One of the envelopes above with a `Retry-After` (a 429, or a 503 `provider_unavailable`).
    RetryAfter(Box<ApiError>, u64),
}

impl ApiError {
    /// Adds `Retry-After` to a `rate_limited` or `provider_unavailable` envelope.
    pub fn retry_after(self, seconds: u64) -> Self {
        Self::RetryAfter(Box::new(self), seconds)
    }

    pub fn server_error() -> Self {
        FlatError::new(FlatCode::ServerError, "Internal server error").into()
    }
}

macro_rules! from_envelope {
    ($($variant:ident($ty:ty)),+) => {$(
        impl From<$ty> for ApiError {
            fn from(e: $ty) -> Self { Self::$variant(e) }
        }
    )+};
}
from_envelope!(Flat(FlatError), Typed(TypedError), Status(StatusError), OAuth(OAuthError));

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::Flat(e) => json(e.status(), &e),
            Self::Typed(e) => json(e.status(), &e),
            Self::Status(e) => json(e.status(), &e),
            Self::OAuth(e) => no_store(json(e.status(), &e)),
            Self::RetryAfter(inner, seconds) => {
                let mut response = inner.into_response();
                if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                response
            }
        }
    }
}

/// Extractors reject with a response: an error in its envelope, or an answer recorded earlier.
impl From<ApiError> for Response {
    fn from(e: ApiError) -> Self {
        e.into_response()
    }
}

/// A JSON response with the given status.
pub fn json<T: Serialize>(status: u16, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => json_bytes(status, bytes.into()),
        Err(_) => json_bytes(
            500,
            Bytes::from_static(
                br#"{"error":{"code":"server_error","message":"Internal server error"}}"#,
            ),
        ),
    }
}

/// A JSON response from bytes already serialized.
pub fn json_bytes(status: u16, bytes: Bytes) -> Response {
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Marks a response that carries credentials as not cacheable (RFC 6749 5.1).
pub fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

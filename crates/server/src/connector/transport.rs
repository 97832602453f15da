//! One signed POST to the SaaS, and the answer read as the contract reads it: a `2xx` with the
//! specified JSON is success; a `4xx` whose body is the error object is a refusal (never retried);
//! everything else is transient and retried with exponential backoff and full jitter, with the same
//! `webhook-id` and a fresh signature, until the caller's deadline.

use std::time::{Duration, Instant};

use reqwest::{StatusCode, Url, header};
use serde::{Deserialize, de::DeserializeOwned};

use super::webhook::Signer;

/// The version of the contract provisio speaks, sent on every call.
pub const CONNECTOR_VERSION: &str = "1";
/// The first pause between attempts; it doubles, capped at [`MAX_BACKOFF`], and is jittered.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Why a call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The SaaS answered `4xx` with its error object: a decision, not a failure.
    #[error("refused ({status}): {code}: {message}")]
    Refused { status: u16, code: String, message: String },
    /// No success before the deadline; `last` says what the last attempt saw (for logs).
    #[error("unavailable after {attempts} attempt(s): {last}")]
    Unavailable { attempts: u32, last: String, retry_after_secs: u64 },
}

impl CallError {
    pub fn refusal_code(&self) -> Option<&str> {
        match self {
            Self::Refused { code, .. } => Some(code),
            Self::Unavailable { .. } => None,
        }
    }
}

/// The SaaS's refusal body.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorObject,
}

#[derive(Deserialize)]
struct ErrorObject {
    code: String,
    message: String,
}

/// An HTTP client with keep-alive (one pool for every call), rustls, and the signer.
#[derive(Debug, Clone)]
pub struct Transport {
    http: reqwest::Client,
    signer: Signer,
    timeout: Duration,
}

/// What one attempt came to.
enum Attempt<T> {
    Done(T),
    Refused(CallError),
    /// Retry; with the server's `Retry-After`, if it gave one.
    Again {
        reason: String,
        retry_after: Option<Duration>,
    },
}

impl Transport {
    pub fn new(signer: Signer, timeout: Duration) -> Result<Self, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .user_agent(concat!("provisio/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { http, signer, timeout })
    }

    /// Posts `body` to `url` under `webhook_id` until a success or a refusal, or until `deadline`.
    pub async fn call<T: DeserializeOwned>(
        &self,
        url: &Url,
        webhook_id: &str,
        body: &[u8],
        deadline: Instant,
    ) -> Result<T, CallError> {
        let mut attempts = 0;
        let mut backoff = FIRST_BACKOFF;
        loop {
            attempts += 1;
            let now = Instant::now();
            let left = deadline.saturating_duration_since(now);
            let (reason, retry_after) = if left.is_zero() {
                ("the deadline passed".to_string(), None)
            } else {
                match self.attempt(url, webhook_id, body, left.min(self.timeout)).await {
                    Attempt::Done(value) => return Ok(value),
                    Attempt::Refused(refusal) => return Err(refusal),
                    Attempt::Again { reason, retry_after } => (reason, retry_after),
                }
            };
            let pause = retry_after.unwrap_or_else(|| jitter(backoff));
            backoff = (backoff * 2).min(MAX_BACKOFF);
            if Instant::now() + pause >= deadline {
                let retry_after_secs = retry_after.map_or(1, |d| d.as_secs().max(1));
                return Err(CallError::Unavailable { attempts, last: reason, retry_after_secs });
            }
            tracing::debug!(webhook_id, %reason, pause_ms = pause.as_millis() as u64, "connector call will be retried");
            tokio::time::sleep(pause).await;
        }
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        url: &Url,
        webhook_id: &str,
        body: &[u8],
        timeout: Duration,
    ) -> Attempt<T> {
        match self.post_once(url, webhook_id, body, timeout).await {
            Ok(answer) => classify(answer.status, answer.retry_after, &answer.body),
            Err(reason) => Attempt::Again { reason, retry_after: None },
        }
    }

    /// One signed attempt, whatever it answers; `Err` says why no answer came.
    pub async fn post_once(
        &self,
        url: &Url,
        webhook_id: &str,
        body: &[u8],
        timeout: Duration,
    ) -> Result<Answer, String> {
        let signed = self.signer.sign(webhook_id, now_secs(), body).map_err(|e| e.to_string())?;
        let response = self
            .http
            .post(url.clone())
            .timeout(timeout)
            .header(header::CONTENT_TYPE, "application/json")
            .header("connector-version", CONNECTOR_VERSION)
            .header("webhook-id", &signed.id)
            .header("webhook-timestamp", signed.timestamp.to_string())
            .header("webhook-signature", &signed.signature)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = response.bytes().await.map_err(|e| describe(&e))?;
        Ok(Answer { status, retry_after, body: body.to_vec() })
    }
}

/// What the SaaS answered to one attempt.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub retry_after: Option<Duration>,
    pub body: Vec<u8>,
}

/// The contract's reading of an answer.
fn classify<T: DeserializeOwned>(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Attempt<T> {
    if status.is_success() {
        return match serde_json::from_slice::<T>(body) {
            Ok(value) => Attempt::Done(value),
            Err(e) => Attempt::Again {
                reason: format!("{status} with a body that is not the specified JSON: {e}"),
                retry_after: None,
            },
        };
    }
    let transient_4xx =
        matches!(status, StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS);
    if status.is_client_error()
        && !transient_4xx
        && let Ok(ErrorBody { error }) = serde_json::from_slice::<ErrorBody>(body)
    {
        return Attempt::Refused(CallError::Refused {
            status: status.as_u16(),
            code: error.code.chars().take(64).collect(),
            message: error.message.chars().take(500).collect(),
        });
    }
    // Retry-After is honoured where it means "later": 429 and 503.
    let honoured =
        matches!(status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE);
    Attempt::Again {
        reason: format!("answered {status}"),
        retry_after: retry_after.filter(|_| honoured),
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare from an API and is read as absent).
fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds.min(3600)))
}

/// A uniformly random pause in `[0, ceiling]` ("full jitter"), so retrying instances spread out.
fn jitter(ceiling: Duration) -> Duration {
    let mut bytes = [0u8; 4];
    let unit = match getrandom::fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
        Err(_) => 0.5,
    };
    ceiling.mul_f64(unit)
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else {
        e.to_string()
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn read(status: u16, body: &str) -> Attempt<Value> {
        classify(StatusCode::from_u16(status).unwrap(), None, body.as_bytes())
    }

    #[test]
    fn answers_are_read_as_the_contract_says() {
        assert!(matches!(read(200, r#"{"user":null}"#), Attempt::Done(_)));
        assert!(matches!(read(201, "{}"), Attempt::Done(_)));
        assert!(matches!(read(200, "<html>"), Attempt::Again { .. }));
        match read(409, r#"{"error":{"code":"user_exists","message":"taken"}}"#) {
            Attempt::Refused(CallError::Refused { status, code, message }) => {
                assert_eq!(
                    (status, code.as_str(), message.as_str()),
                    (409, "user_exists", "taken")
                );
            }
            _ => panic!("a 4xx with the error object is a refusal"),
        }
        for (status, body) in [
            (404, "<html>not found</html>"),
            (400, r#"{"error":"flat"}"#),
            (408, r#"{"error":{"code":"x","message":"y"}}"#),
            (429, r#"{"error":{"code":"x","message":"y"}}"#),
            (500, r#"{"error":{"code":"x","message":"y"}}"#),
            (302, ""),
        ] {
            assert!(matches!(read(status, body), Attempt::Again { .. }), "{status} {body}");
        }
    }

    #[test]
    fn retry_after_counts_only_where_it_means_later() {
        let later = Some(Duration::from_secs(2));
        let Attempt::<Value>::Again { retry_after, .. } =
            classify(StatusCode::SERVICE_UNAVAILABLE, later, b"")
        else {
            panic!("503 is transient")
        };
        assert_eq!(retry_after, later);
        let Attempt::<Value>::Again { retry_after, .. } =
            classify(StatusCode::BAD_GATEWAY, later, b"")
        else {
            panic!("502 is transient")
        };
        assert_eq!(retry_after, None);
    }

    #[test]
    fn jitter_stays_under_its_ceiling() {
        for _ in 0..100 {
            assert!(jitter(Duration::from_millis(100)) <= Duration::from_millis(100));
        }
    }
}

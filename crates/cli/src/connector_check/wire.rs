//! Calls to the SaaS's connector as provisio makes them — Standard Webhooks signed, with the
//! contract's headers — and deliberately wrong ones (another secret, a stale timestamp, no
//! signature). Every answer's time is kept for the report.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use provisio_server::connector::{Signer, operation_id, transport::CONNECTOR_VERSION};
use serde_json::Value;

/// How a call is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signing {
    /// With the configured secret, now.
    Valid,
    /// With a secret the SaaS does not know.
    OtherSecret,
    /// With the configured secret, ten minutes ago (Standard Webhooks allows five).
    Stale,
    /// No `webhook-*` headers at all.
    Missing,
}

/// What the SaaS answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// The body as JSON, when it is JSON.
    pub json: Option<Value>,
    pub raw: String,
}

impl Answer {
    /// `status body`, for a report's `got`: credentials show their public values only (every
    /// other value is a live secret), a sign-in URL not at all.
    pub fn describe(&self) -> String {
        let body = match &self.json {
            Some(json) => redacted(json).to_string(),
            None => self.raw.chars().take(500).collect(),
        };
        format!("{} {}", self.status, body.trim())
    }

    /// `(code, message)` when the body is the contract's error object.
    pub fn error_object(&self) -> Option<(&str, &str)> {
        let error = self.json.as_ref()?.get("error")?;
        let code = error.get("code")?.as_str()?;
        let message = error.get("message")?.as_str()?;
        let snake = !code.is_empty()
            && code.len() <= 64
            && code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        (snake && message.chars().count() <= 500).then_some((code, message))
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

fn redacted(json: &Value) -> Value {
    let mut json = json.clone();
    let public: Vec<String> = json["public_keys"]
        .as_array()
        .map(|keys| keys.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default();
    if let Some(config) = json.get_mut("access_configuration").and_then(Value::as_object_mut) {
        for (key, value) in config.iter_mut() {
            if !public.contains(key) {
                *value = Value::String("(secret)".into());
            }
        }
    }
    if let Some(url) = json.get_mut("url").filter(|u| u.is_string()) {
        *url = Value::String("(sign-in URL)".into());
    }
    json
}

pub struct Saas {
    http: reqwest::Client,
    signer: Signer,
    other: Signer,
    /// Every answer's time.
    timings: Mutex<Vec<Duration>>,
    /// A prefix for this run's webhook-ids.
    run: String,
}

impl Saas {
    pub fn new(signer: Signer, run: &str, timeout: Duration) -> anyhow::Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .user_agent(concat!("provisio-connector-check/", env!("CARGO_PKG_VERSION")))
            .build()?;
        // A well-formed secret that is not the SaaS's.
        let other = format!("whsec_{}", STANDARD.encode(b"connector-check: not the secret!"));
        let other = Signer::from_secrets(&other).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Self { http, signer, other, timings: Mutex::default(), run: run.to_string() })
    }

    /// A `webhook-id` for step `step` of this run (`op_` + base64url, as provisio makes them).
    pub fn webhook_id(&self, step: &str) -> String {
        operation_id(&["connector-check", &self.run, step])
    }

    /// POSTs `body` to `url` under `webhook_id`; `Err` says why no answer came.
    pub async fn post(
        &self,
        url: &str,
        webhook_id: &str,
        body: &Value,
        signing: Signing,
    ) -> Result<Answer, String> {
        let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let signed = match signing {
            Signing::Valid => Some(self.signer.sign(webhook_id, now, &bytes)),
            Signing::OtherSecret => Some(self.other.sign(webhook_id, now, &bytes)),
            Signing::Stale => Some(self.signer.sign(webhook_id, now - 600, &bytes)),
            Signing::Missing => None,
        }
        .transpose()
        .map_err(|e| e.to_string())?;
        let mut request = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("connector-version", CONNECTOR_VERSION)
            .body(bytes);
        if let Some(signed) = signed {
            request = request
                .header("webhook-id", &signed.id)
                .header("webhook-timestamp", signed.timestamp.to_string())
                .header("webhook-signature", &signed.signature);
        }
        let started = Instant::now();
        let response = request.send().await.map_err(|e| format!("no answer: {e}"))?;
        let status = response.status().as_u16();
        let raw = response.text().await.map_err(|e| format!("no answer: {e}"))?;
        self.timings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(started.elapsed());
        Ok(Answer { status, json: serde_json::from_str(&raw).ok(), raw })
    }

    /// `(calls, p50, p99)` of the answers so far.
    pub fn timing(&self) -> (usize, Duration, Duration) {
        let mut all =
            self.timings.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        all.sort();
        let at = |q: f64| {
            let i = ((all.len() as f64 * q).ceil() as usize).clamp(1, all.len().max(1)) - 1;
            all.get(i).copied().unwrap_or_default()
        };
        (all.len(), at(0.50), at(0.99))
    }
}

//! A signed APP 0.1d client. Every call is signed over the exact bytes it sends.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use provisio_protocol::{API_VERSION, API_VERSION_HEADER, signature};
use reqwest::{Method, header::HeaderMap};

/// Where and how to call a provider.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Provider base URL, e.g. `http://127.0.0.1:8080`.
    pub base_url: String,
    /// Prefix the provider mounts the protocol under (`/api/agentic`); empty for none.
    pub path_prefix: String,
    /// Signing secrets; one `v1` per secret (several while rotating).
    pub signing_secrets: Vec<String>,
    /// `API-Version` to send; `None` sends none.
    pub api_version: Option<String>,
    /// Token endpoint; defaults to `<base>/oauth/token`.
    pub token_url: Option<String>,
    pub timeout: Duration,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>, signing_secrets: Vec<String>) -> Self {
        Self {
            base_url: base_url.into(),
            path_prefix: String::new(),
            signing_secrets,
            api_version: Some(API_VERSION.into()),
            token_url: None,
            timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot build the HTTP client: {0}")]
    Build(reqwest::Error),
    #[error("request to {url} failed: {source}")]
    Transport { url: String, source: reqwest::Error },
}

/// A provider's answer: status, headers and the body (parsed as JSON when it is JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub raw: Vec<u8>,
    pub json: Option<serde_json::Value>,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body for printing: pretty JSON, or the raw text.
    pub fn pretty(&self) -> String {
        match &self.json {
            Some(v) => serde_json::to_string_pretty(v).unwrap_or_default(),
            None => String::from_utf8_lossy(&self.raw).into_owned(),
        }
    }
}

/// How one request is authenticated, beyond the client's defaults.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    /// Sign the request (default for protocol calls).
    pub unsigned: bool,
    pub bearer: Option<String>,
    /// Headers sent as given, after the defaults (a hand-made `Stripe-Signature`, say).
    pub extra_headers: Vec<(String, String)>,
}

#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    config: ClientConfig,
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        // reqwest is built without a bundled crypto provider; install ring's once per process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .pool_max_idle_per_host(1024)
            .build()
            .map_err(ClientError::Build)?;
        Ok(Self { http, config })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// URL of a protocol path such as `/provisioning/health`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}{}", self.config.base_url.trim_end_matches('/'), self.config.path_prefix, path)
    }

    pub async fn health(&self) -> Result<Reply, ClientError> {
        self.send(
            Method::GET,
            &self.url("/provisioning/health"),
            Vec::new(),
            None,
            &Auth::default(),
        )
        .await
    }

    pub async fn services(&self) -> Result<Reply, ClientError> {
        self.send(
            Method::GET,
            &self.url("/provisioning/services"),
            Vec::new(),
            None,
            &Auth::default(),
        )
        .await
    }

    /// Sends one request, signing `body` exactly as sent.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: Vec<u8>,
        content_type: Option<&str>,
        auth: &Auth,
    ) -> Result<Reply, ClientError> {
        let mut request = self.http.request(method, url);
        if let Some(version) = &self.config.api_version {
            request = request.header(API_VERSION_HEADER, version);
        }
        if !auth.unsigned && !self.config.signing_secrets.is_empty() {
            let header = signature::header_value(&self.config.signing_secrets, unix_now(), &body);
            request = request.header(signature::SIGNATURE_HEADER, header);
        }
        if let Some(token) = &auth.bearer {
            request = request.bearer_auth(token);
        }
        for (name, value) in &auth.extra_headers {
            request = request.header(name, value);
        }
        if let Some(ct) = content_type {
            request = request.header(reqwest::header::CONTENT_TYPE, ct);
        }
        if !body.is_empty() {
            request = request.body(body);
        }
        let transport = |source| ClientError::Transport { url: url.to_string(), source };
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let raw = response.bytes().await.map_err(transport)?.to_vec();
        let json = serde_json::from_slice(&raw).ok();
        Ok(Reply { status, headers, raw, json })
    }
}

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

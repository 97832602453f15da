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

    /// `POST /provisioning/account_requests` with a JSON body.
    pub async fn account_request(&self, body: &serde_json::Value) -> Result<Reply, ClientError> {
        self.post_json("/provisioning/account_requests", body, &Auth::default()).await
    }

    /// A signed JSON POST to a protocol path.
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
        auth: &Auth,
    ) -> Result<Reply, ClientError> {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        self.send(Method::POST, &self.url(path), bytes, Some("application/json"), auth).await
    }

    /// A signed JSON POST with a bearer token (resources and deep links).
    pub async fn post_with_bearer(
        &self,
        path: &str,
        body: &serde_json::Value,
        access_token: &str,
    ) -> Result<Reply, ClientError> {
        self.post_json(path, body, &Auth { bearer: Some(access_token.into()), ..Auth::default() })
            .await
    }

    /// `POST /provisioning/resources`.
    pub async fn provision(
        &self,
        body: &serde_json::Value,
        access_token: &str,
    ) -> Result<Reply, ClientError> {
        self.post_with_bearer("/provisioning/resources", body, access_token).await
    }

    /// `GET /provisioning/resources/{id}`.
    pub async fn get_resource(&self, id: &str, access_token: &str) -> Result<Reply, ClientError> {
        let auth = Auth { bearer: Some(access_token.into()), ..Auth::default() };
        self.send(
            Method::GET,
            &self.url(&format!("/provisioning/resources/{id}")),
            Vec::new(),
            None,
            &auth,
        )
        .await
    }

    /// `POST /provisioning/resources/{id}/<action>` (`update_service`, `rotate_credentials`, `remove`).
    pub async fn resource_action(
        &self,
        id: &str,
        action: &str,
        body: &serde_json::Value,
        access_token: &str,
    ) -> Result<Reply, ClientError> {
        self.post_with_bearer(&format!("/provisioning/resources/{id}/{action}"), body, access_token)
            .await
    }

    /// `POST /provisioning/deep_links`.
    pub async fn deep_link(
        &self,
        body: &serde_json::Value,
        access_token: &str,
    ) -> Result<Reply, ClientError> {
        self.post_with_bearer("/provisioning/deep_links", body, access_token).await
    }

    /// The token endpoint URL.
    pub fn token_url(&self) -> String {
        self.config.token_url.clone().unwrap_or_else(|| {
            format!("{}/oauth/token", self.config.base_url.trim_end_matches('/'))
        })
    }

    /// `POST /oauth/token`, form-encoded.
    pub async fn token(&self, form: &[(&str, &str)], auth: &Auth) -> Result<Reply, ClientError> {
        let body = form_encode(form);
        self.send(
            Method::POST,
            &self.token_url(),
            body.into_bytes(),
            Some("application/x-www-form-urlencoded"),
            auth,
        )
        .await
    }

    /// Redeems a code (signed; with the PKCE verifier when there is one).
    pub async fn redeem_code(
        &self,
        code: &str,
        verifier: Option<&str>,
    ) -> Result<Reply, ClientError> {
        let mut form = vec![("grant_type", "authorization_code"), ("code", code)];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        self.token(&form, &Auth::default()).await
    }

    /// Rotates a refresh token.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Reply, ClientError> {
        self.token(
            &[("grant_type", "refresh_token"), ("refresh_token", refresh_token)],
            &Auth::default(),
        )
        .await
    }

    /// `GET` of a URL meant for a browser (a deep link), as a browser's first request for it: no
    /// redirect is followed and no cookie is sent, so `Location` and `Set-Cookie` stay in the
    /// answer's headers.
    pub async fn open(&self, url: &str) -> Result<Reply, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(self.config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(ClientError::Build)?;
        let transport = |source| ClientError::Transport { url: url.to_string(), source };
        let response = http.get(url).send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let raw = response.bytes().await.map_err(transport)?.to_vec();
        let json = serde_json::from_slice(&raw).ok();
        Ok(Reply { status, headers, raw, json })
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

/// A minimal valid account request body: the orchestrator vouches for `email` on behalf of the Stripe
/// account `stripe_account`.
pub fn account_request_body(id: &str, email: &str, stripe_account: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "object": "account_request",
        "email": email,
        "scopes": ["provision"],
        "orchestrator": {"type": "stripe", "stripe": {"account": stripe_account}}
    })
}

/// `application/x-www-form-urlencoded` encoding of pairs.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    let escape = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".into(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs.iter().map(|(k, v)| format!("{}={}", escape(k), escape(v))).collect::<Vec<_>>().join("&")
}

/// Nanoseconds since the epoch, for unique request ids.
pub fn unix_now_nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

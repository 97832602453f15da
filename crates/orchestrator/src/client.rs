//! A signed APP 0.1d client. Every call is signed over the exact bytes it sends.

use std::{
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use provisio_protocol::{API_VERSION, API_VERSION_HEADER, signature};
use reqwest::{Method, header::HeaderMap};

use crate::connection::Connection;

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
    /// Parse every reply's body into `Reply::json`. The load generator turns this off: parsing a
    /// services catalog costs more than sending the request, and it reads the few fields it needs
    /// with `Reply::parsed`.
    pub parse_json: bool,
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
            parse_json: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot build the HTTP client: {0}")]
    Build(reqwest::Error),
    #[error("request to {url} failed: {source}")]
    Transport { url: String, source: reqwest::Error },
    #[error("request to {url} failed: {source}")]
    Connection { url: String, source: std::io::Error },
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
    /// A reply; with `parse`, its body parsed as JSON when it is JSON.
    pub fn new(status: u16, headers: HeaderMap, raw: Vec<u8>, parse: bool) -> Self {
        let json = if parse { serde_json::from_slice(&raw).ok() } else { None };
        Self { status, headers, raw, json }
    }

    /// The body as JSON, parsed now if the client did not parse it.
    pub fn parsed(&self) -> Option<serde_json::Value> {
        self.json.clone().or_else(|| serde_json::from_slice(&self.raw).ok())
    }

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
    /// A connection of this client's own for requests to its base URL (`with_own_connection`).
    own: Option<Arc<tokio::sync::Mutex<Connection>>>,
    /// Signing timestamps, so two different requests never carry one signature.
    stamps: Arc<crate::stamps::Stamps>,
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
        Ok(Self { http, config, own: None, stamps: Arc::default() })
    }

    /// This client with one kept-alive HTTP/1.1 connection of its own for requests to a plain
    /// `http://` base URL, used one request at a time, as a load generator's worker wants it; other
    /// URLs (HTTPS, another token host) still go through the shared pool.
    pub fn with_own_connection(&self) -> Self {
        let own = Connection::for_base_url(&self.config.base_url)
            .map(|c| Arc::new(tokio::sync::Mutex::new(c)));
        Self { own, ..self.clone() }
    }

    /// The timestamp to sign this request with: now, unless another request with the same token
    /// and body was signed for now already (see [`crate::stamps`]).
    pub fn stamp(&self, bearer: Option<&str>, method: &Method, url: &str, body: &[u8]) -> i64 {
        self.stamps.next(unix_now(), bearer, method.as_str(), url, body)
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
        Ok(Reply::new(status, headers, raw, self.config.parse_json))
    }

    /// Sends one request, signing `body` exactly as sent. A provider that binds each signature to
    /// the first request it saw it on (as provisio does) refuses a signature another process of
    /// ours used in the same second for the same token and body; such a refusal is retried at a
    /// later second (at most a few times).
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: Vec<u8>,
        content_type: Option<&str>,
        auth: &Auth,
    ) -> Result<Reply, ClientError> {
        let mut retries = 3;
        loop {
            let (headers, signed_at) = self.headers(&method, url, &body, content_type, auth);
            // Boxed: the conformance runner nests many of these futures, and a debug build's
            // test thread has a small stack.
            let reply = Box::pin(self.send_once(method.clone(), url, &body, headers)).await?;
            match signed_at {
                Some(at) if retries > 0 && signature_taken(&reply) => {
                    self.stamps.taken(auth.bearer.as_deref(), &body, at);
                    retries -= 1;
                }
                _ => return Ok(reply),
            }
        }
    }

    async fn send_once(
        &self,
        method: Method,
        url: &str,
        body: &[u8],
        headers: Vec<(String, String)>,
    ) -> Result<Reply, ClientError> {
        if let Some(own) = &self.own {
            let mut connection = own.lock().await;
            if let Some(target) = connection.target_of(url) {
                let exchange = connection.send(method.as_str(), &target, &headers, body);
                let response = tokio::time::timeout(self.config.timeout, exchange)
                    .await
                    .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
                    .map_err(|source| ClientError::Connection { url: url.to_string(), source })?;
                return Ok(Reply::new(
                    response.status,
                    response.headers,
                    response.body,
                    self.config.parse_json,
                ));
            }
        }
        let mut request = self.http.request(method, url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if !body.is_empty() {
            request = request.body(body.to_vec());
        }
        let transport = |source| ClientError::Transport { url: url.to_string(), source };
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let raw = response.bytes().await.map_err(transport)?.to_vec();
        Ok(Reply::new(status, headers, raw, self.config.parse_json))
    }

    /// The headers a request carries: API version, signature over `body`, bearer, the caller's
    /// extra headers, content type; and the timestamp it was signed at, when this client signed it.
    fn headers(
        &self,
        method: &Method,
        url: &str,
        body: &[u8],
        content_type: Option<&str>,
        auth: &Auth,
    ) -> (Vec<(String, String)>, Option<i64>) {
        let mut headers = Vec::with_capacity(4 + auth.extra_headers.len());
        if let Some(version) = &self.config.api_version {
            headers.push((API_VERSION_HEADER.to_string(), version.clone()));
        }
        let mut signed_at = None;
        if !auth.unsigned && !self.config.signing_secrets.is_empty() {
            let at = self.stamp(auth.bearer.as_deref(), method, url, body);
            let value = signature::header_value(&self.config.signing_secrets, at, body);
            headers.push((signature::SIGNATURE_HEADER.to_string(), value));
            signed_at = Some(at);
        }
        if let Some(token) = &auth.bearer {
            headers.push(("authorization".to_string(), format!("Bearer {token}")));
        }
        headers.extend(auth.extra_headers.iter().cloned());
        if let Some(ct) = content_type {
            headers.push(("content-type".to_string(), ct.to_string()));
        }
        (headers, signed_at)
    }
}

/// Whether a provider refused the request because its signature was already used for another
/// request (provisio's 401 `invalid_signature` with that message).
fn signature_taken(reply: &Reply) -> bool {
    const TAKEN: &[u8] = b"signature was already used for another request";
    reply.status == 401 && reply.raw.windows(TAKEN.len()).any(|w| w == TAKEN)
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

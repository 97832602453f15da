//! The requests checks send. Every header is set by hand (the client itself signs nothing and sends
//! no `API-Version`), so a check can leave out, break or forge exactly one thing.

use std::sync::atomic::{AtomicU64, Ordering};

use provisio_protocol::{API_VERSION, API_VERSION_HEADER, signature};
use reqwest::header::CONTENT_TYPE;
use serde_json::Value;

use super::{Config, ConformanceError, expect::summarize, runner::Verdict, schemas::Schemas};
use crate::{
    Auth, Client, ClientConfig, Method, Reply,
    client::{form_encode, unix_now_nanos},
};

pub const HEALTH: &str = "/provisioning/health";
pub const SERVICES: &str = "/provisioning/services";
pub const ACCOUNT_REQUESTS: &str = "/provisioning/account_requests";
pub const RESOURCES: &str = "/provisioning/resources";
pub const DEEP_LINKS: &str = "/provisioning/deep_links";

/// `GET` path of one resource.
pub fn resource(id: &str) -> String {
    format!("{RESOURCES}/{id}")
}

/// Path of an action on one resource: `update_service`, `rotate_credentials` or `remove`.
pub fn action(id: &str, name: &str) -> String {
    format!("{RESOURCES}/{id}/{name}")
}

/// A secret no provider is configured with.
pub const WRONG_SECRET: &str = "whsec_conformance_not_the_secret";

/// What one run shares: where the provider is, the secret, and counters for unique data.
pub struct Ctx {
    client: Client,
    secret: String,
    email_domain: String,
    /// Distinguishes this run's emails, request ids and Stripe account from every other run's.
    run: String,
    seq: AtomicU64,
    pub stripe_account: String,
    pub schemas: Schemas,
}

impl Ctx {
    pub fn new(config: &Config) -> Result<Self, ConformanceError> {
        let mut client_config = ClientConfig::new(&config.base_url, Vec::new());
        client_config.api_version = None;
        client_config.path_prefix = config.path_prefix.clone();
        client_config.token_url = config.token_url.clone();
        let client = Client::new(client_config).map_err(ConformanceError::Client)?;
        let schemas = Schemas::load().map_err(ConformanceError::Schema)?;
        let run = base36(unix_now_nanos());
        Ok(Self {
            client,
            secret: config.signing_secret.clone(),
            email_domain: config.email_domain.clone(),
            stripe_account: format!("acct_conformance{run}"),
            run,
            seq: AtomicU64::new(0),
            schemas,
        })
    }

    fn next(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// An email no other check (and no other run) has used.
    pub fn email(&self) -> String {
        format!("conf-{}-{}@{}", self.run, self.next(), self.email_domain)
    }

    /// A fresh account request `id`.
    pub fn request_id(&self) -> String {
        format!("req_conformance_{}_{}", self.run, self.next())
    }

    /// A fresh orchestrator `project_id` (the idempotency key of a resource create).
    pub fn project_key(&self) -> String {
        format!("proj_conformance_{}_{}", self.run, self.next())
    }

    /// A value no other request of the run carries: an unknown body field that makes two otherwise
    /// identical requests differ, so a provider's replay cache cannot answer the second.
    pub fn nonce(&self) -> String {
        format!("{}_{}", self.run, self.next())
    }

    /// A complete `Stripe-Signature` value for `body` at time `t`, with the configured secret.
    pub fn sign_at(&self, t: i64, body: &[u8]) -> String {
        signature::header_value(&[&self.secret], t, body)
    }

    /// The `v1` digest alone.
    pub fn v1(&self, t: i64, body: &[u8]) -> String {
        signature::sign(self.secret.as_bytes(), t, body)
    }

    pub fn get(&self, path: &str) -> Probe<'_> {
        self.probe(Method::GET, self.client.url(path), Vec::new(), None)
    }

    /// `GET` of a path at the provider's root, outside the protocol prefix.
    pub fn get_root(&self, path: &str) -> Probe<'_> {
        let base = self.client.config().base_url.trim_end_matches('/');
        self.probe(Method::GET, format!("{base}{path}"), Vec::new(), None)
    }

    /// What a browser's first `GET` of `url` gets (a deep link): no redirect followed.
    pub async fn open(&self, url: &str) -> Result<Reply, String> {
        self.client.open(url).await.map_err(|e| format!("no answer: {e}"))
    }

    pub fn request(&self, method: Method, path: &str) -> Probe<'_> {
        self.probe(method, self.client.url(path), Vec::new(), None)
    }

    /// A JSON `POST` to a protocol path.
    pub fn post(&self, path: &str, body: &Value) -> Probe<'_> {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        self.probe(Method::POST, self.client.url(path), bytes, Some("application/json"))
    }

    /// A form `POST` to the token endpoint.
    pub fn token(&self, form: &[(&str, &str)]) -> Probe<'_> {
        let body = form_encode(form).into_bytes();
        self.probe(
            Method::POST,
            self.client.token_url(),
            body,
            Some("application/x-www-form-urlencoded"),
        )
    }

    fn probe(
        &self,
        method: Method,
        url: String,
        body: Vec<u8>,
        content_type: Option<&'static str>,
    ) -> Probe<'_> {
        Probe {
            cx: self,
            method,
            url,
            body,
            content_type,
            version: Some(API_VERSION.into()),
            signature: Signature::Valid,
            bearer: None,
            headers: Vec::new(),
        }
    }
}

enum Signature {
    /// Signed now over the exact body sent.
    Valid,
    /// Signed at this Unix time over the exact body sent.
    At(i64),
    Omit,
    /// This header value, as given.
    Header(String),
}

/// One request being built: by default signed over its body, with `API-Version: 0.1d`.
pub struct Probe<'c> {
    cx: &'c Ctx,
    method: Method,
    url: String,
    body: Vec<u8>,
    content_type: Option<&'static str>,
    version: Option<String>,
    signature: Signature,
    bearer: Option<String>,
    headers: Vec<(String, String)>,
}

impl Probe<'_> {
    /// Sends these bytes instead (the content type stays).
    pub fn raw_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn content_type(mut self, content_type: &'static str) -> Self {
        self.content_type = Some(content_type);
        self
    }

    /// Sends this `API-Version` value; `None` sends no header.
    pub fn version(mut self, version: Option<&str>) -> Self {
        self.version = version.map(str::to_string);
        self
    }

    pub fn unsigned(mut self) -> Self {
        self.signature = Signature::Omit;
        self
    }

    /// Sends this `Stripe-Signature` value instead of a valid one.
    pub fn signature(mut self, header: impl Into<String>) -> Self {
        self.signature = Signature::Header(header.into());
        self
    }

    /// Signs at Unix time `t` instead of now (still valid within the tolerance): the same body under
    /// another timestamp is another `Stripe-Signature`.
    pub fn signed_at(mut self, t: i64) -> Self {
        self.signature = Signature::At(t);
        self
    }

    /// Sends `Authorization: Bearer <token>`.
    pub fn bearer(mut self, token: &str) -> Self {
        self.bearer = Some(token.to_string());
        self
    }

    /// Sends one more header, as given (`Idempotency-Key`, or an `Authorization` of another scheme).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub async fn send(self) -> Result<Reply, String> {
        let mut headers = Vec::new();
        if let Some(version) = self.version {
            headers.push((API_VERSION_HEADER.to_string(), version));
        }
        let signature = match self.signature {
            Signature::Valid => {
                let at = self.cx.client.stamp(
                    self.bearer.as_deref(),
                    &self.method,
                    &self.url,
                    &self.body,
                );
                Some(self.cx.sign_at(at, &self.body))
            }
            Signature::At(t) => Some(self.cx.sign_at(t, &self.body)),
            Signature::Omit => None,
            Signature::Header(value) => Some(value),
        };
        if let Some(value) = signature {
            headers.push((signature::SIGNATURE_HEADER.to_string(), value));
        }
        headers.extend(self.headers);
        let auth = Auth { unsigned: true, bearer: self.bearer, extra_headers: headers };
        self.cx
            .client
            .send(self.method, &self.url, self.body, self.content_type, &auth)
            .await
            .map_err(|e| format!("no answer: {e}"))
    }
}

/// `Content-Type` is JSON: nothing answers HTML or an empty body (spec 4).
pub fn json_content_type(reply: &Reply) -> Verdict {
    let content_type = reply.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let got = format!("{} Content-Type: {}", reply.status, content_type.unwrap_or("(none)"));
    let is_json = content_type.is_some_and(|ct| {
        ct.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
    });
    if is_json && reply.json.is_some() {
        Ok(got)
    } else {
        Err(format!("{got} — not a JSON answer: {}", summarize(reply)))
    }
}

/// Lowercase base 36, for short unique tags.
fn base36(mut n: u128) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(digits[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base36_digits() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
    }
}

//! Connector mode: the SaaS behind provisio owns users, organizations, projects, resources,
//! credentials, billing and the dashboard; provisio calls it over signed HTTP (the connector
//! contract, `docs/connector.md`). This module is the client side of that contract: settings, the
//! signed transport, and one typed method per operation. The rules (which user, which project,
//! what an answer means for the orchestrator) stay in `domain`.

pub mod config;
pub mod transport;
pub mod webhook;

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

pub use config::{ConnectorSettings, ConnectorSpec, EventsSettings, EventsSpec, SetupError};
pub use transport::{CallError, Transport};
pub use webhook::{Signer, operation_id};

/// The SaaS as provisio calls it.
#[derive(Debug)]
pub struct Connector {
    settings: ConnectorSettings,
    transport: Transport,
    /// The last `health` answer and when it came, for `/readyz`.
    health: tokio::sync::Mutex<Option<(Instant, bool)>>,
}

/// How long a `health` answer stands for `/readyz`.
const HEALTH_CACHE: Duration = Duration::from_secs(5);

/// A SaaS identifier of a user or an organization: 1–64 of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SaasId(String);

impl TryFrom<String> for SaasId {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let ok = (1..=64).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok { Ok(Self(s)) } else { Err(format!("{s:?} is not a valid identifier")) }
    }
}

impl From<SaasId> for String {
    fn from(id: SaasId) -> Self {
        id.0
    }
}

impl SaasId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A SaaS project id: a positive integer below 2^53.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct ProjectId(i64);

impl TryFrom<i64> for ProjectId {
    type Error = String;

    fn try_from(id: i64) -> Result<Self, String> {
        if (1..(1 << 53)).contains(&id) {
            Ok(Self(id))
        } else {
            Err(format!("{id} is not a project id"))
        }
    }
}

impl From<ProjectId> for i64 {
    fn from(id: ProjectId) -> Self {
        id.0
    }
}

impl ProjectId {
    pub fn get(self) -> i64 {
        self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    #[serde(default)]
    pub demo: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organization {
    pub id: SaasId,
    pub name: String,
    /// When the user joined it (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    pub joined_at: time::OffsetDateTime,
    #[serde(default)]
    pub projects: Vec<Project>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: SaasId,
    pub email: String,
    #[serde(default = "verified")]
    pub email_verified: bool,
    #[serde(default)]
    pub organizations: Vec<Organization>,
}

fn verified() -> bool {
    true
}

/// At most this many organizations and projects may come back for one user.
pub const MAX_ORGANIZATIONS: usize = 1000;
pub const MAX_PROJECTS: usize = 10_000;

impl User {
    /// Whether the user stays within the contract's limits.
    pub fn within_limits(&self) -> bool {
        self.organizations.len() <= MAX_ORGANIZATIONS
            && self.organizations.iter().map(|o| o.projects.len()).sum::<usize>() <= MAX_PROJECTS
    }
}

#[derive(Debug, Deserialize)]
struct LookupAnswer {
    user: Option<User>,
}

/// `users.create`'s answer: the user, and what was made for this request.
#[derive(Debug, Clone, Deserialize)]
pub struct CreatedUser {
    pub user: User,
    pub organization_id: SaasId,
    pub project_id: ProjectId,
}

#[derive(Debug, Deserialize)]
struct ProjectAnswer {
    project: Project,
}

/// Credentials as the SaaS answered them, split by `public_keys` (anything not named is secret).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    pub public: BTreeMap<String, String>,
    pub secret: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct CredentialsAnswer {
    access_configuration: BTreeMap<String, String>,
    #[serde(default)]
    public_keys: Vec<String>,
}

impl From<CredentialsAnswer> for Credentials {
    fn from(answer: CredentialsAnswer) -> Self {
        let (public, secret) = answer
            .access_configuration
            .into_iter()
            .partition(|(key, _)| answer.public_keys.iter().any(|p| p == key));
        Self { public, secret }
    }
}

/// An answer whose body is `{}` (unknown fields ignored).
#[derive(Debug, Deserialize)]
struct Empty {}

#[derive(Debug, Deserialize)]
struct LoginAnswer {
    url: String,
}

#[derive(Debug, Deserialize)]
struct HealthAnswer {
    connector_version: u32,
}

/// Who a resource call is for.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceRef<'a> {
    pub resource_id: String,
    pub user_id: &'a str,
    pub project_id: i64,
    pub organization_id: &'a str,
}

/// A payment token forwarded to the SaaS.
pub fn payment(token: Option<&str>) -> Value {
    match token {
        Some(token) => json!({"type": "stripe_payment_token", "stripe_payment_token": token}),
        None => Value::Null,
    }
}

/// Why a `dashboard.login` answer is not followed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("the SaaS answered a URL outside the dashboard origin")]
    Origin,
}

impl Connector {
    pub fn new(settings: ConnectorSettings) -> Result<Self, String> {
        let transport = Transport::new(settings.signer.clone(), settings.timeout)?;
        Ok(Self { settings, transport, health: tokio::sync::Mutex::new(None) })
    }

    /// Whether the SaaS answered `health` within the last few seconds (one call at a time: callers
    /// arriving meanwhile wait for its answer).
    pub async fn healthy_cached(&self) -> bool {
        let mut cached = self.health.lock().await;
        if let Some((at, up)) = *cached
            && at.elapsed() < HEALTH_CACHE
        {
            return up;
        }
        let up = self.health(Instant::now() + self.settings.timeout).await.is_ok();
        *cached = Some((Instant::now(), up));
        up
    }

    /// When the connector calls for one orchestrator request must be done.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.settings.deadline
    }

    pub fn deadline_duration(&self) -> Duration {
        self.settings.deadline
    }

    async fn call<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        webhook_id: &str,
        body: &Value,
        deadline: Instant,
    ) -> Result<T, CallError> {
        let url = self.settings.url.join_operation(operation);
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        let started = Instant::now();
        let answer = self.transport.call(&url, webhook_id, &bytes, deadline).await;
        crate::metrics::connector_call(operation, outcome(&answer), started.elapsed());
        match &answer {
            // A refusal is the SaaS's decision (`user_exists` in a race is routine), not a fault.
            Err(e @ CallError::Refused { .. }) => {
                tracing::debug!(operation, webhook_id, error = %e, "the SaaS refused");
            }
            Err(e) => {
                tracing::warn!(operation, webhook_id, error = %e, "the SaaS did not answer in time")
            }
            Ok(_) => {}
        }
        answer
    }

    /// `health`: the SaaS speaks version 1.
    pub async fn health(&self, deadline: Instant) -> Result<(), CallError> {
        let id = random_operation_id();
        let answer: HealthAnswer = self.call("health", &id, &json!({}), deadline).await?;
        if answer.connector_version == 1 {
            Ok(())
        } else {
            Err(CallError::Unavailable {
                attempts: 1,
                last: format!("the SaaS speaks connector version {}", answer.connector_version),
                retry_after_secs: 1,
            })
        }
    }

    /// `users.lookup`: a read, answered fresh.
    pub async fn lookup(&self, email: &str, deadline: Instant) -> Result<Option<User>, CallError> {
        let id = random_operation_id();
        let answer: LookupAnswer =
            self.call("users.lookup", &id, &json!({ "email": email }), deadline).await?;
        Ok(answer.user)
    }

    pub async fn create_user(
        &self,
        webhook_id: &str,
        body: &Value,
        deadline: Instant,
    ) -> Result<CreatedUser, CallError> {
        self.call("users.create", webhook_id, body, deadline).await
    }

    pub async fn create_project(
        &self,
        webhook_id: &str,
        user_id: &str,
        organization_id: &str,
        name: &str,
        deadline: Instant,
    ) -> Result<Project, CallError> {
        let body = json!({"user_id": user_id, "organization_id": organization_id, "name": name});
        let answer: ProjectAnswer =
            self.call("projects.create", webhook_id, &body, deadline).await?;
        Ok(answer.project)
    }

    pub async fn provision(
        &self,
        webhook_id: &str,
        body: &Value,
        deadline: Instant,
    ) -> Result<Credentials, CallError> {
        self.credentials("resources.provision", webhook_id, body, deadline).await
    }

    pub async fn update_service(
        &self,
        webhook_id: &str,
        body: &Value,
        deadline: Instant,
    ) -> Result<(), CallError> {
        self.empty("resources.update_service", webhook_id, body, deadline).await
    }

    pub async fn rotate(
        &self,
        webhook_id: &str,
        body: &Value,
        deadline: Instant,
    ) -> Result<Credentials, CallError> {
        self.credentials("resources.rotate", webhook_id, body, deadline).await
    }

    pub async fn remove(
        &self,
        webhook_id: &str,
        body: &Value,
        deadline: Instant,
    ) -> Result<(), CallError> {
        self.empty("resources.remove", webhook_id, body, deadline).await
    }

    /// An operation answered with credentials.
    async fn credentials(
        &self,
        operation: &'static str,
        webhook_id: &str,
        body: &Value,
        deadline: Instant,
    ) -> Result<Credentials, CallError> {
        let answer: CredentialsAnswer = self.call(operation, webhook_id, body, deadline).await?;
        Ok(answer.into())
    }

    /// An operation answered with `{}`.
    async fn empty(
        &self,
        operation: &'static str,
        webhook_id: &str,
        body: &Value,
        deadline: Instant,
    ) -> Result<(), CallError> {
        let _: Empty = self.call(operation, webhook_id, body, deadline).await?;
        Ok(())
    }

    /// `dashboard.login`: a read; the URL must be on the configured dashboard origin.
    pub async fn dashboard_login(
        &self,
        user_id: &str,
        organization_id: &str,
        project_id: Option<i64>,
        deadline: Instant,
    ) -> Result<String, LoginError> {
        let body = json!({
            "user_id": user_id,
            "organization_id": organization_id,
            "project_id": project_id,
            "purpose": "dashboard",
        });
        let id = random_operation_id();
        let answer: LoginAnswer = self.call("dashboard.login", &id, &body, deadline).await?;
        let on_origin = reqwest::Url::parse(&answer.url)
            .is_ok_and(|url| config::origin_of(&url) == self.settings.dashboard_origin);
        if on_origin { Ok(answer.url) } else { Err(LoginError::Origin) }
    }
}

/// Joining an operation name onto the configured base URL (`url + "/" + operation`).
trait JoinOperation {
    fn join_operation(&self, operation: &str) -> reqwest::Url;
}

impl JoinOperation for reqwest::Url {
    fn join_operation(&self, operation: &str) -> reqwest::Url {
        let mut url = self.clone();
        let path = format!("{}/{operation}", self.path().trim_end_matches('/'));
        url.set_path(&path);
        url
    }
}

/// Reads carry an id of their own per call: the SaaS answers them fresh.
fn random_operation_id() -> String {
    let nonce = crate::crypto::random_secret().unwrap_or_default();
    operation_id(&["read", &nonce])
}

fn outcome<T>(answer: &Result<T, CallError>) -> &'static str {
    match answer {
        Ok(_) => "ok",
        Err(CallError::Refused { .. }) => "refused",
        Err(CallError::Unavailable { .. }) => "unavailable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_posted_under_the_base_url() {
        let base = reqwest::Url::parse("https://saas.internal/provisio/v1").unwrap();
        assert_eq!(
            base.join_operation("users.lookup").as_str(),
            "https://saas.internal/provisio/v1/users.lookup"
        );
        let slash = reqwest::Url::parse("https://saas.internal/").unwrap();
        assert_eq!(slash.join_operation("health").as_str(), "https://saas.internal/health");
    }

    #[test]
    fn users_are_read_strictly() {
        let user: User = serde_json::from_value(json!({
            "id": "u_1", "email": "a@example.com",
            "organizations": [{"id": "o_1", "name": "Acme", "joined_at": "2026-01-01T00:00:00Z",
                               "projects": [{"id": 7, "name": "Web"}]}]
        }))
        .unwrap();
        assert!(user.email_verified);
        assert!(!user.organizations[0].projects[0].demo);
        for bad in [
            json!({"id": "", "email": "a@example.com"}),
            json!({"id": "u 1", "email": "a@example.com"}),
            json!({"id": "u_1", "email": "a@example.com", "organizations": [
                {"id": "o_1", "name": "A", "joined_at": "yesterday", "projects": []}]}),
            json!({"id": "u_1", "email": "a@example.com", "organizations": [
                {"id": "o_1", "name": "A", "joined_at": "2026-01-01T00:00:00Z",
                 "projects": [{"id": 9007199254740992i64, "name": "x"}]}]}),
            json!({"id": "u_1", "email": "a@example.com", "organizations": [
                {"id": "o_1", "name": "A", "joined_at": "2026-01-01T00:00:00Z",
                 "projects": [{"id": 0, "name": "x"}]}]}),
        ] {
            assert!(serde_json::from_value::<User>(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_not_named_public_are_secret() {
        let answer: CredentialsAnswer = serde_json::from_value(json!({
            "access_configuration": {"api_key": "pk", "host": "h", "secret_key": "sk", "other": "o"},
            "public_keys": ["api_key", "host", "not_there"]
        }))
        .unwrap();
        let credentials = Credentials::from(answer);
        assert_eq!(credentials.public.keys().collect::<Vec<_>>(), ["api_key", "host"]);
        assert_eq!(credentials.secret.keys().collect::<Vec<_>>(), ["other", "secret_key"]);
    }
}

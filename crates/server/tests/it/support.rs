//! A provider in-process on a fresh database per test (a SQLite file, or a PostgreSQL schema of its
//! own), and signed requests against it.

use axum::{
    Router,
    body::{Body, to_bytes},
    http::{Request, Response},
};
use provisio_protocol::signature;
use provisio_server::{
    AppState,
    catalog::Catalog,
    clock::Clock,
    config::Limits,
    domain::billing::Billing,
    orchestrators::{Orchestrator, Orchestrators},
    rate_limit::RateLimits,
    state::Parts,
    store::{Backend, Row, Store},
};
use provisio_testdb::Schema;
use serde_json::Value;
use tower::ServiceExt;

pub const SECRET: &str = "whsec_test_secret";
pub const NOW: i64 = 1_767_225_600;
pub const OPERATOR_TOKEN: &str = "op_test_token";
/// The consent orchestrator's `callback_url` in tests.
pub const CALLBACK_URL: &str = "https://orchestrator.example/callback";

pub struct TestApp {
    pub state: AppState,
    pub router: Router,
    /// The database's URL, for a second instance on it.
    pub database_url: String,
    rate_limits: RateLimits,
    /// Operator tokens for `/v1/connector/…` (none unless asked for: the endpoints do not exist).
    operator_tokens: Vec<String>,
    _db: TestDb,
}

tokio::task_local! {
    static BACKEND: Backend;
}

/// Runs `test` with `TestApp`s on `backend` (see `#[backend_test]`). PostgreSQL needs
/// `TEST_DATABASE_URL`; without it the test says so and passes.
pub async fn on_backend<F: std::future::Future<Output = ()>>(backend: Backend, test: fn() -> F) {
    if backend == Backend::Postgres && test_database_url().is_none() {
        eprintln!("skipped on PostgreSQL: TEST_DATABASE_URL is not set");
        return;
    }
    BACKEND.scope(backend, test()).await;
}

pub use provisio_testdb::database_url as test_database_url;

/// A database for one test, removed when the test ends.
pub enum TestDb {
    /// Another instance's database: the first one removes it.
    Shared,
    /// Kept for its lifetime: the directory goes when the test ends.
    Sqlite {
        _dir: tempfile::TempDir,
    },
    Postgres {
        _schema: Schema,
    },
}

impl TestDb {
    /// A fresh database on the backend of the running test, and its URL.
    pub fn new() -> (Self, String) {
        match BACKEND.try_with(|b| *b).unwrap_or(Backend::Sqlite) {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                (Self::Sqlite { _dir: dir }, url)
            }
            Backend::Postgres => {
                let schema = Schema::create(&test_database_url().unwrap(), "test");
                let url = schema.url();
                (Self::Postgres { _schema: schema }, url)
            }
        }
    }
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_secrets(&[SECRET]).await
    }

    pub async fn with_secrets(secrets: &[&str]) -> Self {
        Self::build(secrets, Limits::default()).await
    }

    /// The default orchestrator with some of its policies changed.
    pub async fn with_orchestrator(change: impl FnOnce(&mut Orchestrator)) -> Self {
        let mut orchestrator =
            Orchestrator::new("stripe", Some("Stripe".into()), &[SECRET.to_string()]);
        change(&mut orchestrator);
        Self::assemble(Orchestrators::new(vec![orchestrator]), Limits::default()).await
    }

    /// The default set-up with another billing backend.
    pub async fn with_billing(billing: Billing) -> Self {
        let orchestrators = Orchestrators::new(vec![Orchestrator::new(
            "stripe",
            Some("Stripe".into()),
            &[SECRET.to_string()],
        )]);
        Self::assemble_with(orchestrators, Limits::default(), billing).await
    }

    pub async fn build(secrets: &[&str], limits: Limits) -> Self {
        let secrets: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
        let orchestrators =
            Orchestrators::new(vec![Orchestrator::new("stripe", Some("Stripe".into()), &secrets)]);
        Self::assemble(orchestrators, limits).await
    }

    /// The default set-up with these rate limits (other tests run without limits).
    pub async fn with_rate_limits(rate_limits: RateLimits) -> Self {
        let orchestrators = Orchestrators::new(vec![Orchestrator::new(
            "stripe",
            Some("Stripe".into()),
            &[SECRET.to_string()],
        )]);
        Self::assemble_full(orchestrators, Limits::default(), Billing::Record, rate_limits).await
    }

    async fn assemble(orchestrators: Orchestrators, limits: Limits) -> Self {
        Self::assemble_with(orchestrators, limits, Billing::Record).await
    }

    async fn assemble_with(orchestrators: Orchestrators, limits: Limits, billing: Billing) -> Self {
        let unlimited = RateLimits { enabled: false, ..RateLimits::default() };
        Self::assemble_full(orchestrators, limits, billing, unlimited).await
    }

    async fn assemble_full(
        orchestrators: Orchestrators,
        limits: Limits,
        billing: Billing,
        rate_limits: RateLimits,
    ) -> Self {
        let (db, url) = TestDb::new();
        Self::open(orchestrators, limits, billing, rate_limits, vec![], db, url).await
    }

    /// The default set-up with `OPERATOR_TOKEN` as the operator token of `/v1/connector/…`.
    pub async fn with_operator_token() -> Self {
        let orchestrators = Orchestrators::new(vec![Orchestrator::new(
            "stripe",
            Some("Stripe".into()),
            &[SECRET.to_string()],
        )]);
        let unlimited = RateLimits { enabled: false, ..RateLimits::default() };
        let (db, url) = TestDb::new();
        let tokens = vec![OPERATOR_TOKEN.to_string()];
        Self::open(orchestrators, Limits::default(), Billing::Record, unlimited, tokens, db, url)
            .await
    }

    /// The default set-up in connector mode in front of `saas`, with events delivered to it when
    /// `events` is set.
    pub async fn with_connector(saas: &crate::saas::Saas, events: bool) -> Self {
        let (db, url) = TestDb::new();
        Self::open_integrated(saas, true, events, vec![], db, url).await
    }

    /// [`TestApp::with_connector`] with these operator tokens for `/v1/connector/…`.
    pub async fn with_connector_operator(
        saas: &crate::saas::Saas,
        events: bool,
        operator_tokens: &[&str],
    ) -> Self {
        let (db, url) = TestDb::new();
        let tokens = operator_tokens.iter().map(|t| t.to_string()).collect();
        Self::open_integrated(saas, true, events, tokens, db, url).await
    }

    /// Another connector-mode instance on this one's database.
    pub async fn another_connected(&self, saas: &crate::saas::Saas, events: bool) -> Self {
        let (tokens, url) = (self.operator_tokens.clone(), self.database_url.clone());
        Self::open_integrated(saas, true, events, tokens, TestDb::Shared, url).await
    }

    /// Connector mode with the default orchestrator's policies changed.
    pub async fn with_connector_orchestrator(
        saas: &crate::saas::Saas,
        change: impl FnOnce(&mut Orchestrator),
    ) -> Self {
        let mut orchestrator = default_orchestrator();
        change(&mut orchestrator);
        Setup {
            saas: Some(saas),
            connector: true,
            orchestrators: vec![orchestrator],
            ..Setup::default()
        }
        .open()
        .await
    }

    /// The consent leg: the default orchestrator on `linking = "consent"` with a callback URL, its
    /// sign-in links sent by `mailer`, in front of `saas` when given (connector mode).
    pub async fn with_consent(
        mailer: provisio_server::email::Mailer,
        saas: Option<&crate::saas::Saas>,
    ) -> Self {
        Setup { saas, connector: saas.is_some(), mailer: Some(mailer), ..Setup::consent() }
            .open()
            .await
    }

    /// Built-in mode, with events delivered to `saas`.
    pub async fn builtin_with_events(saas: &crate::saas::Saas) -> Self {
        Setup { saas: Some(saas), events: true, ..Setup::default() }.open().await
    }

    /// `saas` as the connector (when `connector`) and as the events receiver (when `events`).
    async fn open_integrated(
        saas: &crate::saas::Saas,
        connector: bool,
        events: bool,
        operator_tokens: Vec<String>,
        db: TestDb,
        url: String,
    ) -> Self {
        Setup { saas: Some(saas), connector, events, operator_tokens, ..Setup::default() }
            .open_on(db, url)
            .await
    }

    async fn open_setup(setup: Setup<'_>, db: TestDb, url: String) -> Self {
        let Setup {
            saas,
            connector,
            events,
            operator_tokens,
            orchestrators,
            mailer,
            rate_limits,
            accounts,
            provider,
            dashboard,
        } = setup;
        let (connector_url, events_url) = saas.map_or_else(
            || {
                (
                    "http://127.0.0.1:9/connector".to_string(),
                    "http://127.0.0.1:9/events".to_string(),
                )
            },
            |saas| (saas.connector_url(), saas.events_url()),
        );
        use provisio_server::connector::{Connector, ConnectorSpec, EventsSpec};
        let env = |var: &str| match var {
            "CONNECTOR_SECRET" => Some(crate::saas::CONNECTOR_SECRET.to_string()),
            "EVENTS_SECRET" => Some(crate::saas::EVENTS_SECRET.to_string()),
            _ => None,
        };
        let settings = ConnectorSpec {
            url: connector_url,
            secret_env: "CONNECTOR_SECRET".into(),
            timeout_ms: 500,
            deadline_ms: 1500,
            dashboard_origin: crate::saas::DASHBOARD_ORIGIN.into(),
            allow_insecure_http: false,
        }
        .validate(&env)
        .unwrap();
        let events = events.then(|| {
            EventsSpec {
                url: events_url,
                secret_env: "EVENTS_SECRET".into(),
                max_age_hours: 72,
                allow_insecure_http: false,
            }
            .validate(&env)
            .unwrap()
        });
        let orchestrators = Orchestrators::new(orchestrators);
        let store = Store::open(&url).await.unwrap();
        let state = AppState::new(Parts {
            store,
            orchestrators,
            catalog: Catalog::default_catalog(),
            limits: Limits::default(),
            public_url: "https://provider.example".into(),
            clock: Clock::manual(NOW),
            billing: Billing::Record,
            introspection_tokens: vec![OPERATOR_TOKEN.to_string()],
            operator_tokens: operator_tokens.clone(),
            server_secret: b"test-server-secret".to_vec(),
            rate_limits: rate_limits.clone(),
            connector: connector.then(|| Connector::new(settings).unwrap()),
            events,
            mailer,
            accounts,
            provider,
            dashboard,
        });
        let router = provisio_server::http::router(state.clone());
        Self { state, router, database_url: url, rate_limits, operator_tokens, _db: db }
    }

    /// Delivers the due events of the outbox once (what the worker does on every poll).
    pub async fn deliver_events(&self) -> usize {
        let settings = self.state.events.clone().expect("events are configured");
        provisio_server::events::delivery::Delivery::new(
            self.state.store.clone(),
            self.state.clock.clone(),
            settings,
        )
        .unwrap()
        .deliver_due()
        .await
        .unwrap()
    }

    /// A second instance of the default set-up on this one's database, with the same rate limits.
    pub async fn another_instance(&self) -> Self {
        let orchestrators = Orchestrators::new(vec![Orchestrator::new(
            "stripe",
            Some("Stripe".into()),
            &[SECRET.to_string()],
        )]);
        let (limits, url) = (self.rate_limits.clone(), self.database_url.clone());
        let tokens = self.operator_tokens.clone();
        Self::open(
            orchestrators,
            Limits::default(),
            Billing::Record,
            limits,
            tokens,
            TestDb::Shared,
            url,
        )
        .await
    }

    async fn open(
        orchestrators: Orchestrators,
        limits: Limits,
        billing: Billing,
        rate_limits: RateLimits,
        operator_tokens: Vec<String>,
        db: TestDb,
        url: String,
    ) -> Self {
        let store = Store::open(&url).await.unwrap();
        let state = AppState::new(Parts {
            store,
            orchestrators,
            catalog: Catalog::default_catalog(),
            limits,
            public_url: "https://provider.example".into(),
            clock: Clock::manual(NOW),
            billing,
            introspection_tokens: vec![OPERATOR_TOKEN.to_string()],
            operator_tokens: operator_tokens.clone(),
            server_secret: b"test-server-secret".to_vec(),
            rate_limits: rate_limits.clone(),
            connector: None,
            events: None,
            mailer: None,
            accounts: Default::default(),
            provider: Default::default(),
            dashboard: Default::default(),
        });
        let router = provisio_server::http::router(state.clone());
        Self { state, router, database_url: url, rate_limits, operator_tokens, _db: db }
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let (method, path) = (request.method().to_string(), request.uri().path().to_string());
        let response = self.router.clone().oneshot(request).await.unwrap();
        Reply::read(response, &method, &path).await
    }

    /// A signed account request with this body.
    pub async fn account_request(&self, body: &Value) -> Reply {
        self.send(Req::json("/provisioning/account_requests", body).build()).await
    }

    /// The code of a successful default-mode account request for `email`.
    pub async fn code_for(&self, email: &str) -> String {
        self.code_with(account_body(&unique_id(), email)).await
    }

    pub async fn code_with(&self, body: Value) -> String {
        let reply = self.account_request(&body).await;
        assert_eq!(reply.status, 200, "{}", reply.json);
        reply.json["oauth"]["code"].as_str().unwrap().to_string()
    }

    /// A signed form post to the token endpoint.
    pub async fn token(&self, form: &str) -> Reply {
        self.send(Req::form("/oauth/token", form).build()).await
    }

    /// Redeems a code with a signed request; asserts success.
    pub async fn redeem(&self, code: &str) -> Value {
        let reply = self.token(&format!("grant_type=authorization_code&code={code}")).await;
        assert_eq!(reply.status, 200, "{}", reply.json);
        reply.json
    }

    /// A fresh user's tokens: account request, then code exchange.
    pub async fn tokens_for(&self, email: &str) -> Value {
        let code = self.code_for(email).await;
        self.redeem(&code).await
    }

    /// Any answer, HTML included: status, headers, body text.
    pub async fn raw(&self, request: Request<Body>) -> (u16, axum::http::HeaderMap, String) {
        let (method, path) = (request.method().to_string(), request.uri().path().to_string());
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        crate::documented::check(&method, &path, status, content_type(&headers), &bytes);
        (status, headers, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// A browser GET, with a session cookie when given.
    pub async fn browse(
        &self,
        path: &str,
        cookie: Option<&str>,
    ) -> (u16, axum::http::HeaderMap, String) {
        let mut builder = Request::builder().uri(path);
        if let Some(cookie) = cookie {
            builder = builder.header("cookie", cookie);
        }
        self.raw(builder.body(Body::empty()).unwrap()).await
    }

    /// Asks the introspection endpoint about a key.
    pub async fn introspect(&self, key: &str) -> Value {
        let reply = self
            .send(
                Req::form("/v1/keys/introspect", &format!("token={key}"))
                    .signature(None)
                    .header("authorization", &format!("Bearer {OPERATOR_TOKEN}"))
                    .build(),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.json);
        reply.json
    }

    /// A signed request carrying a bearer token.
    pub async fn with_bearer(&self, req: Req, access_token: &str) -> Reply {
        self.send(req.header("authorization", &format!("Bearer {access_token}")).build()).await
    }

    /// `POST /provisioning/resources` with this body and token.
    pub async fn provision(&self, access_token: &str, body: &Value) -> Reply {
        self.with_bearer(Req::json("/provisioning/resources", body), access_token).await
    }

    pub async fn principal(
        &self,
        access_token: &str,
    ) -> Result<provisio_server::domain::auth::Principal, provisio_server::domain::auth::AuthError>
    {
        let header = format!("Bearer {access_token}");
        provisio_server::domain::auth::authenticate(
            &self.state.store,
            Some(header.as_bytes()),
            self.state.clock.now(),
        )
        .await
    }

    /// Rows in a table.
    pub async fn count(&self, table: &str) -> i64 {
        self.scalar_i64(&format!("SELECT COUNT(*) FROM {table}")).await
    }

    /// Runs statements directly (seeding states the protocol cannot reach).
    pub async fn exec(&self, sql: &str) {
        let sql = sql.to_string();
        self.state.store.write(move |conn| conn.execute_batch(&sql)).await.unwrap();
    }

    /// Every row of one query.
    pub async fn rows(&self, sql: &str) -> Vec<Row> {
        let sql = sql.to_string();
        self.state.store.read(move |conn| conn.query(&sql, &[])).await.unwrap()
    }

    pub async fn scalar_i64(&self, sql: &str) -> i64 {
        self.rows(sql).await[0].int(0).unwrap()
    }

    pub async fn scalar_text(&self, sql: &str) -> String {
        self.rows(sql).await[0].text(0).unwrap()
    }
}

/// What a test app is made of, beyond the defaults.
pub struct Setup<'a> {
    /// The SaaS behind provisio (connector mode) and the events receiver.
    pub saas: Option<&'a crate::saas::Saas>,
    pub connector: bool,
    pub events: bool,
    pub operator_tokens: Vec<String>,
    pub orchestrators: Vec<Orchestrator>,
    pub mailer: Option<provisio_server::email::Mailer>,
    pub rate_limits: RateLimits,
    /// `[accounts]`.
    pub accounts: provisio_server::registration::AccountSettings,
    /// `[provider]`.
    pub provider: provisio_server::registration::ProviderSpec,
    /// `[dashboard]`.
    pub dashboard: provisio_server::web::Brand,
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Self {
            saas: None,
            connector: false,
            events: false,
            operator_tokens: vec![],
            orchestrators: vec![default_orchestrator()],
            mailer: None,
            rate_limits: RateLimits { enabled: false, ..RateLimits::default() },
            accounts: Default::default(),
            provider: Default::default(),
            dashboard: Default::default(),
        }
    }
}

impl Setup<'_> {
    /// The default orchestrator on `linking = "consent"`, returning to [`CALLBACK_URL`].
    pub fn consent() -> Self {
        Self { orchestrators: vec![consent_orchestrator("stripe")], ..Self::default() }
    }

    /// A fresh database for it.
    pub async fn open(self) -> TestApp {
        let (db, url) = TestDb::new();
        self.open_on(db, url).await
    }

    async fn open_on(self, db: TestDb, url: String) -> TestApp {
        TestApp::open_setup(self, db, url).await
    }
}

/// An orchestrator on `linking = "consent"` returning to [`CALLBACK_URL`], signing with [`SECRET`].
pub fn consent_orchestrator(name: &str) -> Orchestrator {
    let mut orchestrator = Orchestrator::new(name, Some(name.into()), &[SECRET.to_string()]);
    if name == "stripe" {
        orchestrator.label = "Stripe".into();
    }
    orchestrator.linking = provisio_server::orchestrators::LinkingPolicy::Consent;
    orchestrator.callback_url = Some(CALLBACK_URL.into());
    orchestrator
}

/// The orchestrator every test app trusts: `stripe`, signing with [`SECRET`].
fn default_orchestrator() -> Orchestrator {
    Orchestrator::new("stripe", Some("Stripe".into()), &[SECRET.to_string()])
}

/// A timestamp inside the signature window that differs from call to call of the same caller (the
/// `Authorization` header, `None` without one), so two requests with the same body are two requests:
/// a byte-identical signed request is a replay (answered from record), and a signature seen on
/// another path is refused. Counted per caller (each test's tokens are its own), so another
/// test's requests never bring a test's own timestamps round again.
fn fresh_timestamp(caller: Option<&str>) -> i64 {
    use std::{collections::HashMap, sync::Mutex};
    static NEXT: Mutex<Option<HashMap<String, i64>>> = Mutex::new(None);
    let mut next = NEXT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let counter =
        next.get_or_insert_with(HashMap::new).entry(caller.unwrap_or("").into()).or_default();
    *counter += 1;
    NOW - (*counter - 1) % 250
}

/// A minimal valid account request.
pub fn account_body(id: &str, email: &str) -> Value {
    provisio_orchestrator::client::account_request_body(id, email, "acct_test")
}

pub fn unique_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("ar_{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A request builder with the protocol's headers.
pub struct Req {
    method: &'static str,
    path: String,
    body: Vec<u8>,
    /// `None`: signed over the final body with a fresh timestamp when built.
    signature: Option<Option<String>>,
    api_version: Option<String>,
    headers: Vec<(String, String)>,
}

impl Req {
    pub fn get(path: &str) -> Self {
        Self::new("GET", path, Vec::new())
    }

    pub fn post(path: &str, body: impl Into<Vec<u8>>) -> Self {
        Self::new("POST", path, body.into())
    }

    pub fn json(path: &str, body: &Value) -> Self {
        Self::post(path, serde_json::to_vec(body).unwrap())
            .header("content-type", "application/json")
    }

    pub fn form(path: &str, form: &str) -> Self {
        Self::post(path, form.as_bytes().to_vec())
            .header("content-type", "application/x-www-form-urlencoded")
    }

    fn new(method: &'static str, path: &str, body: Vec<u8>) -> Self {
        Self {
            method,
            path: path.into(),
            body,
            signature: None,
            api_version: Some("0.1d".into()),
            headers: vec![],
        }
    }

    /// Signs with these secrets at this time instead.
    pub fn signed_with(mut self, secrets: &[&str], at: i64) -> Self {
        self.signature = Some(Some(signature::header_value(secrets, at, &self.body)));
        self
    }

    pub fn signature(mut self, value: Option<&str>) -> Self {
        self.signature = Some(value.map(String::from));
        self
    }

    pub fn api_version(mut self, value: Option<&str>) -> Self {
        self.api_version = value.map(String::from);
        self
    }

    /// Replaces the body after signing, as a tampering proxy would.
    pub fn tamper(mut self, body: impl Into<Vec<u8>>) -> Self {
        let signed = self.signature.take().unwrap_or_else(|| Some(self.default_signature()));
        self.signature = Some(signed);
        self.body = body.into();
        self
    }

    fn default_signature(&self) -> String {
        let caller = self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("authorization"));
        let at = fresh_timestamp(caller.map(|(_, v)| v.as_str()));
        signature::header_value(&[SECRET], at, &self.body)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn build(self) -> Request<Body> {
        let signature = match self.signature.clone() {
            Some(chosen) => chosen,
            None => Some(self.default_signature()),
        };
        let mut builder = Request::builder().method(self.method).uri(self.path);
        if let Some(sig) = signature {
            builder = builder.header("Stripe-Signature", sig);
        }
        if let Some(v) = self.api_version {
            builder = builder.header("API-Version", v);
        }
        for (k, v) in self.headers {
            builder = builder.header(k, v);
        }
        builder.body(Body::from(self.body)).unwrap()
    }
}

fn content_type(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok())
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: axum::http::HeaderMap,
    pub json: Value,
}

impl Reply {
    async fn read(response: Response<Body>, method: &str, path: &str) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        crate::documented::check(method, path, status, content_type(&headers), &bytes);
        let json = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!("status {status}: body is not JSON: {:?}", String::from_utf8_lossy(&bytes))
        });
        Self { status, headers, json }
    }

    /// Asserts status and the whole body.
    #[track_caller]
    pub fn assert(&self, status: u16, body: Value) {
        assert_eq!((self.status, &self.json), (status, &body));
    }
}

//! A SaaS behind provisio for the connector tests: the connector contract served over real HTTP on
//! loopback, in memory, verifying every call with the `standardwebhooks` crate. It keeps what a
//! real SaaS keeps (users, organizations, projects, credentials per resource, answers by
//! `webhook-id`) and lets a test inject faults per operation.

use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Value, json};
use standardwebhooks::Webhook;

pub const CONNECTOR_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
pub const EVENTS_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
pub const DASHBOARD_ORIGIN: &str = "https://app.saas.test";

/// What the SaaS does to the next call of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status with an HTML body, doing nothing.
    Status(u16),
    /// Refuse with this code (a 4xx with the error object).
    Refuse(u16, &'static str),
    /// Do the work, then answer 503: the answer is lost, as when provisio dies mid-call.
    LoseAnswer,
    /// Wait this long before doing anything.
    Delay(u64),
    /// Do the work, say so (`Saas::held`), and answer only once released (`Saas::release`): the
    /// window in which provisio can be killed between the call and recording its outcome.
    Hold,
}

/// A SaaS that gets the contract wrong on purpose, for `provisio connector-check`'s tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broken {
    /// Answers calls whatever their signature.
    SkipsSignatures,
    /// Makes a second user for an address that exists, under a new webhook-id.
    UserPerWebhookId,
    /// Answers an unknown address with `{"user":{}}`.
    EmptyUser,
    /// Writes project ids as strings.
    StringProjectIds,
}

/// An organization to seed: name, the user's `joined_at`, and projects `(name, demo)`.
pub type SeedOrganization<'a> = (&'a str, &'a str, &'a [(&'a str, bool)]);

#[derive(Debug, Clone)]
pub struct SaasUser {
    pub id: String,
    pub email: String,
    pub verified: bool,
    /// (organization id, joined_at)
    pub memberships: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct SaasProject {
    pub id: i64,
    pub organization: String,
    pub name: String,
    pub demo: bool,
}

#[derive(Default)]
pub struct World {
    pub users: Vec<SaasUser>,
    pub organizations: BTreeMap<String, String>,
    pub projects: Vec<SaasProject>,
    next_id: i64,
    /// Answers of state-changing calls, by webhook-id.
    answers: HashMap<String, Value>,
    running: HashSet<String>,
    /// Live secret per resource id (connector-issued), and how many were ever minted.
    pub live_secret: HashMap<String, String>,
    pub minted: HashMap<String, usize>,
    pub services: HashMap<String, String>,
    /// Every call: (operation, webhook-id).
    pub calls: Vec<(String, String)>,
    /// Every call's body, by operation, in order.
    pub bodies: Vec<(String, Value)>,
    faults: HashMap<String, VecDeque<Fault>>,
    /// Events received (bodies), and faults for the events endpoint.
    pub events: Vec<Value>,
    pub event_deliveries: usize,
    /// Sign-in tokens handed out by dashboard.login.
    pub logins: Vec<String>,
    held: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Notify>,
    /// Where dashboard.login sends users (default: the configured dashboard origin).
    pub login_origin: Option<String>,
    /// A contract rule this SaaS breaks.
    pub broken: Option<Broken>,
}

#[derive(Clone)]
pub struct Saas {
    pub url: String,
    pub world: Arc<Mutex<World>>,
    _server: Arc<tokio::task::JoinHandle<()>>,
}

impl Saas {
    pub async fn start() -> Self {
        let world = Arc::new(Mutex::new(World { next_id: 1000, ..World::default() }));
        let app = Router::new()
            .route("/connector/{operation}", post(operation))
            .route("/events", post(event))
            .with_state(world.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url: format!("http://{addr}"), world, _server: Arc::new(server) }
    }

    pub fn connector_url(&self) -> String {
        format!("{}/connector", self.url)
    }

    pub fn events_url(&self) -> String {
        format!("{}/events", self.url)
    }

    pub fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap()
    }

    /// Queues faults for the next calls of `operation` (`events` for event deliveries).
    pub fn fail(&self, operation: &str, faults: &[Fault]) {
        self.world().faults.entry(operation.into()).or_default().extend(faults.iter().copied());
    }

    /// The events received, ordered as the SaaS would order them: by `sequence` (they may arrive
    /// in any order).
    pub fn events_in_order(&self) -> Vec<Value> {
        let mut events = self.world().events.clone();
        events.sort_by_key(|e| e["sequence"].as_i64());
        events
    }

    /// Waits until a call under [`Fault::Hold`] has done its work.
    pub async fn held(&self) {
        let held = self.world().held.clone();
        held.notified().await;
    }

    /// Lets held calls answer.
    pub fn release(&self) {
        self.world().release.notify_waiters();
    }

    pub fn clear_faults(&self, operation: &str) {
        self.world().faults.remove(operation);
    }

    /// Seeds an existing user: organizations `(name, joined_at, [(project, demo)])`.
    pub fn seed_user(
        &self,
        email: &str,
        verified: bool,
        organizations: &[SeedOrganization<'_>],
    ) -> String {
        let mut world = self.world();
        let user_id = world.new_id("u");
        let mut memberships = vec![];
        for (name, joined_at, projects) in organizations {
            let org = world.new_id("o");
            world.organizations.insert(org.clone(), name.to_string());
            for (project, demo) in *projects {
                let id = world.next();
                world.projects.push(SaasProject {
                    id,
                    organization: org.clone(),
                    name: project.to_string(),
                    demo: *demo,
                });
            }
            memberships.push((org, joined_at.to_string()));
        }
        world.users.push(SaasUser {
            id: user_id.clone(),
            email: email.into(),
            verified,
            memberships,
        });
        user_id
    }

    /// Calls of `operation` so far, with their webhook-ids.
    pub fn calls(&self, operation: &str) -> Vec<String> {
        self.world()
            .calls
            .iter()
            .filter(|(op, _)| op == operation)
            .map(|(_, id)| id.clone())
            .collect()
    }

    pub fn users_with(&self, email: &str) -> usize {
        self.world().users.iter().filter(|u| u.email.eq_ignore_ascii_case(email)).count()
    }

    pub fn project_ids_of(&self, organization: &str) -> Vec<i64> {
        self.world()
            .projects
            .iter()
            .filter(|p| p.organization == organization)
            .map(|p| p.id)
            .collect()
    }
}

impl World {
    fn next(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    fn new_id(&mut self, prefix: &str) -> String {
        format!("{prefix}_{}", self.next())
    }

    fn user_json(&self, user: &SaasUser) -> Value {
        let organizations: Vec<Value> = user
            .memberships
            .iter()
            .map(|(org, joined_at)| {
                let projects: Vec<Value> = self
                    .projects
                    .iter()
                    .filter(|p| &p.organization == org)
                    .map(|p| json!({"id": self.project_id(p.id), "name": p.name, "demo": p.demo}))
                    .collect();
                json!({"id": org, "name": self.organizations[org], "joined_at": joined_at, "projects": projects})
            })
            .collect();
        json!({"id": user.id, "email": user.email, "email_verified": user.verified, "organizations": organizations})
    }

    /// A project id as this SaaS writes it.
    fn project_id(&self, id: i64) -> Value {
        if self.broken == Some(Broken::StringProjectIds) {
            json!(id.to_string())
        } else {
            json!(id)
        }
    }

    fn find(&self, email: &str) -> Option<&SaasUser> {
        self.users.iter().find(|u| u.email.trim().eq_ignore_ascii_case(email.trim()))
    }

    fn mint(&mut self, resource_id: &str) -> Value {
        let n = self.minted.entry(resource_id.into()).or_default();
        *n += 1;
        let secret = format!("sk_{resource_id}_{n}");
        self.live_secret.insert(resource_id.into(), secret.clone());
        json!({
            "access_configuration": {"api_key": format!("pk_{resource_id}"), "host": "https://api.saas.test", "secret_key": secret},
            "public_keys": ["api_key", "host"],
        })
    }

    /// The work of one state-changing operation; `Err` is a refusal `(status, code)`.
    fn work(&mut self, operation: &str, body: &Value) -> Answer {
        let s = |k: &str| body[k].as_str().unwrap_or_default().to_string();
        let member = |w: &World| {
            w.users.iter().any(|u| {
                u.id == s("user_id")
                    && u.memberships.iter().any(|(o, _)| *o == s("organization_id"))
            })
        };
        match operation {
            "users.create" => {
                if self.find(&s("email")).is_some() && self.broken != Some(Broken::UserPerWebhookId)
                {
                    return Err((409, "user_exists"));
                }
                let user_id = self.new_id("u");
                let org = self.new_id("o");
                self.organizations.insert(org.clone(), s("organization_name"));
                let project = self.next();
                self.projects.push(SaasProject {
                    id: project,
                    organization: org.clone(),
                    name: s("project_name"),
                    demo: false,
                });
                let user = SaasUser {
                    id: user_id,
                    email: s("email"),
                    verified: true,
                    memberships: vec![(org.clone(), "2026-11-29T00:00:00Z".into())],
                };
                self.users.push(user.clone());
                let project = self.project_id(project);
                Ok(
                    json!({"user": self.user_json(&user), "organization_id": org, "project_id": project}),
                )
            }
            "projects.create" => {
                if !member(self) {
                    return Err((400, "not_a_member"));
                }
                let id = self.next();
                self.projects.push(SaasProject {
                    id,
                    organization: s("organization_id"),
                    name: s("name"),
                    demo: false,
                });
                Ok(
                    json!({"project": {"id": self.project_id(id), "name": s("name"), "demo": false}}),
                )
            }
            "resources.provision" | "resources.rotate" => {
                if !member(self) {
                    return Err((400, "not_a_member"));
                }
                let project = body["project_id"].as_i64().unwrap_or_default();
                if !self.projects.iter().any(|p| p.id == project) {
                    return Err((400, "project_gone"));
                }
                if operation == "resources.provision" {
                    if body["payment"].is_null() && s("service_id") == "pay_as_you_go" {
                        return Err((400, "requires_payment_credentials"));
                    }
                    self.services.insert(s("resource_id"), s("service_id"));
                }
                Ok(self.mint(&s("resource_id")))
            }
            "resources.update_service" => {
                if !member(self) {
                    return Err((400, "not_a_member"));
                }
                self.services.insert(s("resource_id"), s("service_id"));
                Ok(json!({}))
            }
            "resources.remove" => {
                self.live_secret.remove(&s("resource_id"));
                Ok(json!({}))
            }
            _ => Err((404, "unknown_operation")),
        }
    }
}

fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let mut map = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        if let Some(v) = headers.get(name) {
            map.insert(name, v.as_bytes().try_into().unwrap());
        }
    }
    Webhook::new(secret).unwrap().verify(body, &map).is_ok()
}

fn refusal(status: u16, code: &str) -> Response {
    let body = json!({"error": {"code": code, "message": format!("refused: {code}")}});
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

fn html(status: u16) -> Response {
    (StatusCode::from_u16(status).unwrap(), "<html>down</html>").into_response()
}

async fn next_fault(world: &Mutex<World>, operation: &str) -> Option<Fault> {
    let fault = world.lock().unwrap().faults.get_mut(operation).and_then(VecDeque::pop_front);
    if let Some(Fault::Delay(ms)) = fault {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        return None;
    }
    fault
}

async fn operation(
    State(world): State<Arc<Mutex<World>>>,
    Path(operation): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let checks_signatures = world.lock().unwrap().broken != Some(Broken::SkipsSignatures);
    if checks_signatures
        && (!verify(CONNECTOR_SECRET, &headers, &body)
            || headers.get("connector-version").map(|v| v.as_bytes()) != Some(b"1"))
    {
        return refusal(401, "invalid_signature");
    }
    let id =
        headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    world.lock().unwrap().calls.push((operation.clone(), id.clone()));
    let fault = next_fault(&world, &operation).await;
    match fault {
        Some(Fault::Status(status)) => return html(status),
        Some(Fault::Refuse(status, code)) => return refusal(status, code),
        _ => {}
    }
    let body: Value = serde_json::from_slice(&body).unwrap();
    world.lock().unwrap().bodies.push((operation.clone(), body.clone()));
    let Some((answer, held, release)) = answer(&world, &operation, &id, &body) else {
        return html(503);
    };
    if fault == Some(Fault::Hold) {
        let released = release.notified();
        held.notify_one();
        released.await;
    }
    match (answer, fault) {
        (_, Some(Fault::LoseAnswer)) => html(503),
        (Ok(answer), _) => axum::Json(answer).into_response(),
        (Err((status, code)), _) => refusal(status, code),
    }
}

/// An operation's answer, or its refusal `(status, code)`.
type Answer = Result<Value, (u16, &'static str)>;
type Signal = Arc<tokio::sync::Notify>;

/// The answer to one call (`None`: a duplicate of a call still running), and the hold signals.
fn answer(
    world: &Mutex<World>,
    operation: &str,
    id: &str,
    body: &Value,
) -> Option<(Answer, Signal, Signal)> {
    let mut w = world.lock().unwrap();
    let answer = match operation {
        "health" => Ok(json!({"connector_version": 1})),
        "users.lookup" => {
            let user = w.find(body["email"].as_str().unwrap_or_default()).cloned();
            match user {
                None if w.broken == Some(Broken::EmptyUser) => Ok(json!({"user": {}})),
                user => Ok(json!({"user": user.map(|u| w.user_json(&u))})),
            }
        }
        "dashboard.login" => {
            let token = format!("login_{}", w.logins.len() + 1);
            w.logins.push(token.clone());
            let origin = w.login_origin.clone().unwrap_or_else(|| DASHBOARD_ORIGIN.into());
            Ok(json!({"url": format!("{origin}/session?token={token}")}))
        }
        _ => {
            if let Some(recorded) = w.answers.get(id) {
                Ok(recorded.clone())
            } else if !w.running.insert(id.to_string()) {
                return None;
            } else {
                let done = w.work(operation, body);
                w.running.remove(id);
                if let Ok(answer) = &done {
                    w.answers.insert(id.to_string(), answer.clone());
                }
                done
            }
        }
    };
    Some((answer, w.held.clone(), w.release.clone()))
}

async fn event(
    State(world): State<Arc<Mutex<World>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !verify(EVENTS_SECRET, &headers, &body) {
        return refusal(401, "invalid_signature");
    }
    let fault = next_fault(&world, "events").await;
    let mut w = world.lock().unwrap();
    w.event_deliveries += 1;
    match fault {
        Some(Fault::Status(status)) => html(status),
        Some(Fault::Refuse(status, code)) => refusal(status, code),
        _ => {
            let body: Value = serde_json::from_slice(&body).unwrap();
            w.events.push(body);
            StatusCode::NO_CONTENT.into_response()
        }
    }
}

//! The suite judges any provider fairly: where the contract allows more than one answer, a provider
//! that gives the *other* allowed answer (the real provider behind a proxy that rewrites it) passes
//! `--strict-protocol-only` with no failure. Without that flag, only the `[provisio]` checks of
//! provisio's own choice among those answers fail — each proxy names them, so they are proven to
//! fail when a provider chooses otherwise.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use axum::http::{HeaderMap, HeaderValue, Method};
use provisio_orchestrator::conformance::{Config, Report, Scope};
use provisio_protocol::signature::{header_value, sign};
use serde_json::{Value, json};

use crate::{
    proxy::{Answer, Breakage, Forward, Proxy},
    support::{RealServer, SECRET, run_with},
};

/// The suite against the real provider behind `breakage`, with `--strict-protocol-only` or not.
async fn report(breakage: impl Breakage, strict_protocol_only: bool) -> Report {
    let server = RealServer::start().await;
    let proxy = Proxy::start(&server.base_url, breakage).await;
    run_with(Config { strict_protocol_only, ..Config::new(&proxy.base_url, SECRET) }).await
}

/// Asserts that the provider behind `breakage` passes with `--strict-protocol-only`, and that
/// without it exactly the `provisio` checks fail (each `[provisio]`).
async fn passes_the_protocol<B: Breakage>(breakage: impl Fn() -> B, provisio: &[&str]) {
    let strict = report(breakage(), true).await;
    assert_eq!(strict.failed_ids(), Vec::<&str>::new(), "\n{}", strict.table());
    assert!(strict.passed > 100, "{}", strict.summary());

    let all = report(breakage(), false).await;
    let mut failed = all.failed_ids();
    failed.sort_unstable();
    let mut want = provisio.to_vec();
    want.sort_unstable();
    assert_eq!(failed, want, "\n{}", all.table());
    for id in provisio {
        let check = all.checks.iter().find(|c| c.id == *id).unwrap();
        assert_eq!(check.scope, Scope::Provisio, "{id} tests provisio's own choice");
    }
}

/// How often a proxy gave the other answer: a proxy that never did would pass vacuously.
#[derive(Clone, Default)]
struct Hits(Arc<AtomicUsize>);

impl Hits {
    fn hit(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn assert_some(&self, what: &str) {
        assert!(self.0.load(Ordering::Relaxed) > 0, "the proxy never {what}");
    }
}

/// The body of an answer that is an error in the status envelope.
fn status_error(answer: &Answer) -> Option<Value> {
    answer.json().filter(|body| body["status"] == "error" && body["error"].is_object())
}

/// The timestamp of a `Stripe-Signature` that is genuine for the request's body.
fn genuine_timestamp(request: &Forward) -> Option<i64> {
    let header = request.headers.get("stripe-signature")?.to_str().ok()?;
    let items: Vec<_> = header.split(',').filter_map(|i| i.split_once('=')).collect();
    let t: i64 = items.iter().find(|(k, _)| *k == "t")?.1.parse().ok()?;
    let digest = sign(SECRET.as_bytes(), t, &request.body);
    items.iter().any(|(k, v)| *k == "v1" && v.eq_ignore_ascii_case(&digest)).then_some(t)
}

/// Replaces a request's JSON body; a genuinely signed request is signed again over the new bytes at
/// its own timestamp (as the orchestrator would have signed that body), any other keeps its header.
fn rewrite_body(request: &mut Forward, body: &Value) {
    let t = genuine_timestamp(request);
    request.body = serde_json::to_vec(body).unwrap();
    if let Some(t) = t {
        let signed = header_value(&[SECRET], t, &request.body);
        request.headers.insert("stripe-signature", HeaderValue::from_str(&signed).unwrap());
    }
}

fn is(request: &Forward, method: Method, path: &str) -> bool {
    request.method == method && request.path == path
}

fn json_error(status: u16, body: &Value) -> Answer {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    Answer { status, headers, body: serde_json::to_vec(body).unwrap() }
}

/// Bearer failures name no resource: the status envelope's `id` is `""` on every 401 (as the
/// reference provider answers; spec 4 allows the resource id or `""`).
struct AnonymousBearerFailures;

impl Breakage for AnonymousBearerFailures {
    fn response(&self, _request: &Forward, answer: &mut Answer) {
        if answer.status == 401
            && let Some(mut body) = status_error(answer)
        {
            body["id"] = json!("");
            answer.set_json(&body);
        }
    }
}

#[tokio::test]
async fn bearer_failures_with_an_empty_id_pass_the_protocol() {
    passes_the_protocol(|| AnonymousBearerFailures, &["resources.bearer_failure_names_resource"])
        .await;
}

/// Bearer failures under another code and other words (the spec names none for them).
struct OtherBearerCode;

impl Breakage for OtherBearerCode {
    fn response(&self, _request: &Forward, answer: &mut Answer) {
        if answer.status == 401
            && let Some(mut body) = status_error(answer)
        {
            body["error"] = json!({"code": "invalid_token", "message": "Bad access token"});
            answer.set_json(&body);
        }
    }
}

#[tokio::test]
async fn bearer_failures_under_another_code_pass_the_protocol() {
    passes_the_protocol(
        || OtherBearerCode,
        &[
            "resources.missing_bearer_message",
            "resources.invalid_bearer_message",
            "resources.bearer_failure_names_resource",
        ],
    )
    .await;
}

/// No status error names a resource: `id` is `""` on every one (spec 4 allows it everywhere).
struct AnonymousStatusErrors;

impl Breakage for AnonymousStatusErrors {
    fn response(&self, _request: &Forward, answer: &mut Answer) {
        if let Some(mut body) = status_error(answer) {
            body["id"] = json!("");
            answer.set_json(&body);
        }
    }
}

#[tokio::test]
async fn status_errors_with_an_empty_id_pass_the_protocol() {
    passes_the_protocol(
        || AnonymousStatusErrors,
        &["resources.bearer_failure_names_resource", "resources.error_names_resource"],
    )
    .await;
}

/// A boolean `configuration.team_id` counts as an integer (as in languages where a boolean is
/// one): the provider treats `true` as a `team_id` it does not need — for a new email, none.
struct BooleanTeamId;

impl Breakage for BooleanTeamId {
    fn request(&self, request: &mut Forward) -> Option<Answer> {
        if !is(request, Method::POST, "/provisioning/account_requests") {
            return None;
        }
        let mut body: Value = serde_json::from_slice(&request.body).ok()?;
        let configuration = body.get_mut("configuration")?.as_object_mut()?;
        if configuration.get("team_id")?.is_boolean() {
            configuration.remove("team_id");
            rewrite_body(request, &body);
        }
        None
    }
}

#[tokio::test]
async fn a_boolean_team_id_accepted_passes_the_protocol() {
    passes_the_protocol(|| BooleanTeamId, &["accounts.team_id_bool_refused"]).await;
}

/// `update_service` to an unknown service in other words (spec 5.7 gives none).
struct OtherUnknownServiceWords;

impl Breakage for OtherUnknownServiceWords {
    fn response(&self, request: &Forward, answer: &mut Answer) {
        if request.path.ends_with("/update_service")
            && let Some(mut body) = status_error(answer)
            && body["error"]["code"] == "unknown_service"
        {
            body["error"]["message"] = json!("No such service in the catalog");
            answer.set_json(&body);
        }
    }
}

#[tokio::test]
async fn other_words_for_an_unknown_update_target_pass_the_protocol() {
    passes_the_protocol(|| OtherUnknownServiceWords, &["resources.update_unknown_service_message"])
        .await;
}

/// A recorded `Idempotency-Key` answer is replayed from parsed JSON: the same JSON in other bytes
/// (sorted keys, pretty-printed).
struct ReplaysInOtherBytes(Hits);

impl Breakage for ReplaysInOtherBytes {
    fn response(&self, _request: &Forward, answer: &mut Answer) {
        let replayed = answer.headers.get("idempotent-replayed").is_some_and(|v| v == "true");
        if replayed && let Some(body) = answer.json() {
            answer.body = serde_json::to_vec_pretty(&body).unwrap();
            self.0.hit();
        }
    }
}

#[tokio::test]
async fn replays_in_other_bytes_pass_the_protocol() {
    let hits = Hits::default();
    passes_the_protocol(|| ReplaysInOtherBytes(hits.clone()), &[]).await;
    hits.assert_some("rewrote a replay");
}

/// Bodies under one `Idempotency-Key` are compared without the fields the provider ignores (spec 4:
/// unknown fields are ignored): the proxy drops them before the provider sees the body. No keyed
/// request of the suite carries one any more (`idempotency_key_conflict` once told its two bodies
/// apart by an unknown field alone, and failed here): this guards against one that would.
struct KeyedBodiesWithoutUnknownFields;

/// The fields of a resource create or update that spec 5.5 and 5.7 define.
const KNOWN: [&str; 7] = [
    "service_id",
    "configuration",
    "project_id",
    "orchestrator_resource_id",
    "environment",
    "payment_credentials",
    "actor",
];

impl Breakage for KeyedBodiesWithoutUnknownFields {
    fn request(&self, request: &mut Forward) -> Option<Answer> {
        request.headers.get("idempotency-key")?;
        if !request.path.starts_with("/provisioning/resources") {
            return None;
        }
        let mut body: Value = serde_json::from_slice(&request.body).ok()?;
        let fields = body.as_object_mut()?;
        let before = fields.len();
        fields.retain(|key, _| KNOWN.contains(&key.as_str()));
        if fields.len() != before {
            rewrite_body(request, &body);
        }
        None
    }
}

#[tokio::test]
async fn keyed_bodies_compared_without_unknown_fields_pass_the_protocol() {
    passes_the_protocol(|| KeyedBodiesWithoutUnknownFields, &[]).await;
}

/// The token endpoint looks the code up before it checks `API-Version` or a present signature: a
/// code the provider never issued is `invalid_grant` whatever else is wrong (spec 3.4 orders
/// neither against the lookup). Issued codes are read from the account request answers.
#[derive(Default)]
struct TokenLookupFirst {
    issued: Mutex<HashSet<String>>,
    hits: Hits,
}

impl TokenLookupFirst {
    fn form(request: &Forward) -> HashMap<String, String> {
        let form = request.headers.get("content-type").is_some_and(|v| {
            v.to_str().is_ok_and(|v| v.starts_with("application/x-www-form-urlencoded"))
        });
        if !form {
            return HashMap::new();
        }
        String::from_utf8_lossy(&request.body)
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

impl Breakage for TokenLookupFirst {
    fn request(&self, request: &mut Forward) -> Option<Answer> {
        if !is(request, Method::POST, "/oauth/token") {
            return None;
        }
        let fields = Self::form(request);
        let grant = fields.get("grant_type").map(String::as_str);
        let code = fields.get("code").filter(|_| grant == Some("authorization_code"));
        // Without a signature or a verifier the spec answers 401 before any lookup.
        let authenticated = request.headers.contains_key("stripe-signature")
            || fields.contains_key("code_verifier");
        match code {
            Some(code) if authenticated && !self.issued.lock().unwrap().contains(code) => {
                self.hits.hit();
                Some(json_error(
                    400,
                    &json!({"error": "invalid_grant", "error_description": "Unknown code"}),
                ))
            }
            _ => None,
        }
    }

    fn response(&self, request: &Forward, answer: &mut Answer) {
        if is(request, Method::POST, "/provisioning/account_requests")
            && let Some(body) = answer.json()
            && let Some(code) = body["oauth"]["code"].as_str()
        {
            self.issued.lock().unwrap().insert(code.to_string());
        }
    }
}

#[tokio::test]
async fn a_token_endpoint_that_looks_the_code_up_first_passes_the_protocol() {
    let hits = Hits::default();
    let breakage = || TokenLookupFirst { hits: hits.clone(), ..TokenLookupFirst::default() };
    passes_the_protocol(breakage, &[]).await;
    hits.assert_some("answered a lookup first");
}

/// `project_id` is keyed per orchestrator, not per organization: a second user's create with a
/// `project_id` another user's resource holds is refused (409 status), never given that resource.
#[derive(Default)]
struct ProjectIdPerOrchestrator {
    holders: Mutex<HashMap<String, HeaderValue>>,
}

impl ProjectIdPerOrchestrator {
    fn key(request: &Forward) -> Option<(String, HeaderValue)> {
        if !is(request, Method::POST, "/provisioning/resources") {
            return None;
        }
        let body: Value = serde_json::from_slice(&request.body).ok()?;
        let bearer = request.headers.get("authorization")?.clone();
        Some((body["project_id"].as_str()?.to_string(), bearer))
    }
}

impl Breakage for ProjectIdPerOrchestrator {
    fn request(&self, request: &mut Forward) -> Option<Answer> {
        let (key, bearer) = Self::key(request)?;
        let holders = self.holders.lock().unwrap();
        (holders.get(&key)? != bearer).then(|| {
            json_error(
                409,
                &json!({"status": "error", "id": "", "error": {
                    "code": "project_id_in_use",
                    "message": "This project_id belongs to another account"
                }}),
            )
        })
    }

    fn response(&self, request: &Forward, answer: &mut Answer) {
        if answer.status == 200
            && let Some((key, bearer)) = Self::key(request)
        {
            self.holders.lock().unwrap().entry(key).or_insert(bearer);
        }
    }
}

#[tokio::test]
async fn a_project_id_keyed_per_orchestrator_passes_the_protocol() {
    passes_the_protocol(
        ProjectIdPerOrchestrator::default,
        &["resources.project_id_per_account_new_resource"],
    )
    .await;
}

/// A catalog whose `configuration_schema`s declare no typed property (the check then sends a
/// configuration that is not an object); with `malformed`, a provider that refuses such a body as
/// malformed (`invalid_request`) before it reads the schema, else the real provider's own answer.
#[derive(Default)]
struct UntypedConfigurationSchemas {
    malformed: bool,
    hits: Hits,
}

impl Breakage for UntypedConfigurationSchemas {
    fn request(&self, request: &mut Forward) -> Option<Answer> {
        if !self.malformed
            || !is(request, Method::POST, "/provisioning/resources")
            || !request.headers.contains_key("authorization")
        {
            return None;
        }
        let body: Value = serde_json::from_slice(&request.body).ok()?;
        let configuration = body.get("configuration")?;
        (!configuration.is_object() && !configuration.is_null()).then(|| {
            self.hits.hit();
            json_error(
                400,
                &json!({"status": "error", "id": "", "error": {
                    "code": "invalid_request",
                    "message": "configuration must be an object"
                }}),
            )
        })
    }

    fn response(&self, request: &Forward, answer: &mut Answer) {
        if is(request, Method::GET, "/provisioning/services")
            && let Some(mut body) = answer.json()
            && let Some(services) = body["data"].as_array_mut()
        {
            for service in services {
                if service["configuration_schema"].is_object() {
                    service["configuration_schema"]["properties"] = json!({});
                }
            }
            answer.set_json(&body);
        }
    }
}

#[tokio::test]
async fn a_configuration_that_is_not_an_object_refused_as_malformed_passes_the_protocol() {
    let hits = Hits::default();
    let breakage = || UntypedConfigurationSchemas { malformed: true, hits: hits.clone() };
    passes_the_protocol(breakage, &[]).await;
    hits.assert_some("refused a configuration as malformed");
}

#[tokio::test]
async fn a_configuration_that_is_not_an_object_refused_by_the_schema_passes_the_protocol() {
    let breakage = UntypedConfigurationSchemas::default;
    passes_the_protocol(breakage, &[]).await;
}

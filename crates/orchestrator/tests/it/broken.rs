//! Every check can fail: deliberately broken providers, each the real one with one defect, make
//! exactly the checks about that defect fail — and no other.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::http::{HeaderMap, HeaderValue, Method};
use provisio_protocol::signature::{header_value, sign};
use serde_json::{Value, json};

use crate::{
    proxy::{Answer, Breakage, Forward, Proxy},
    support::{RealServer, SECRET, run},
};

/// Runs the suite against the real provider behind `breakage` and returns the failed ids, sorted.
async fn failures(breakage: impl Breakage) -> Vec<String> {
    let server = RealServer::start().await;
    let proxy = Proxy::start(&server.base_url, breakage).await;
    let report = run(&proxy.base_url).await;
    let mut failed: Vec<String> = report.failed_ids().into_iter().map(String::from).collect();
    failed.sort();
    failed
}

fn sorted(ids: &[&str]) -> Vec<String> {
    let mut ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    ids.sort();
    ids
}

fn is(request: &Forward, method: Method, path: &str) -> bool {
    request.method == method && request.path == path
}

/// The fields of a form body (the suite's codes are base64url: nothing to decode).
fn form(request: &Forward) -> HashMap<String, String> {
    String::from_utf8_lossy(&request.body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Health without `supported_versions`.
struct NoSupportedVersions;

impl Breakage for NoSupportedVersions {
    fn response(&self, request: &Forward, answer: &mut Answer) {
        if is(request, Method::GET, "/provisioning/health") && answer.status == 200 {
            answer.set_json(&json!({"status": "ok"}));
        }
    }
}

#[tokio::test]
async fn omitting_supported_versions_fails_the_health_body_checks() {
    assert_eq!(failures(NoSupportedVersions).await, sorted(&["health.ok", "health.supports_0_1d"]));
}

/// Signature failures answered in the typed envelope instead of the flat one.
struct TypedSignatureFailures;

impl Breakage for TypedSignatureFailures {
    fn response(&self, _request: &Forward, answer: &mut Answer) {
        if let Some(body) = answer.json()
            && body["error"]["code"] == "invalid_signature"
        {
            answer.set_json(&json!({"type": "error", "error": body["error"]}));
        }
    }
}

#[tokio::test]
async fn a_typed_signature_failure_fails_every_check_expecting_the_flat_401() {
    assert_eq!(
        failures(TypedSignatureFailures).await,
        sorted(&[
            "signature.get_missing",
            "signature.get_malformed",
            "signature.get_without_v1",
            "signature.get_wrong_secret",
            "signature.get_stale_1h",
            "signature.get_future_1h",
            "signature.get_stale_330s",
            "signature.get_future_330s",
            "signature.get_tampered_body",
            "signature.get_timestamp_is_signed",
            "signature.services_missing",
            "signature.services_wrong_secret",
            "signature.post_malformed",
            "signature.post_wrong_secret",
            "signature.post_stale_1h",
            "signature.post_future_1h",
            "signature.post_tampered_body",
            "signature.post_raw_bytes",
            "envelopes.flat_exact",
            "envelopes.signature_flat_on_token_endpoint",
            "check_order.health_signature_before_version",
            "check_order.services_signature_before_version",
            "check_order.account_signature_before_account",
            "check_order.account_signature_before_team_id",
            "check_order.resource_signature_before_version",
            "check_order.deep_link_signature_before_version",
            "resources.bearer_alone_refused",
            "deep_links.bearer_alone_refused",
        ])
    );
}

/// Accepts signatures older than the window: re-signs them as if they were fresh.
struct StaleSignaturesAccepted;

impl Breakage for StaleSignaturesAccepted {
    fn request(&self, request: &mut Forward) -> Option<Answer> {
        let header = request.headers.get("stripe-signature")?.to_str().ok()?.to_string();
        let items: HashMap<_, _> = header.split(',').filter_map(|i| i.split_once('=')).collect();
        let t: i64 = items.get("t")?.parse().ok()?;
        let now = provisio_orchestrator::client::unix_now();
        let genuine =
            items.get("v1").is_some_and(|v1| *v1 == sign(SECRET.as_bytes(), t, &request.body));
        if genuine && now - t > 300 {
            let fresh = header_value(&[SECRET], now, &request.body);
            request.headers.insert("stripe-signature", HeaderValue::from_str(&fresh).unwrap());
        }
        None
    }
}

#[tokio::test]
async fn accepting_a_stale_signature_fails_the_stale_checks() {
    assert_eq!(
        failures(StaleSignaturesAccepted).await,
        sorted(&["signature.get_stale_1h", "signature.get_stale_330s", "signature.post_stale_1h"])
    );
}

/// Lets a code be redeemed again: a repeated redemption gets the first answer back.
#[derive(Default)]
struct ReusableCodes {
    answered: Mutex<HashMap<String, (HeaderMap, Vec<u8>)>>,
}

impl ReusableCodes {
    fn code(request: &Forward) -> Option<String> {
        if !is(request, Method::POST, "/oauth/token") {
            return None;
        }
        let fields = form(request);
        (fields.get("grant_type")? == "authorization_code").then(|| fields.get("code").cloned())?
    }
}

impl Breakage for ReusableCodes {
    fn request(&self, request: &mut Forward) -> Option<Answer> {
        let code = Self::code(request)?;
        let (headers, body) = self.answered.lock().unwrap().get(&code)?.clone();
        Some(Answer { status: 200, headers, body })
    }

    fn response(&self, request: &Forward, answer: &mut Answer) {
        if let Some(code) = Self::code(request)
            && answer.status == 200
        {
            self.answered
                .lock()
                .unwrap()
                .insert(code, (answer.headers.clone(), answer.body.clone()));
        }
    }
}

#[tokio::test]
async fn a_code_that_redeems_twice_fails_the_single_use_checks() {
    assert_eq!(
        failures(ReusableCodes::default()).await,
        sorted(&["oauth.code_single_use", "oauth.code_reuse_revokes_its_tokens"])
    );
}

/// Ignores `API-Version`: every request reaches the real provider as if it said `0.1d`.
struct ApiVersionIgnored;

impl Breakage for ApiVersionIgnored {
    fn request(&self, request: &mut Forward) -> Option<Answer> {
        request.headers.insert("api-version", HeaderValue::from_static("0.1d"));
        None
    }
}

#[tokio::test]
async fn ignoring_api_version_fails_the_version_checks() {
    assert_eq!(
        failures(ApiVersionIgnored).await,
        sorted(&[
            "api_version.health_missing",
            "api_version.health_wrong",
            "api_version.health_wrong_case",
            "api_version.services_missing",
            "api_version.services_wrong",
            "api_version.account_requests_missing",
            "api_version.account_requests_wrong",
            "api_version.token_wrong",
            "check_order.account_version_before_body",
            "check_order.account_version_before_signature",
            "check_order.token_version_before_grant",
            "check_order.resource_version_before_path_id",
            "check_order.resource_version_before_body",
            "check_order.deep_link_version_before_body",
        ])
    );
}

/// Token answers without `Cache-Control: no-store`.
struct Cacheable;

impl Breakage for Cacheable {
    fn response(&self, request: &Forward, answer: &mut Answer) {
        if request.path == "/oauth/token" {
            answer.headers.remove("cache-control");
        }
    }
}

#[tokio::test]
async fn cacheable_token_answers_fail_the_no_store_checks() {
    assert_eq!(
        failures(Cacheable).await,
        sorted(&["oauth.code_exchange_no_store", "oauth.refresh_no_store"])
    );
}

/// A catalog that claims a next page.
struct Paginated;

impl Breakage for Paginated {
    fn response(&self, request: &Forward, answer: &mut Answer) {
        if is(request, Method::GET, "/provisioning/services")
            && let Some(mut body) = answer.json()
            && answer.status == 200
        {
            body["next_cursor"] = json!("page_2");
            answer.set_json(&body);
        }
    }
}

#[tokio::test]
async fn a_next_cursor_fails_the_pagination_check() {
    assert_eq!(failures(Paginated).await, sorted(&["services.no_next_cursor"]));
}

/// Typed errors lose the request `id` that authenticated errors must carry.
struct TypedErrorsWithoutId;

impl Breakage for TypedErrorsWithoutId {
    fn response(&self, _request: &Forward, answer: &mut Answer) {
        if let Some(Value::Object(mut body)) = answer.json()
            && body.get("type") == Some(&json!("error"))
            && body.remove("id").is_some()
        {
            answer.set_json(&Value::Object(body));
        }
    }
}

#[tokio::test]
async fn typed_errors_without_the_request_id_fail_the_authenticated_error_checks() {
    assert_eq!(
        failures(TypedErrorsWithoutId).await,
        sorted(&[
            "envelopes.typed_exact_with_id",
            "accounts.team_id_string_refused",
            "accounts.team_id_float_refused",
            "accounts.team_id_bool_refused",
            "accounts.team_id_unknown",
            "accounts.team_id_foreign",
            "accounts.request_id_other_email",
        ])
    );
}

/// The resource id a path under `/provisioning/resources/` names, and the action after it (`""` for
/// the read).
fn resource_path(request: &Forward) -> Option<(&str, &str)> {
    let rest = request.path.strip_prefix("/provisioning/resources/")?;
    Some(rest.split_once('/').unwrap_or((rest, "")))
}

/// A successful create: the resource id it answered.
fn created_id(request: &Forward, answer: &Answer) -> Option<String> {
    if !is(request, Method::POST, "/provisioning/resources") || answer.status != 200 {
        return None;
    }
    answer.json()?["id"].as_str().map(String::from)
}

/// A dashboard link works more than once: a second visit gets the first visit's answer, session
/// cookie included.
#[derive(Default)]
struct ReusableDeepLinks {
    visited: Mutex<HashMap<String, Answer>>,
}

impl ReusableDeepLinks {
    fn is_visit(request: &Forward) -> bool {
        request.method == Method::GET && request.path.starts_with("/login?")
    }
}

impl Breakage for ReusableDeepLinks {
    fn request(&self, request: &mut Forward) -> Option<Answer> {
        if !Self::is_visit(request) {
            return None;
        }
        self.visited.lock().unwrap().get(&request.path).cloned()
    }

    fn response(&self, request: &Forward, answer: &mut Answer) {
        if Self::is_visit(request) && answer.headers.contains_key("set-cookie") {
            self.visited.lock().unwrap().insert(request.path.clone(), answer.clone());
        }
    }
}

#[tokio::test]
async fn a_deep_link_that_works_twice_fails_the_second_visit_checks() {
    assert_eq!(
        failures(ReusableDeepLinks::default()).await,
        sorted(&["deep_links.open_twice_refused", "deep_links.open_twice_error_redirect"])
    );
}

/// `rotate_credentials` answers the credentials the resource was created with (the provider did
/// rotate them: the read shows the new public key).
#[derive(Default)]
struct RotationAnswersOldCredentials {
    created: Mutex<HashMap<String, Value>>,
}

impl Breakage for RotationAnswersOldCredentials {
    fn response(&self, request: &Forward, answer: &mut Answer) {
        if let Some(id) = created_id(request, answer)
            && let Some(body) = answer.json()
        {
            let access = body["complete"]["access_configuration"].clone();
            self.created.lock().unwrap().insert(id, access);
        }
        if let Some((id, "rotate_credentials")) = resource_path(request)
            && answer.status == 200
            && let Some(mut body) = answer.json()
            && let Some(old) = self.created.lock().unwrap().get(id)
        {
            body["complete"]["access_configuration"] = old.clone();
            answer.set_json(&body);
        }
    }
}

#[tokio::test]
async fn a_rotation_answering_the_old_credentials_fails_the_rotation_checks() {
    assert_eq!(
        failures(RotationAnswersOldCredentials::default()).await,
        sorted(&[
            "resources.rotate_new_credentials",
            "resources.rotate_new_keys",
            "resources.rotate_read_shows_new_values",
            "resources.rotate_twice_differs",
        ])
    );
}

/// No scoping: a call another user's token may not make is made with the token that created the
/// resource.
#[derive(Default)]
struct ScopingIgnored {
    owners: Mutex<HashMap<String, HeaderValue>>,
}

impl Breakage for ScopingIgnored {
    fn retry(&self, request: &Forward, answer: &Answer) -> Option<Forward> {
        let (id, _) = resource_path(request)?;
        if answer.status != 403 {
            return None;
        }
        let owner = self.owners.lock().unwrap().get(id)?.clone();
        let mut headers = request.headers.clone();
        headers.insert("authorization", owner);
        let (method, path, body) =
            (request.method.clone(), request.path.clone(), request.body.clone());
        Some(Forward { method, path, headers, body })
    }

    fn response(&self, request: &Forward, answer: &mut Answer) {
        if let Some(id) = created_id(request, answer)
            && let Some(bearer) = request.headers.get("authorization")
        {
            self.owners.lock().unwrap().insert(id, bearer.clone());
        }
    }
}

#[tokio::test]
async fn ignoring_the_token_scope_fails_the_foreign_resource_checks() {
    assert_eq!(
        failures(ScopingIgnored::default()).await,
        sorted(&[
            "resources.foreign_get",
            "resources.foreign_update",
            "resources.foreign_rotate",
            "resources.foreign_remove",
            "resources.foreign_calls_change_nothing",
        ])
    );
}

/// `project_id` is not an idempotency key: every create with one makes a new resource (the proxy
/// gives each its own `project_id` and signs the new body as the orchestrator would).
#[derive(Default)]
struct ProjectIdIgnored {
    seq: AtomicU64,
}

impl Breakage for ProjectIdIgnored {
    fn request(&self, request: &mut Forward) -> Option<Answer> {
        if !is(request, Method::POST, "/provisioning/resources") {
            return None;
        }
        let mut body: Value = serde_json::from_slice(&request.body).ok()?;
        let key = body["project_id"].as_str()?.to_string();
        let header = request.headers.get("stripe-signature")?.to_str().ok()?.to_string();
        let items: HashMap<_, _> = header.split(',').filter_map(|i| i.split_once('=')).collect();
        let t: i64 = items.get("t")?.parse().ok()?;
        if items.get("v1") != Some(&sign(SECRET.as_bytes(), t, &request.body).as_str()) {
            return None;
        }
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        body["project_id"] = json!(format!("{key}-ignored-{n}"));
        request.body = serde_json::to_vec(&body).unwrap();
        let signed = header_value(&[SECRET], t, &request.body);
        request.headers.insert("stripe-signature", HeaderValue::from_str(&signed).unwrap());
        None
    }
}

#[tokio::test]
async fn ignoring_project_id_fails_the_idempotency_checks() {
    assert_eq!(
        failures(ProjectIdIgnored::default()).await,
        sorted(&[
            "resources.project_id_idempotent",
            "resources.project_id_fresh_personal_key",
            "resources.project_id_one_project",
            "resources.create_reactivates_removed",
        ])
    );
}

/// `Idempotency-Key` honoured one request at a time only: a twin that arrives while the first is
/// still in flight runs as a request of its own (the proxy gives it a key of its own). Requests
/// with a key are held 200 ms, so twins sent together are in flight together.
#[derive(Default)]
struct TwinsInFlightRun {
    in_flight: Mutex<HashSet<String>>,
    seq: AtomicU64,
}

fn idempotency_key(request: &Forward) -> Option<String> {
    request.headers.get("idempotency-key")?.to_str().ok().map(String::from)
}

impl Breakage for TwinsInFlightRun {
    fn request(&self, request: &mut Forward) -> Option<Answer> {
        let key = idempotency_key(request)?;
        if !self.in_flight.lock().unwrap().insert(key.clone()) {
            let own = format!("{key}-twin-{}", self.seq.fetch_add(1, Ordering::Relaxed));
            request.headers.insert("idempotency-key", HeaderValue::from_str(&own).unwrap());
        }
        None
    }

    fn hold(&self, request: &Forward) -> Duration {
        match idempotency_key(request) {
            Some(_) => Duration::from_millis(200),
            None => Duration::ZERO,
        }
    }

    fn response(&self, request: &Forward, _answer: &mut Answer) {
        if let Some(key) = idempotency_key(request) {
            self.in_flight.lock().unwrap().remove(&key);
        }
    }
}

#[tokio::test]
async fn running_twins_in_flight_fails_the_twins_check_only() {
    assert_eq!(
        failures(TwinsInFlightRun::default()).await,
        sorted(&["resources.idempotency_key_twins_in_flight"])
    );
}

//! Answering a repeated request from its recorded response instead of running it twice, as a layer
//! on the routes that change state: `Idempotency-Key` on the resource POSTs and `deep_links` (spec
//! 5.5: same key and body → the recorded answer; different body → 409 `idempotency_conflict`; kept
//! 24 hours), and replay safety for byte-identical signed POSTs (kept while the signature could
//! still verify).
//!
//! The layer ([`answer_once`]) gives each request an [`AnsweredOnce`]; the endpoint's extractor,
//! once the request is authenticated (the scopes name the caller), claims its scopes through it and
//! is answered `Err(response)` for a replay or a conflict, so the handler never runs twice. When the
//! handler has answered, the layer records a 2xx answer under every scope claimed, or gives the
//! claims back. Answers are sealed (ChaCha20-Poly1305) under a key derived from the server secret
//! and the scope, which holds the request's own key (Idempotency-Key or signature) and is stored
//! only hashed.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    body::{Body, to_bytes},
    extract::Request,
    http::{HeaderMap, HeaderValue, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::reply::{ApiError, json_bytes};
use crate::{
    crypto,
    domain::auth::Principal,
    metrics,
    state::AppState,
    store::{
        Store,
        idempotency::{Claim, Recorded},
    },
};

pub const HEADER: &str = "Idempotency-Key";
const TTL_SECS: i64 = 24 * 3600;
/// Recorded bodies larger than this are not recorded (credentials answers are tiny).
const MAX_RECORDED: usize = 64 * 1024;

/// The layer: every request through it is answered once per scope its extractor claims.
pub async fn answer_once(mut req: Request, next: Next) -> Response {
    let once = Arc::new(AnsweredOnce::default());
    req.extensions_mut().insert(Arc::clone(&once));
    let response = next.run(req).await;
    once.record(response).await
}

/// The scopes one request holds. Dropped with claims still held (the request's future dropped
/// because the client went away), each claim gives its key back from a task of its own.
#[derive(Default)]
pub struct AnsweredOnce {
    held: Mutex<Vec<Held>>,
}

impl AnsweredOnce {
    /// Replay safety: a byte-identical signed request seen again while its signature is still
    /// valid is answered from the recorded response. `signed_id` names the signed request
    /// (orchestrator, timestamp and body, however the header was worded); `caller` is the bearer's
    /// token family (`""` without one), because the signature does not cover the `Authorization`
    /// header — two tokens sending the same body in the same second are two requests.
    pub async fn replay_safe(
        &self,
        state: &AppState,
        signed_id: &str,
        caller: &str,
        route: &str,
        body: &[u8],
    ) -> Result<(), Response> {
        let scope = format!("replay\n{caller}\n{route}\n{signed_id}");
        // Kept past the window on both sides, so no valid copy of the request can run again.
        let ttl = i64::try_from(state.limits.signature_tolerance_secs)
            .unwrap_or(i64::MAX / 4)
            .saturating_mul(2)
            .saturating_add(1);
        self.claim(state, scope, body, ttl, ApiError::server_error).await
    }

    /// Once per (organization, route, Idempotency-Key), when the request has a usable key;
    /// `conflict` builds the endpoint's own 409 answer.
    pub async fn by_key(
        &self,
        state: &AppState,
        headers: &HeaderMap,
        principal: &Principal,
        route: &str,
        body: &[u8],
        conflict: impl FnOnce() -> ApiError,
    ) -> Result<(), Response> {
        let Some(key) = idempotency_key(headers) else {
            return Ok(());
        };
        let scope = format!(
            "{}\n{}\n{}\n{}",
            principal.orchestrator, principal.organization_id, route, key
        );
        self.claim(state, scope, body, TTL_SECS, conflict).await
    }

    /// Claims `scope`: `Ok` to run; a repeat with the same body gets the recorded 2xx answer, one
    /// with a different body gets `conflict()`. A repeat that arrives while the first is still
    /// running waits for its answer (at most `WAIT_FOR_TWIN`, then `conflict()`), so the two never
    /// run side by side, on one instance or several.
    async fn claim(
        &self,
        state: &AppState,
        scope: String,
        body: &[u8],
        ttl: i64,
        conflict: impl FnOnce() -> ApiError,
    ) -> Result<(), Response> {
        let key_hash = crypto::sha256_hex(scope.as_bytes());
        let request_hash = crypto::sha256_hex(body);
        match take_turn(state, &key_hash, &request_hash).await {
            Ok(Turn::Run) => {}
            Ok(Turn::Replay(recorded)) => return Err(replay(state, &scope, &recorded)),
            Ok(Turn::Conflict) => return Err(conflict().into_response()),
            Err(e) => return Err(e.into_response()),
        }
        let held = Held { state: state.clone(), key_hash, scope, request_hash, ttl, armed: true };
        self.lock().push(held);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Held>> {
        self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a 2xx answer under every scope held, or gives them back.
    async fn record(&self, response: Response) -> Response {
        let held = std::mem::take(&mut *self.lock());
        if held.is_empty() {
            return response;
        }
        if !response.status().is_success() {
            // Given back before answering, so a retry that follows at once runs.
            release_all(held).await;
            return response;
        }
        let (parts, body) = response.into_parts();
        // The answer is ours, already made: it is answered whatever its size (the work is done),
        // and recorded only when it is small enough to keep.
        let Ok(bytes) = to_bytes(body, usize::MAX).await else {
            release_all(held).await;
            return ApiError::server_error().into_response();
        };
        if bytes.len() > MAX_RECORDED {
            tracing::warn!(
                bytes = bytes.len(),
                "an answer too large to record is answered unrecorded"
            );
        }
        for claim in held {
            claim.complete(parts.status.as_u16(), &bytes).await;
        }
        let mut response = Response::from_parts(parts, Body::from(bytes));
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

async fn release_all(held: Vec<Held>) {
    for claim in held {
        claim.release().await;
    }
}

/// The request's `Idempotency-Key`, when it has a usable one (longer than 255 characters is
/// ignored).
pub fn idempotency_key(headers: &HeaderMap) -> Option<&str> {
    headers.get(HEADER).and_then(|v| v.to_str().ok()).filter(|k| !k.is_empty() && k.len() <= 255)
}

/// What a request may do with its key.
enum Turn {
    /// Run: the key is claimed.
    Run,
    /// Answer what the first request with the key answered.
    Replay(Recorded),
    /// Refuse: another body under the key, or a twin still running after the wait.
    Conflict,
}

/// Claims the key, waiting while a twin with the same body runs (at most `WAIT_FOR_TWIN`).
async fn take_turn(state: &AppState, key_hash: &str, request_hash: &str) -> Result<Turn, ApiError> {
    let waited_since = tokio::time::Instant::now();
    let mut waited = false;
    // A request is cut off at its timeout, so its claim is never needed longer; the margin
    // covers clocks of instances that disagree a little.
    let lease = i64::try_from(state.limits.request_timeout_secs).unwrap_or(i64::MAX / 4) + 30;
    loop {
        let now = state.clock.now();
        let claim = state.store.claim_key(key_hash, request_hash, now, now + lease);
        match claim.await.map_err(internal)? {
            Claim::Won => return Ok(Turn::Run),
            Claim::Recorded(recorded) if recorded.request_hash == request_hash => {
                metrics::idempotency("replayed");
                return Ok(Turn::Replay(recorded));
            }
            Claim::InFlight { same_request: true } if waited_since.elapsed() < WAIT_FOR_TWIN => {
                if !std::mem::replace(&mut waited, true) {
                    metrics::idempotency("waited");
                }
                tokio::time::sleep(TWIN_POLL).await;
            }
            Claim::InFlight { same_request: true } => {
                metrics::idempotency("busy");
                return Ok(Turn::Conflict);
            }
            Claim::Recorded(_) | Claim::InFlight { same_request: false } => {
                metrics::idempotency("conflict");
                return Ok(Turn::Conflict);
            }
        }
    }
}

/// The recorded answer, opened, marked as replayed.
fn replay(state: &AppState, scope: &str, recorded: &Recorded) -> Response {
    let opened = crypto::open(
        &state.server_secret,
        scope.as_bytes(),
        b"",
        &recorded.nonce,
        &recorded.sealed_body,
    );
    let Some(body) = opened else {
        return ApiError::server_error().into_response();
    };
    let mut response = json_bytes(recorded.status, body.into());
    response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

/// How long a repeat waits for the answer of its twin still in flight.
const WAIT_FOR_TWIN: Duration = Duration::from_secs(10);
const TWIN_POLL: Duration = Duration::from_millis(20);

/// A scope this request claimed. It is completed or given back; dropped otherwise, it gives the
/// key back from a task of its own.
struct Held {
    state: AppState,
    key_hash: String,
    scope: String,
    request_hash: String,
    ttl: i64,
    armed: bool,
}

impl Held {
    /// Records the answer, sealed under the scope, which includes the raw Idempotency-Key (or
    /// signature): only a request that presents it again can open it. Too large to keep, or not
    /// recorded, the key is given back.
    async fn complete(mut self, status: u16, body: &[u8]) {
        self.armed = false;
        let state = &self.state;
        let sealed = (body.len() <= MAX_RECORDED)
            .then(|| crypto::seal(&state.server_secret, self.scope.as_bytes(), b"", body))
            .flatten();
        let Some((nonce, sealed_body)) = sealed else {
            give_back(&state.store, &self.key_hash).await;
            return;
        };
        let request_hash = std::mem::take(&mut self.request_hash);
        let recorded = Recorded { request_hash, status, nonce, sealed_body };
        let now = state.clock.now();
        let stored = state.store.complete_key(&self.key_hash, recorded, now, now + self.ttl);
        if let Err(e) = stored.await {
            tracing::warn!(error = %e, "could not record a response");
            give_back(&state.store, &self.key_hash).await;
        }
    }

    async fn release(mut self) {
        self.armed = false;
        give_back(&self.state.store, &self.key_hash).await;
    }
}

async fn give_back(store: &Store, key_hash: &str) {
    if let Err(e) = store.release_key(key_hash).await {
        tracing::warn!(error = %e, "could not release an idempotency claim");
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // Without a runtime (shutting down) the claim's lease, or the process's end, frees it.
        if self.armed
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (store, key_hash) = (self.state.store.clone(), std::mem::take(&mut self.key_hash));
            runtime.spawn(async move { give_back(&store, &key_hash).await });
        }
    }
}

fn internal(e: crate::store::StoreError) -> ApiError {
    tracing::error!(error = %e, "idempotency lookup failed");
    ApiError::server_error()
}

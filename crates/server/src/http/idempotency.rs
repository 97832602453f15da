//! Answering a repeated request from its recorded response instead of running it twice:
//! `Idempotency-Key` on the resource POSTs and `deep_links` (spec 5.5: same key and body → the
//! recorded answer; different body → 409 `idempotency_conflict`; kept 24 hours), and replay safety
//! for byte-identical signed POSTs (kept while the signature could still verify). Only 2xx answers
//! are recorded, sealed (ChaCha20-Poly1305) under a key derived from the server secret and the
//! request's own key (Idempotency-Key or signature), which is stored only hashed.

use std::{future::Future, time::Duration};

use axum::{
    body::{Body, to_bytes},
    http::{HeaderMap, HeaderValue, header},
    response::Response,
};
use sha2::Sha256;

use super::{
    reply::{ApiError, json_bytes},
    request::SignedCall,
};
use crate::{
    crypto::{self, token_hash},
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

/// Runs `handler` once per (organization, path, Idempotency-Key) and once per signed request;
/// replays or refuses repeats. `conflict` builds the endpoint's own 409 answer.
pub async fn idempotent<F>(
    state: &AppState,
    headers: &HeaderMap,
    call: &SignedCall,
    path: &str,
    body: &[u8],
    conflict: impl FnOnce() -> ApiError,
    handler: F,
) -> Result<Response, ApiError>
where
    F: Future<Output = Result<Response, ApiError>>,
{
    let principal = &call.principal;
    replay_safe(
        state,
        &call.signed_id,
        &principal.family_id,
        path,
        body,
        by_key(state, headers, principal, path, body, conflict, handler),
    )
    .await
}

/// The request's `Idempotency-Key`, when it has a usable one (longer than 255 characters is
/// ignored).
pub fn idempotency_key(headers: &HeaderMap) -> Option<&str> {
    headers.get(HEADER).and_then(|v| v.to_str().ok()).filter(|k| !k.is_empty() && k.len() <= 255)
}

async fn by_key<F>(
    state: &AppState,
    headers: &HeaderMap,
    principal: &Principal,
    path: &str,
    body: &[u8],
    conflict: impl FnOnce() -> ApiError,
    handler: F,
) -> Result<Response, ApiError>
where
    F: Future<Output = Result<Response, ApiError>>,
{
    let Some(key) = idempotency_key(headers) else {
        return handler.await;
    };
    let scope =
        format!("{}\n{}\n{}\n{}", principal.orchestrator, principal.organization_id, path, key);
    once(state, scope, body, TTL_SECS, conflict, handler).await
}

/// Replay safety: a byte-identical signed POST seen again while its signature is still valid is
/// answered from the recorded response instead of running twice. Call it after the signature is
/// verified, with the signed request's name (`Signed::id`: orchestrator, timestamp and body,
/// however the header was worded) and `caller`: the bearer's token family, because the signature
/// does not cover the `Authorization` header — two tokens sending the same body in the same second
/// are two requests.
pub async fn replay_safe<F>(
    state: &AppState,
    signed_id: &str,
    caller: &str,
    path: &str,
    body: &[u8],
    handler: F,
) -> Result<Response, ApiError>
where
    F: Future<Output = Result<Response, ApiError>>,
{
    let scope = format!("replay\n{caller}\n{path}\n{signed_id}");
    // Kept past the window on both sides, so no valid copy of the request can run again.
    let ttl = i64::try_from(state.limits.signature_tolerance_secs)
        .unwrap_or(i64::MAX / 4)
        .saturating_mul(2)
        .saturating_add(1);
    once(state, scope, body, ttl, ApiError::server_error, handler).await
}

/// Runs `handler` once per scope: a repeat with the same body gets the recorded 2xx answer, one
/// with a different body gets `conflict()`. A repeat that arrives while the first is still
/// running waits for its answer (at most `WAIT_FOR_TWIN`, then `conflict()`), so the two never
/// run side by side, on one instance or several.
async fn once<F>(
    state: &AppState,
    scope: String,
    body: &[u8],
    ttl: i64,
    conflict: impl FnOnce() -> ApiError,
    handler: F,
) -> Result<Response, ApiError>
where
    F: Future<Output = Result<Response, ApiError>>,
{
    let key_hash = token_hash(&scope);
    let request_hash = hex::encode(<Sha256 as sha2::Digest>::digest(body));
    match take_turn(state, &key_hash, &request_hash).await? {
        Turn::Run => {}
        Turn::Replay(recorded) => return replay(state, &scope, &recorded),
        Turn::Conflict => return Err(conflict()),
    }
    let claim = Held::new(&state.store, key_hash);
    let response = match handler.await {
        Ok(response) if response.status().is_success() => response,
        // Given back before answering, so a retry that follows at once runs.
        failed => {
            claim.release().await;
            return failed;
        }
    };
    let (parts, body) = response.into_parts();
    // The answer is ours, already made: it is answered whatever its size (the work is done), and
    // recorded only when it is small enough to keep.
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        claim.release().await;
        return Err(ApiError::server_error());
    };
    let sealed =
        (bytes.len() <= MAX_RECORDED).then(|| seal(&state.server_secret, &scope, &bytes)).flatten();
    if sealed.is_none() && bytes.len() > MAX_RECORDED {
        tracing::warn!(bytes = bytes.len(), "an answer too large to record is answered unrecorded");
    }
    match sealed {
        Some((nonce, sealed_body)) => {
            let status = parts.status.as_u16();
            let recorded = Recorded { request_hash, status, nonce, sealed_body };
            let now = state.clock.now();
            let key_hash = claim.take();
            if let Err(e) = state.store.complete_key(&key_hash, recorded, now, now + ttl).await {
                tracing::warn!(error = %e, "could not record a response");
                give_back(state.store.clone(), key_hash).await;
            }
        }
        None => claim.release().await,
    }
    let mut response = Response::from_parts(parts, Body::from(bytes));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
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
fn replay(state: &AppState, scope: &str, recorded: &Recorded) -> Result<Response, ApiError> {
    let body = open(&state.server_secret, scope, recorded).ok_or_else(ApiError::server_error)?;
    let mut response = json_bytes(recorded.status, body.into());
    response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(response)
}

/// How long a repeat waits for the answer of its twin still in flight.
const WAIT_FOR_TWIN: Duration = Duration::from_secs(10);
const TWIN_POLL: Duration = Duration::from_millis(20);

/// A claim this request holds. It is completed (`take`) or given back (`release`); dropped
/// otherwise (the request's future dropped because the client went away), it gives the key back
/// from a task of its own.
struct Held {
    store: Store,
    key_hash: String,
    armed: bool,
}

impl Held {
    fn new(store: &Store, key_hash: String) -> Self {
        Self { store: store.clone(), key_hash, armed: true }
    }

    /// The key, for the caller to complete; dropping no longer gives it back.
    fn take(mut self) -> String {
        self.armed = false;
        std::mem::take(&mut self.key_hash)
    }

    async fn release(self) {
        let store = self.store.clone();
        give_back(store, self.take()).await;
    }
}

async fn give_back(store: Store, key_hash: String) {
    if let Err(e) = store.release_key(&key_hash).await {
        tracing::warn!(error = %e, "could not release an idempotency claim");
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // Without a runtime (shutting down) the claim's lease, or the process's end, frees it.
        if self.armed
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(give_back(self.store.clone(), std::mem::take(&mut self.key_hash)));
        }
    }
}

fn internal(e: crate::store::StoreError) -> ApiError {
    tracing::error!(error = %e, "idempotency lookup failed");
    ApiError::server_error()
}

/// Sealed under a key derived from the server secret and the scope, which includes the raw
/// Idempotency-Key (or signature): only a request that presents it again can open its answer.
fn seal(server_secret: &[u8], scope: &str, plaintext: &[u8]) -> Option<(String, String)> {
    crypto::seal(server_secret, scope.as_bytes(), b"", plaintext)
}

fn open(server_secret: &[u8], scope: &str, recorded: &Recorded) -> Option<Vec<u8>> {
    crypto::open(server_secret, scope.as_bytes(), b"", &recorded.nonce, &recorded.sealed_body)
}

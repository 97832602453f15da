//! Consent linking from a terminal, as OAuth CLIs (gh, gcloud) do it.
//!
//! A provider that asks the user to confirm (spec 5.3, consent mode) answers an account request
//! with `requires_auth`: a URL for the user's browser. Once the user has proved the email and
//! picked a project, the provider redirects the browser to the orchestrator's registered
//! `callback_url` with `?code=…&state=<the request's confirmation_secret>`, or
//! `?error=access_denied&state=…` when the user declined. [`Callback`] listens for that redirect on
//! a loopback address: bound before the request is sent, it waits for one callback, checks `state`
//! against the secret in constant time and hands back the code, which [`account_request`]
//! exchanges at the token endpoint.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use axum::{
    Router,
    extract::{Query, State as Shared, rejection::QueryRejection},
    http::{HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::Url;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tokio::{net::TcpListener, sync::oneshot};

use crate::{Client, ClientError, Reply, state::State};

/// How long to wait for the browser by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// How long the listener may take to finish answering the browser once the callback has arrived.
const DRAIN: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("callback address {0:?} is not an IP address and port, e.g. 127.0.0.1:8765")]
    Address(String),
    #[error(
        "callback address {0} is not a loopback address: the callback listener only listens on \
         127.0.0.1, ::1 or another loopback address"
    )]
    NotLoopback(SocketAddr),
    #[error("cannot listen for the callback on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("random generator failed: {0}")]
    Random(getrandom::Error),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the provider answered requires_auth without a usable redirect URL: {0}")]
    Redirect(String),
    #[error("no callback from the browser within {} s", .0.as_secs())]
    Timeout(Duration),
    #[error("the callback listener stopped before the browser came back")]
    Closed,
    #[error(
        "the callback's state does not match this request's confirmation secret; nothing was \
         exchanged"
    )]
    StateMismatch,
    #[error("The user declined")]
    Declined,
    #[error("the provider redirected back with error {error:?}{}", described(description))]
    Provider { error: String, description: Option<String> },
}

/// `: "<description>"`, or nothing.
fn described(description: &Option<String>) -> String {
    description.as_ref().map(|d| format!(": {d:?}")).unwrap_or_default()
}

/// A random confirmation secret: 32 bytes, base64url without padding.
pub fn confirmation_secret() -> Result<String, CallbackError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(CallbackError::Random)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// A loopback listener for the provider's redirect, bound and not yet serving: a browser arriving
/// early waits in the backlog until [`Callback::wait`]. Dropping it closes the port.
#[derive(Debug)]
pub struct Callback {
    listener: TcpListener,
    addr: SocketAddr,
}

impl Callback {
    /// Binds `addr` (`IP:PORT`, a loopback IP; port 0 picks a free one).
    pub async fn listen(addr: &str) -> Result<Self, CallbackError> {
        let wanted: SocketAddr =
            addr.trim().parse().map_err(|_| CallbackError::Address(addr.to_string()))?;
        if !wanted.ip().is_loopback() {
            return Err(CallbackError::NotLoopback(wanted));
        }
        let bind = |source| CallbackError::Bind { addr: wanted, source };
        let listener = TcpListener::bind(wanted).await.map_err(bind)?;
        let addr = listener.local_addr().map_err(bind)?;
        Ok(Self { listener, addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves the listener until one callback carrying `state` and a `code` or an `error` arrives,
    /// or `timeout` passes; anything else (a favicon, a request without them, a second callback)
    /// is answered 404 and changes nothing. Returns the code when `state` equals `secret`.
    pub async fn wait(self, secret: &str, timeout: Duration) -> Result<String, CallbackError> {
        let (outcome, arrived) = oneshot::channel();
        let waiting =
            Arc::new(Waiting { secret: secret.to_string(), outcome: Mutex::new(Some(outcome)) });
        let app = Router::new().fallback(answer).with_state(waiting);
        let (stop, stopped) = oneshot::channel::<()>();
        let mut server = tokio::spawn(async move {
            axum::serve(self.listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        let result = match tokio::time::timeout(timeout, arrived).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(CallbackError::Closed),
            Err(_) => Err(CallbackError::Timeout(timeout)),
        };
        // Let the browser get its page, then close the port.
        let _ = stop.send(());
        if tokio::time::timeout(DRAIN, &mut server).await.is_err() {
            server.abort();
        }
        result
    }
}

/// The listener's state while it waits: the secret, and where the one callback's outcome goes.
struct Waiting {
    secret: String,
    outcome: Mutex<Option<oneshot::Sender<Result<String, CallbackError>>>>,
}

async fn answer(
    Shared(waiting): Shared<Arc<Waiting>>,
    method: Method,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let not_found = || page(StatusCode::NOT_FOUND, "Not found.");
    let Ok(Query(query)) = query else { return not_found() };
    let field = |name: &str| query.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let (Some(state), code, error) = (field("state"), field("code"), field("error")) else {
        return not_found();
    };
    if method != Method::GET || (code.is_none() && error.is_none()) {
        return not_found();
    }
    // The first callback is the one: a later one (a reload, a replay) changes nothing.
    let Some(outcome) = waiting.outcome.lock().unwrap_or_else(PoisonError::into_inner).take()
    else {
        return not_found();
    };
    let (status, text, result) = if !bool::from(state.as_bytes().ct_eq(waiting.secret.as_bytes())) {
        (
            StatusCode::BAD_REQUEST,
            "This link does not belong to the request waiting in your terminal; nothing was \
             linked. You can close this window.",
            Err(CallbackError::StateMismatch),
        )
    } else if let Some(error) = error {
        let result = if error == "access_denied" {
            Err(CallbackError::Declined)
        } else {
            Err(CallbackError::Provider {
                error: error.to_string(),
                description: field("error_description").map(String::from),
            })
        };
        (StatusCode::OK, "Nothing was linked. You can close this window.", result)
    } else {
        let code = code.unwrap_or_default().to_string();
        (StatusCode::OK, "Done: return to your terminal. You can close this window.", Ok(code))
    };
    let _ = outcome.send(result);
    page(status, text)
}

/// A small HTML page for the browser.
fn page(status: StatusCode, text: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>provisio</title></head>\
         <body><p>{text}</p></body></html>"
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // The page's URL carries the code: keep it out of any Referer.
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response
}

/// What an account request sent with a callback came to.
#[derive(Debug)]
pub enum Outcome {
    /// The account request's own answer (an `oauth` code, `credentials`, an error): no browser
    /// step, and the state remembers it as without a callback.
    Answered(Reply),
    /// The provider answered `requires_auth`; the browser came back with a code, exchanged here.
    Exchanged { requested: Reply, token: Reply },
}

/// Sends the account request `body` with a confirmation secret (the body's own, or a fresh one)
/// while `callback` listens. An `oauth` or `credentials` answer closes the listener and is
/// remembered in `state` as usual. A `requires_auth` answer's URL goes to `open` (for the user),
/// then the browser's callback is awaited for up to `timeout`, and its code is exchanged (with
/// `verifier`, the PKCE verifier of the body's challenge) and the tokens remembered.
pub async fn account_request(
    client: &Client,
    state: &mut State,
    mut body: Value,
    verifier: Option<String>,
    callback: Callback,
    timeout: Duration,
    open: impl FnOnce(&str),
) -> Result<Outcome, CallbackError> {
    let secret = match body["confirmation_secret"].as_str() {
        Some(secret) => secret.to_string(),
        None => {
            let secret = confirmation_secret()?;
            if let Some(fields) = body.as_object_mut() {
                fields.insert("confirmation_secret".into(), json!(secret));
            }
            secret
        }
    };
    let requested = client.account_request(&body).await?;
    let Some(url) = browser_url(&requested)? else {
        drop(callback);
        state.remember_account_answer(&requested, verifier);
        return Ok(Outcome::Answered(requested));
    };
    open(&url);
    let code = callback.wait(&secret, timeout).await?;
    let token = client.redeem_code(&code, verifier.as_deref()).await?;
    state.remember_token_answer(&token);
    Ok(Outcome::Exchanged { requested, token })
}

/// The URL of a `requires_auth` answer (normalized: no control characters reach the terminal), or
/// `None` for any other answer.
fn browser_url(reply: &Reply) -> Result<Option<String>, CallbackError> {
    let Some(body) =
        reply.json.as_ref().filter(|b| reply.is_success() && b["type"] == "requires_auth")
    else {
        return Ok(None);
    };
    let auth = &body["requires_auth"];
    let raw = auth["redirect"]["url"]
        .as_str()
        .filter(|_| auth["type"] == "redirect")
        .ok_or_else(|| CallbackError::Redirect(auth.to_string()))?;
    let url =
        Url::parse(raw.trim()).map_err(|e| CallbackError::Redirect(format!("{raw:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(CallbackError::Redirect(format!("{raw:?} is not an http(s) URL")));
    }
    Ok(Some(url.into()))
}

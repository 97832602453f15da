//! Consent linking from the terminal: a fake provider answers `requires_auth`, a simulated browser
//! comes back to the orchestrator's loopback callback, and the code is exchanged (or not).

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Form, Json, Router, extract::State as Shared, http::StatusCode, routing::post};
use provisio_orchestrator::{
    Client, ClientConfig,
    callback::{self, Callback, CallbackError, Outcome},
    pkce,
    state::State,
};
use provisio_protocol::pkce::s256_challenge;
use serde_json::{Value, json};
use tokio::sync::oneshot;

const BROWSER_CODE: &str = "code_from_the_browser";
const DIRECT_CODE: &str = "code_without_a_browser";

/// What the fake provider saw.
#[derive(Default)]
struct Seen {
    account_requests: Mutex<Vec<Value>>,
    token_forms: Mutex<Vec<HashMap<String, String>>>,
}

struct FakeProvider {
    base_url: String,
    seen: Arc<Seen>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Fake {
    /// Answer `requires_auth` (consent mode) or an `oauth` code (link mode).
    consent: bool,
    base_url: String,
    seen: Arc<Seen>,
}

impl FakeProvider {
    async fn start(consent: bool) -> Self {
        let listener =
            tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Seen::default());
        let fake = Arc::new(Fake { consent, base_url: base_url.clone(), seen: seen.clone() });
        let app = Router::new()
            .route("/provisioning/account_requests", post(account_request))
            .route("/oauth/token", post(token))
            .with_state(fake);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { base_url, seen, task }
    }

    fn client(&self) -> Client {
        Client::new(ClientConfig::new(&self.base_url, vec!["whsec_test".into()])).unwrap()
    }

    /// The confirmation secret of the (only) account request.
    fn secret(&self) -> String {
        let requests = self.seen.account_requests.lock().unwrap();
        requests[0]["confirmation_secret"].as_str().unwrap().to_string()
    }

    fn exchanges(&self) -> Vec<HashMap<String, String>> {
        self.seen.token_forms.lock().unwrap().clone()
    }
}

async fn account_request(Shared(fake): Shared<Arc<Fake>>, Json(body): Json<Value>) -> Json<Value> {
    let id = body["id"].clone();
    fake.seen.account_requests.lock().unwrap().push(body);
    Json(if fake.consent {
        let url = format!("{}/consent/one-time-token", fake.base_url);
        let redirect = json!({"type": "redirect", "redirect": {"url": url}});
        json!({"id": id, "type": "requires_auth", "requires_auth": redirect})
    } else {
        json!({"id": id, "type": "oauth", "oauth": {"code": DIRECT_CODE}})
    })
}

/// Redeems [`BROWSER_CODE`], checking the PKCE verifier against the request's challenge.
async fn token(
    Shared(fake): Shared<Arc<Fake>>,
    Form(form): Form<HashMap<String, String>>,
) -> (StatusCode, Json<Value>) {
    fake.seen.token_forms.lock().unwrap().push(form.clone());
    let challenge = fake.seen.account_requests.lock().unwrap()[0]["code_challenge"].clone();
    let verified = match (challenge.as_str(), form.get("code_verifier")) {
        (Some(challenge), Some(verifier)) => s256_challenge(verifier) == challenge,
        (None, None) => true,
        _ => false,
    };
    if form.get("code").map(String::as_str) == Some(BROWSER_CODE) && verified {
        let tokens = json!({
            "token_type": "bearer", "access_token": "at_browser", "refresh_token": "rt_browser",
            "expires_in": 3600, "account": {"id": "org_browser"}
        });
        (StatusCode::OK, Json(tokens))
    } else {
        (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_grant"})))
    }
}

/// A browser's request; `{state}` in `path` becomes the confirmation secret. `None` when the
/// connection failed (the listener has closed).
async fn visit(addr: SocketAddr, path: &str, secret: &str) -> Option<(u16, String)> {
    let url = format!("http://{addr}{}", path.replace("{state}", secret));
    let response = reqwest::Client::new().get(url).send().await.ok()?;
    Some((response.status().as_u16(), response.text().await.unwrap()))
}

/// What happened: the outcome, the URL shown to the user, and the browser's answers.
struct Run {
    result: Result<Outcome, CallbackError>,
    state: State,
    shown: Option<String>,
    browser: Vec<Option<(u16, String)>>,
}

/// Runs an account request with a callback listening on a free loopback port; once the URL is
/// shown, a simulated browser visits `paths` on the listener in turn.
async fn run(fake: &FakeProvider, pkce: bool, paths: &[&str], timeout: Duration) -> Run {
    let client = fake.client();
    let mut body = provisio_orchestrator::client::account_request_body(
        "ar_callback",
        "ada@example.com",
        "acct_test",
    );
    let verifier = pkce.then(|| {
        let (verifier, challenge) = pkce::pair().unwrap();
        body["code_challenge"] = json!(challenge);
        body["code_challenge_method"] = json!("S256");
        verifier
    });
    let callback = Callback::listen("127.0.0.1:0").await.unwrap();
    let addr = callback.local_addr();
    let mut state = State::default();
    let (shown_tx, shown_rx) = oneshot::channel();
    let (browser_tx, browser_rx) = oneshot::channel();
    let paths: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
    let secret = {
        let seen = fake.seen.clone();
        move || seen.account_requests.lock().unwrap()[0]["confirmation_secret"].clone()
    };
    let open = move |url: &str| {
        shown_tx.send(url.to_string()).unwrap();
        let secret = secret().as_str().unwrap_or_default().to_string();
        tokio::spawn(async move {
            let mut answers = Vec::new();
            for path in &paths {
                answers.push(visit(addr, path, &secret).await);
            }
            browser_tx.send(answers).unwrap();
        });
    };
    let result =
        callback::account_request(&client, &mut state, body, verifier, callback, timeout, open)
            .await;
    let shown = shown_rx.await.ok();
    let browser = browser_rx.await.unwrap_or_default();
    Run { result, state, shown, browser }
}

fn is_page(answer: &Option<(u16, String)>, status: u16, text: &str) -> bool {
    matches!(answer, Some((s, body)) if *s == status && body.contains(text))
}

#[tokio::test]
async fn the_browsers_code_is_exchanged_with_the_pkce_verifier_and_the_tokens_saved() {
    let fake = FakeProvider::start(true).await;
    let callback = format!("/callback?code={BROWSER_CODE}&state={{state}}");
    let run = run(&fake, true, &[&callback], Duration::from_secs(30)).await;

    assert_eq!(run.shown, Some(format!("{}/consent/one-time-token", fake.base_url)));
    assert!(is_page(&run.browser[0], 200, "You can close this window"), "{:?}", run.browser);
    let Ok(Outcome::Exchanged { requested, token }) = run.result else {
        panic!("{:?}", run.result);
    };
    assert_eq!(requested.json.unwrap()["type"], "requires_auth");
    assert_eq!(token.status, 200);
    // A fresh secret went with the request: 32 random bytes, base64url.
    assert_eq!(fake.secret().len(), 43);
    let exchanges = fake.exchanges();
    assert_eq!(exchanges.len(), 1);
    assert_eq!(exchanges[0]["grant_type"], "authorization_code");
    assert_eq!(exchanges[0]["code"], BROWSER_CODE);
    assert!(exchanges[0].contains_key("code_verifier"));
    let saved = State {
        access_token: Some("at_browser".into()),
        refresh_token: Some("rt_browser".into()),
        organization_id: Some("org_browser".into()),
        ..State::default()
    };
    assert_eq!(run.state, saved);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state.json");
    run.state.save(&file).unwrap();
    assert_eq!(State::load(&file).unwrap(), saved);
}

#[tokio::test]
async fn a_confirmation_secret_already_in_the_body_is_the_one_checked() {
    let fake = FakeProvider::start(true).await;
    let client = fake.client();
    let mut body =
        provisio_orchestrator::client::account_request_body("ar_preset", "ada@example.com", "acct");
    body["confirmation_secret"] = json!("preset_secret");
    let callback = Callback::listen("127.0.0.1:0").await.unwrap();
    let addr = callback.local_addr();
    let open = move |_: &str| {
        let path = format!("/?state=preset_secret&code={BROWSER_CODE}");
        tokio::spawn(async move { visit(addr, &path, "").await });
    };
    let mut state = State::default();
    let outcome = callback::account_request(
        &client,
        &mut state,
        body,
        None,
        callback,
        Duration::from_secs(30),
        open,
    )
    .await
    .unwrap();
    assert!(matches!(outcome, Outcome::Exchanged { .. }), "{outcome:?}");
    assert_eq!(fake.secret(), "preset_secret");
    assert_eq!(state.access_token.as_deref(), Some("at_browser"));
}

#[tokio::test]
async fn a_wrong_state_is_an_error_and_nothing_is_exchanged() {
    let fake = FakeProvider::start(true).await;
    let path = format!("/callback?code={BROWSER_CODE}&state=not-the-secret");
    let run = run(&fake, false, &[&path], Duration::from_secs(30)).await;
    assert!(matches!(run.result, Err(CallbackError::StateMismatch)), "{:?}", run.result);
    assert!(is_page(&run.browser[0], 400, "nothing was linked"), "{:?}", run.browser);
    assert!(fake.exchanges().is_empty());
    assert_eq!(run.state, State::default());
}

#[tokio::test]
async fn a_decline_with_a_wrong_state_is_a_state_mismatch() {
    let fake = FakeProvider::start(true).await;
    let run =
        run(&fake, false, &["/?error=access_denied&state=forged"], Duration::from_secs(30)).await;
    assert!(matches!(run.result, Err(CallbackError::StateMismatch)), "{:?}", run.result);
}

#[tokio::test]
async fn access_denied_reports_that_the_user_declined() {
    let fake = FakeProvider::start(true).await;
    let run =
        run(&fake, true, &["/callback?error=access_denied&state={state}"], Duration::from_secs(30))
            .await;
    let Err(error) = run.result else { panic!("{:?}", run.result) };
    assert!(matches!(error, CallbackError::Declined));
    assert_eq!(error.to_string(), "The user declined");
    assert!(is_page(&run.browser[0], 200, "You can close this window"), "{:?}", run.browser);
    assert!(fake.exchanges().is_empty());
    assert_eq!(run.state, State::default());
}

#[tokio::test]
async fn another_error_is_reported_with_its_description() {
    let fake = FakeProvider::start(true).await;
    let path = "/cb?error=server_error&error_description=try+later&state={state}";
    let run = run(&fake, false, &[path], Duration::from_secs(30)).await;
    let Err(error) = run.result else { panic!("{:?}", run.result) };
    assert!(matches!(&error, CallbackError::Provider { error, .. } if error == "server_error"));
    assert!(error.to_string().contains("try later"), "{error}");
    assert!(fake.exchanges().is_empty());
}

#[tokio::test]
async fn stray_requests_are_answered_404_and_the_real_callback_still_works() {
    let fake = FakeProvider::start(true).await;
    let callback = format!("/callback?code={BROWSER_CODE}&state={{state}}");
    let paths = [
        "/favicon.ico",
        "/callback",
        "/callback?code=stolen",
        "/callback?state={state}",
        "/callback?state={state}&code=",
        &callback,
        // A reload once the callback has been taken: 404, or the port is already closed.
        &callback,
    ];
    let run = run(&fake, false, &paths, Duration::from_secs(30)).await;
    for (path, answer) in paths.iter().zip(&run.browser).take(5) {
        assert!(is_page(answer, 404, "Not found"), "{path}: {answer:?}");
    }
    assert!(is_page(&run.browser[5], 200, "You can close this window"), "{:?}", run.browser);
    assert!(matches!(&run.browser[6], None | Some((404, _))), "{:?}", run.browser[6]);
    assert!(matches!(run.result, Ok(Outcome::Exchanged { .. })), "{:?}", run.result);
    assert_eq!(fake.exchanges().len(), 1);
    assert_eq!(run.state.access_token.as_deref(), Some("at_browser"));
}

#[tokio::test]
async fn a_post_is_not_the_callback() {
    let fake = FakeProvider::start(true).await;
    let client = fake.client();
    let body = provisio_orchestrator::client::account_request_body("ar_post", "a@example.com", "a");
    let callback = Callback::listen("127.0.0.1:0").await.unwrap();
    let addr = callback.local_addr();
    let seen = fake.seen.clone();
    let (posted_tx, posted_rx) = oneshot::channel();
    let open = move |_: &str| {
        let secret = seen.account_requests.lock().unwrap()[0]["confirmation_secret"]
            .as_str()
            .unwrap()
            .to_string();
        tokio::spawn(async move {
            let url = format!("http://{addr}/callback?code={BROWSER_CODE}&state={secret}");
            let posted = reqwest::Client::new().post(&url).send().await.unwrap().status();
            posted_tx.send(posted.as_u16()).unwrap();
            reqwest::Client::new().get(&url).send().await.unwrap();
        });
    };
    let mut state = State::default();
    let outcome = callback::account_request(
        &client,
        &mut state,
        body,
        None,
        callback,
        Duration::from_secs(30),
        open,
    )
    .await;
    assert_eq!(posted_rx.await.unwrap(), 404);
    assert!(matches!(outcome, Ok(Outcome::Exchanged { .. })), "{outcome:?}");
}

#[tokio::test]
async fn no_callback_within_the_timeout_is_an_error() {
    let fake = FakeProvider::start(true).await;
    let run = run(&fake, false, &["/favicon.ico"], Duration::from_millis(300)).await;
    assert!(matches!(run.result, Err(CallbackError::Timeout(_))), "{:?}", run.result);
    assert!(fake.exchanges().is_empty());
}

#[tokio::test]
async fn an_oauth_answer_is_remembered_as_without_a_callback_and_the_port_closed() {
    let fake = FakeProvider::start(false).await;
    let run = run(&fake, true, &[], Duration::from_secs(30)).await;
    let Ok(Outcome::Answered(reply)) = run.result else { panic!("{:?}", run.result) };
    assert_eq!(reply.json.unwrap()["oauth"]["code"], DIRECT_CODE);
    assert_eq!(run.shown, None);
    assert_eq!(run.state.code.as_deref(), Some(DIRECT_CODE));
    assert!(run.state.code_verifier.is_some());
    assert!(fake.exchanges().is_empty());
}

#[tokio::test]
async fn the_listener_closes_when_no_browser_step_is_needed() {
    let fake = FakeProvider::start(false).await;
    let callback = Callback::listen("127.0.0.1:0").await.unwrap();
    let addr = callback.local_addr();
    let body =
        provisio_orchestrator::client::account_request_body("ar_close", "a@example.com", "a");
    let mut state = State::default();
    let outcome = callback::account_request(
        &fake.client(),
        &mut state,
        body,
        None,
        callback,
        Duration::from_secs(30),
        |_| {},
    )
    .await
    .unwrap();
    assert!(matches!(outcome, Outcome::Answered(_)));
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the port is closed");
}

#[tokio::test]
async fn only_loopback_addresses_are_listened_on() {
    for addr in ["0.0.0.0:0", "192.0.2.1:8765", "[::]:0"] {
        let error = Callback::listen(addr).await.unwrap_err();
        assert!(matches!(error, CallbackError::NotLoopback(_)), "{addr}: {error}");
        assert!(error.to_string().contains("not a loopback address"), "{error}");
    }
    for addr in ["localhost:8765", "127.0.0.1", "nonsense"] {
        let error = Callback::listen(addr).await.unwrap_err();
        assert!(matches!(error, CallbackError::Address(_)), "{addr}: {error}");
    }
    let taken = Callback::listen("127.0.0.1:0").await.unwrap();
    let again = Callback::listen(&taken.local_addr().to_string()).await.unwrap_err();
    assert!(matches!(again, CallbackError::Bind { .. }), "{again}");
}

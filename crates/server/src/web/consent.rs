//! The consent leg's pages: `GET /consent?token=…` (who asks, for which email, which scopes),
//! `POST /consent/link` (email me a sign-in link), `GET /consent/verify?token=…` (the emailed link:
//! proves the address in this browser), `GET /consent/choose` (pick a project), `POST
//! /consent/confirm` and `POST /consent/decline` (back to the orchestrator's `callback_url`).
//! Every form carries an anti-forgery value bound to its consent; no JavaScript.

use axum::{
    Form,
    extract::{Query, State, rejection::FormRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{branded, harden, page, pages};
use crate::{
    domain::accounts::consent::{ConsentError, ConsentLeg, ConsentPage},
    http::openapi::{ConsentFormAnswers, ConsentPageAnswers},
    rate_limit::Scope,
    state::AppState,
};

/// The cookie that holds the proof of the email (`Path=/consent`).
const PROOF_COOKIE: &str = "provisio_consent";

fn leg(state: &AppState) -> Option<ConsentLeg<'_>> {
    Some(ConsentLeg {
        store: &state.store,
        connector: state.connector.as_deref(),
        mailer: state.mailer.as_deref()?,
        orchestrators: &state.orchestrators,
        public_url: &state.public_url,
        server_secret: &state.server_secret,
    })
}

#[derive(Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
}

#[derive(Deserialize)]
pub struct ConsentQuery {
    consent: Option<String>,
}

/// Every form: which consent, and its anti-forgery value.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct ConsentForm {
    consent: String,
    csrf: String,
    #[serde(default)]
    choice: String,
}

/// `GET /consent?token=…`.
#[utoipa::path(
    get,
    path = "/consent",
    tag = "consent",
    summary = "Consent leg: who asks, for which email; start proving the address",
    params(("token" = Option<String>, Query, description = "The consent request")),
    responses(ConsentPageAnswers)
)]
pub async fn show(State(state): State<AppState>, Query(query): Query<TokenQuery>) -> Response {
    let Some(leg) = leg(&state) else { return unavailable(&state) };
    let token = query.token.unwrap_or_default();
    match leg.open(&token, state.clock.now()).await {
        Ok(consent) => with_callback(page(StatusCode::OK, pages::consent(&consent)), &consent),
        Err(e) => refused(e),
    }
}

/// `POST /consent/link`: emails the sign-in link, within the limits per consent and per address.
#[utoipa::path(
    post,
    path = "/consent/link",
    tag = "consent",
    summary = "Consent leg: email a one-time sign-in link (15 minutes)",
    request_body(content = ConsentForm, content_type = "application/x-www-form-urlencoded"),
    responses(ConsentFormAnswers)
)]
pub async fn send_link(State(state): State<AppState>, form: Posted) -> Response {
    let Some(leg) = leg(&state) else { return unavailable(&state) };
    let Some(form) = genuine(&leg, form) else { return refused(ConsentError::Forbidden) };
    let now = state.clock.now();
    let address = match leg.address_of(&form.consent, now).await {
        Ok(address) => address,
        Err(e) => return refused(e),
    };
    let limited = match state.limit(Scope::ConsentEmail, &form.consent).await {
        Ok(()) => state.limit(Scope::ConsentAddress, &address).await,
        refused => refused,
    };
    if let Err(seconds) = limited {
        let mut response = page(StatusCode::TOO_MANY_REQUESTS, pages::consent_too_many());
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    match leg.send_link(&form.consent, now).await {
        Ok(()) => page(
            StatusCode::OK,
            pages::consent_link_sent(&crate::domain::accounts::consent::mask_email(&address)),
        ),
        Err(e) => refused(e),
    }
}

/// `GET /consent/verify?token=…`: spends the emailed link, sets the proof cookie, and goes on to
/// the choice.
#[utoipa::path(
    get,
    path = "/consent/verify",
    tag = "consent",
    summary = "Consent leg: the emailed link; proves the address in this browser",
    params(("token" = Option<String>, Query, description = "The emailed link's token")),
    responses(
        (status = 303, description = "to the choice, with the proof cookie"),
        (status = 404, description = "unknown", content_type = "text/html", body = String),
        (status = 410, description = "link used or expired", content_type = "text/html", body = String),
        (status = 502, description = "connector mode: the SaaS failed", content_type = "text/html", body = String),
    )
)]
pub async fn verify(State(state): State<AppState>, Query(query): Query<TokenQuery>) -> Response {
    let Some(leg) = leg(&state) else { return unavailable(&state) };
    let token = query.token.unwrap_or_default();
    match leg.prove(&token, state.clock.now()).await {
        Ok((consent, proof)) => {
            let mut response =
                Redirect::to(&format!("/consent/choose?consent={consent}")).into_response();
            let secure = if state.public_url.starts_with("https://") { "; Secure" } else { "" };
            // Lax, not Strict: the link arrives from a mail client (another site), and the
            // redirect that follows must carry the cookie. Forms are checked by their csrf value.
            let cookie = format!(
                "{PROOF_COOKIE}={proof}; Path=/consent; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
                crate::domain::accounts::CONSENT_TTL_SECS
            );
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            harden(response)
        }
        Err(e) => refused(e),
    }
}

/// `GET /consent/choose?consent=…`.
#[utoipa::path(
    get,
    path = "/consent/choose",
    tag = "consent",
    summary = "Consent leg: choose the project the orchestrator may reach",
    params(("consent" = Option<String>, Query, description = "The consent request")),
    responses(ConsentPageAnswers)
)]
pub async fn choose(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<ConsentQuery>,
) -> Response {
    let Some(leg) = leg(&state) else { return unavailable(&state) };
    let consent = query.consent.unwrap_or_default();
    match leg.choices(&consent, proof(&headers), state.clock.now()).await {
        Ok((data, choices)) => {
            with_callback(page(StatusCode::OK, pages::consent_choose(&data, &choices)), &data)
        }
        Err(e) => refused(e),
    }
}

/// `POST /consent/confirm`: 302 to `callback_url?code=…&state=…`.
#[utoipa::path(
    post,
    path = "/consent/confirm",
    tag = "consent",
    summary = "Consent leg: mint the code and return to the orchestrator",
    request_body(content = ConsentForm, content_type = "application/x-www-form-urlencoded"),
    responses(ConsentFormAnswers)
)]
pub async fn confirm(State(state): State<AppState>, headers: HeaderMap, form: Posted) -> Response {
    let Some(leg) = leg(&state) else { return unavailable(&state) };
    let Some(form) = genuine(&leg, form) else { return refused(ConsentError::Forbidden) };
    let answer = leg.confirm(&form.consent, proof(&headers), &form.choice, state.clock.now()).await;
    to_callback(answer)
}

/// `POST /consent/decline`: 302 to `callback_url?error=access_denied&state=…`.
#[utoipa::path(
    post,
    path = "/consent/decline",
    tag = "consent",
    summary = "Consent leg: decline and return to the orchestrator",
    request_body(content = ConsentForm, content_type = "application/x-www-form-urlencoded"),
    responses(ConsentFormAnswers)
)]
pub async fn decline(State(state): State<AppState>, form: Posted) -> Response {
    let Some(leg) = leg(&state) else { return unavailable(&state) };
    let Some(form) = genuine(&leg, form) else { return refused(ConsentError::Forbidden) };
    to_callback(leg.decline(&form.consent, state.clock.now()).await)
}

/// A posted consent form, as the browser sent it.
type Posted = Result<Form<ConsentForm>, FormRejection>;

/// The form, if it is one of the leg's own: complete, and its anti-forgery value bound to its
/// consent. Anything else (fields missing, not a form at all, a forged value) is a forged form.
fn genuine(leg: &ConsentLeg<'_>, form: Posted) -> Option<ConsentForm> {
    form.ok().map(|Form(form)| form).filter(|form| leg.form_is_genuine(&form.consent, &form.csrf))
}

fn to_callback(answer: Result<String, ConsentError>) -> Response {
    match answer.map(|url| HeaderValue::from_str(&url)) {
        Ok(Ok(location)) => {
            harden((StatusCode::FOUND, [(header::LOCATION, location)]).into_response())
        }
        Ok(Err(_)) => refused(ConsentError::Unknown),
        Err(e) => refused(e),
    }
}

/// The pages' forms answer with a redirect to the orchestrator's `callback_url`: their
/// `form-action` allows that origin too (browsers apply it to the redirect).
fn with_callback(mut response: Response, consent: &ConsentPage) -> Response {
    let policy = format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' {}; frame-ancestors 'none'",
        consent.callback_origin
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

fn proof(headers: &HeaderMap) -> Option<&str> {
    super::cookie(headers, PROOF_COOKIE)
}

/// The page that says why the leg cannot go on.
fn refused(e: ConsentError) -> Response {
    let status = match &e {
        ConsentError::Unknown => StatusCode::NOT_FOUND,
        ConsentError::Expired
        | ConsentError::Used
        | ConsentError::Superseded
        | ConsentError::Link => StatusCode::GONE,
        ConsentError::Forbidden => StatusCode::FORBIDDEN,
        ConsentError::Choice => StatusCode::CONFLICT,
        ConsentError::Mail(_) | ConsentError::Account(_) | ConsentError::Store(_) => {
            tracing::warn!(error = %e, "consent leg failed");
            StatusCode::BAD_GATEWAY
        }
    };
    page(status, pages::consent_refused(&e))
}

fn unavailable(state: &AppState) -> Response {
    branded(state, StatusCode::NOT_FOUND, pages::not_found(&state.dashboard))
}

//! The dashboard a user lands on from a one-time link: server-rendered pages, a session cookie,
//! no JavaScript. `GET /login` turns a link into a session; `/` lists the user's projects;
//! `/projects/{id}` shows one; `POST /logout` ends the session.

pub mod brand;
pub mod consent;
mod pages;

use std::net::SocketAddr;

use axum::{
    extract::{ConnectInfo, Path, Query, State},
    http::{Extensions, HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use crate::{
    client_addr::limit_key,
    domain::dashboard::{self, DashboardError},
    http::openapi::ProjectPath,
    rate_limit::Scope,
    state::AppState,
    store::StoreError,
};

pub use brand::{Brand, DashboardSpec};
use pages::SignedIn;

const COOKIE: &str = "provisio_session";

#[derive(Deserialize)]
pub struct LoginQuery {
    token: Option<String>,
}

/// `GET /login?token=…&project_id=…`: the link's own project decides where the user lands.
/// Limited per client address (behind trusted proxies, the one they forward), so link tokens
/// cannot be guessed at speed.
#[utoipa::path(
    get,
    path = "/login",
    tag = "dashboard",
    summary = "Open a dashboard link: sets the session cookie and redirects",
    params(("token" = Option<String>, Query, description = "The link's one-time token")),
    responses(
        (status = 302, description = "connector mode: to the SaaS's own dashboard"),
        (status = 303, description = "to the project page, or to / with an error"),
        (status = 429, description = "too many attempts", content_type = "text/html", body = String),
        (status = 502, description = "connector mode: the SaaS could not open the session", content_type = "text/html", body = String),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    extensions: Extensions,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    let client = extensions.get::<ConnectInfo<SocketAddr>>().map_or_else(
        || "unknown".to_string(),
        |peer| limit_key(state.trusted_proxies.client(peer.0.ip(), &headers)),
    );
    if let Err(seconds) = state.limit(Scope::LoginIp, &client).await {
        let mut response =
            branded(&state, StatusCode::TOO_MANY_REQUESTS, pages::too_many(&state.dashboard));
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let Some(token) = query.token.filter(|t| !t.is_empty()) else {
        return Redirect::to("/?error=missing_token").into_response();
    };
    if let Some(saas) = &state.connector {
        return match dashboard::open_in_saas(&state.store, saas, &token, state.clock.now()).await {
            Ok(url) => match HeaderValue::from_str(&url) {
                Ok(location) => {
                    harden((StatusCode::FOUND, [(header::LOCATION, location)]).into_response())
                }
                Err(_) => branded(
                    &state,
                    StatusCode::BAD_GATEWAY,
                    pages::saas_login_failed(&state.dashboard),
                ),
            },
            Err(DashboardError::InvalidLink) => {
                Redirect::to("/?error=expired_or_invalid_token").into_response()
            }
            Err(e) => {
                tracing::warn!(error = %e, "dashboard login into the SaaS failed");
                branded(&state, StatusCode::BAD_GATEWAY, pages::saas_login_failed(&state.dashboard))
            }
        };
    }
    match dashboard::open_session(&state.store, &token, state.clock.now()).await {
        Ok((session, project_id)) => {
            let mut response = Redirect::to(&format!("/projects/{project_id}")).into_response();
            let secure = if state.public_url.starts_with("https://") { "; Secure" } else { "" };
            let cookie = format!(
                "{COOKIE}={session}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
                dashboard::SESSION_TTL_SECS
            );
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            harden(response)
        }
        Err(DashboardError::InvalidLink) => {
            Redirect::to("/?error=expired_or_invalid_token").into_response()
        }
        Err(e) => failure(&state, e),
    }
}

#[derive(Deserialize)]
pub struct HomeQuery {
    error: Option<String>,
}

/// `GET /`: the user's projects, or why there is no session.
#[utoipa::path(
    get,
    path = "/",
    tag = "dashboard",
    summary = "The user's projects",
    security(("session" = []), ()),
    params(("error" = Option<String>, Query, description = "Why the last step failed")),
    responses((status = 200, description = "HTML", content_type = "text/html", body = String), (status = 500, description = "HTML", content_type = "text/html", body = String))
)]
pub async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HomeQuery>,
) -> Response {
    let user = match current_user(&state, &headers).await {
        Ok(user) => user,
        Err(e) => return failure(&state, e),
    };
    let (who, projects) = match &user {
        Some(user) => {
            match (
                signed_in(&state, user, true).await,
                dashboard::projects(&state.store, user).await,
            ) {
                (Ok((email, organizations)), Ok(projects)) => (
                    Some(SignedIn { email, organization: organizations.join(", ") }),
                    Some(projects),
                ),
                (Err(e), _) | (_, Err(e)) => return failure(&state, e),
            }
        }
        None => (None, None),
    };
    let markup =
        pages::home(&state.dashboard, who.as_ref(), query.error.as_deref(), projects.as_deref());
    branded(&state, StatusCode::OK, markup)
}

/// `GET /projects/{id}`.
#[utoipa::path(
    get,
    path = "/projects/{id}",
    tag = "dashboard",
    summary = "One project with its keys",
    security(("session" = [])),
    params(ProjectPath),
    responses(
        (status = 200, description = "HTML", content_type = "text/html", body = String),
        (status = 303, description = "no session: to /"),
        (status = 404, description = "not the user's", content_type = "text/html", body = String),
        (status = 500, description = "HTML", content_type = "text/html", body = String),
    )
)]
pub async fn project(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(raw_id): Path<String>,
) -> Response {
    let user = match current_user(&state, &headers).await {
        Ok(Some(user)) => user,
        Ok(None) => return Redirect::to("/?error=login_required").into_response(),
        Err(e) => return failure(&state, e),
    };
    let Ok(id) = raw_id.parse::<i64>() else {
        return branded(&state, StatusCode::NOT_FOUND, pages::not_found(&state.dashboard));
    };
    match dashboard::project(&state.store, &user, id).await {
        Ok(Some(project)) => match signed_in(&state, &user, false).await {
            Ok((email, _)) => {
                let who =
                    SignedIn { email, organization: project.summary.organization_name.clone() };
                branded(&state, StatusCode::OK, pages::project(&state.dashboard, &who, &project))
            }
            Err(e) => failure(&state, e),
        },
        Ok(None) => branded(&state, StatusCode::NOT_FOUND, pages::not_found(&state.dashboard)),
        Err(e) => failure(&state, e),
    }
}

/// `POST /logout`. The cookie is SameSite=Lax, so another site cannot post this form for the user.
#[utoipa::path(
    post,
    path = "/logout",
    tag = "dashboard",
    summary = "End the session",
    security(("session" = [])),
    responses((status = 303, description = "to /"), (status = 403, description = "another site's form", content_type = "text/html", body = String))
)]
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    // A browser names the page a form came from: another site's form is refused, whatever
    // SameSite does for the cookie (older browsers, same-site subdomains).
    if !same_origin(&state.public_url, &headers) {
        return branded(&state, StatusCode::FORBIDDEN, pages::failure(&state.dashboard));
    }
    if let Some(session) = session_cookie(&headers)
        && let Err(e) = dashboard::close_session(&state.store, session).await
    {
        return failure(&state, e);
    }
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("provisio_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    response
}

/// Whether the request's `Origin`, when it has one, is this provider's own.
fn same_origin(public_url: &str, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else { return true };
    let own = reqwest::Url::parse(public_url).map(|u| u.origin().ascii_serialization());
    own.is_ok_and(|own| origin.as_bytes() == own.as_bytes())
}

async fn current_user(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<String>, DashboardError> {
    match session_cookie(headers) {
        Some(session) => dashboard::session_user(&state.store, session, state.clock.now()).await,
        None => Ok(None),
    }
}

/// Who the header names: the user's address and, when `organizations`, the names of the user's
/// organizations (oldest membership first).
async fn signed_in(
    state: &AppState,
    user_id: &str,
    organizations: bool,
) -> Result<(String, Vec<String>), DashboardError> {
    let (user, wanted) = (user_id.to_string(), organizations);
    let found = state
        .store
        .read(move |conn| -> Result<_, StoreError> {
            let email = crate::store::inbound::user_email(conn, &user)?.unwrap_or_default();
            let mut organizations = Vec::new();
            let ids = if wanted {
                crate::store::accounts::organizations_of(conn, &user)?
            } else {
                vec![]
            };
            for id in ids {
                organizations.push(crate::store::accounts::organization_name(conn, &id)?);
            }
            Ok((email, organizations))
        })
        .await?;
    Ok(found)
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, COOKIE)
}

/// The value of the cookie `wanted`, if the request carries a non-empty one.
fn cookie<'h>(headers: &'h HeaderMap, wanted: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

fn page(status: StatusCode, markup: maud::Markup) -> Response {
    harden((status, markup).into_response())
}

/// A dashboard page: [`page`], with the policy `[dashboard]` asks for (images from the logo's
/// origin, when there is a logo).
fn branded(state: &AppState, status: StatusCode, markup: maud::Markup) -> Response {
    let mut response = page(status, markup);
    if let Ok(policy) = HeaderValue::from_str(&state.dashboard.content_security_policy) {
        response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    response
}

fn failure(state: &AppState, e: DashboardError) -> Response {
    tracing::error!(error = %e, "dashboard failed");
    branded(state, StatusCode::INTERNAL_SERVER_ERROR, pages::failure(&state.dashboard))
}

/// Pages carry credentials: never cached, never framed, never leaking their URL onwards.
fn harden(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(brand::DEFAULT_CSP));
    response
}

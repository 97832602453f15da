//! The dashboard's HTML, rendered with maud (escaped by construction).

use maud::{DOCTYPE, Markup, PreEscaped, html};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::brand::Brand;
use crate::{
    domain::accounts::consent::{Choice, ConsentError, ConsentPage},
    store::dashboard::{ProjectPage, ProjectSummary},
};

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1d1d1f}\
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #ddd}\
code{background:#f3f3f5;padding:.1rem .3rem;border-radius:4px}.error{background:#fdecec;padding:.75rem;border-radius:6px}\
.muted{color:#666}button{padding:.4rem .9rem}form{margin-top:1.5rem}";

/// The dashboard's header, in the colours above unless `[dashboard] accent_color` is set.
const HEADER_STYLE: &str = ".top{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1rem;\
padding-bottom:.75rem;margin-bottom:1.5rem;border-bottom:1px solid #ddd}\
.product{display:flex;align-items:center;gap:.5rem;font-weight:600;font-size:1.1rem;color:inherit;text-decoration:none}\
.product img{height:28px;width:auto}.who{margin:0;flex:1;min-width:12rem}.top nav{display:flex;align-items:center;gap:1rem}\
.top form{margin:0}";

/// Who is signed in, as the header shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub email: String,
    /// The organization the page is about (a project's), or every one of the user's.
    pub organization: String,
}

/// The document around every page: its title, whose page it is, its style sheet, its body.
fn document(title: &str, owner: &str, style: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (owner) }
                style { (PreEscaped(style)) }
            }
            body { (body) }
        }
    }
}

/// A consent page: provisio's own look (the consent leg is not the dashboard).
fn layout(title: &str, body: Markup) -> Markup {
    document(title, "provisio", STYLE, body)
}

/// A dashboard page: the product's name and logo, who is signed in, the way back to the SaaS.
fn dashboard(brand: &Brand, who: Option<&SignedIn>, title: &str, body: Markup) -> Markup {
    let style = format!("{STYLE}{HEADER_STYLE}{}", accent_style(brand));
    let page = html! {
        header.top {
            a.product href="/" {
                @if let Some(logo) = &brand.logo_url {
                    img id="logo" src=(logo) alt="" height="28";
                }
                span id="product-name" { (brand.product_name) }
            }
            @if let Some(who) = who {
                p.who id="signed-in" {
                    "Signed in as " strong id="signed-in-email" { (who.email) }
                    @if !who.organization.is_empty() {
                        span.muted { " · " }
                        span id="signed-in-organization" { (who.organization) }
                    }
                }
            }
            nav {
                @if let Some(home) = &brand.home_url {
                    a id="home-link" href=(home) { "Back to " (brand.product_name) }
                }
                @if who.is_some() {
                    (logout())
                }
            }
        }
        main { (body) }
    };
    document(title, &brand.product_name, &style, page)
}

/// The accent's rules: the header's rule, links, buttons (text dark or light, whichever reads).
/// The colour is a checked `#rgb`/`#rrggbb`, so it is safe in a style sheet.
fn accent_style(brand: &Brand) -> String {
    let Some(accent) = &brand.accent_color else { return String::new() };
    let text = if is_light(accent) { "#1d1d1f" } else { "#fff" };
    format!(
        ".top{{border-bottom:3px solid {accent}}}a{{color:{accent}}}.product{{color:inherit}}\
button{{background:{accent};color:{text};border:1px solid {accent};border-radius:4px}}"
    )
}

/// Whether dark text reads better than white on `#rgb`/`#rrggbb` (relative luminance above ~0.5).
fn is_light(colour: &str) -> bool {
    let digits = colour.trim_start_matches('#');
    let channel = |i: usize| -> f64 {
        let hex = if digits.len() == 3 {
            digits.get(i..=i).map(|d| d.repeat(2)).unwrap_or_default()
        } else {
            digits.get(2 * i..2 * i + 2).map(String::from).unwrap_or_default()
        };
        f64::from(u8::from_str_radix(&hex, 16).unwrap_or(0)) / 255.0
    };
    0.2126 * channel(0) + 0.7152 * channel(1) + 0.0722 * channel(2) > 0.55
}

fn error_text(code: &str) -> &'static str {
    match code {
        "expired_or_invalid_token" => {
            "This dashboard link has expired or was already used. Ask your agent for a new one."
        }
        "missing_token" => "This dashboard link is incomplete. Ask your agent for a new one.",
        "login_required" => "Your session has ended. Open a new dashboard link from your agent.",
        _ => "Something went wrong. Open a new dashboard link from your agent.",
    }
}

/// Connector mode: the SaaS did not sign the user in (the link is spent).
pub fn saas_login_failed(brand: &Brand) -> Markup {
    dashboard(
        brand,
        None,
        "Sign-in failed",
        html! {
            h1 { "We could not sign you in" }
            p.error id="error" data-error="saas_login_failed" {
                "The dashboard did not accept this sign-in. Ask your agent for a new dashboard link."
            }
        },
    )
}

pub fn home(
    brand: &Brand,
    who: Option<&SignedIn>,
    error: Option<&str>,
    projects: Option<&[ProjectSummary]>,
) -> Markup {
    dashboard(
        brand,
        who,
        "Dashboard",
        html! {
            h1 { "Dashboard" }
            @if let Some(code) = error {
                p.error id="error" data-error=(code) { (error_text(code)) }
            }
            @match projects {
                Some(projects) => {
                    h2 { "Your projects" }
                    table {
                        tr { th { "Project" } th { "Organization" } th { "Service" } }
                        @for p in projects {
                            tr {
                                td { a href={ "/projects/" (p.id) } { (p.name) } }
                                td { (p.organization_name) }
                                td { (p.service_id.as_deref().unwrap_or("—")) }
                            }
                        }
                    }
                }
                None => {
                    p.muted { "Open the dashboard from your coding agent: it hands you a one-time link." }
                }
            }
        },
    )
}

pub fn project(brand: &Brand, who: &SignedIn, page: &ProjectPage) -> Markup {
    let p = &page.summary;
    dashboard(
        brand,
        Some(who),
        &p.name,
        html! {
            p { a href="/" { "← All projects" } }
            h1 id="project-name" { (p.name) }
            table {
                tr { th { "Organization" } td id="organization" { (p.organization_name) } }
                tr { th { "Project id" } td { (p.id) } }
                tr { th { "Plan" } td { (page.plan.as_deref().unwrap_or("free")) } }
                tr { th { "Service" } td { (p.service_id.as_deref().unwrap_or("not provisioned")) } }
                tr { th { "Status" } td { (p.status.as_deref().unwrap_or("—")) } }
                tr { th { "Project key (public)" } td { code id="api-key" { (page.api_key) } } }
            }
            h2 { "Personal API keys" }
            @if page.personal_keys.is_empty() {
                p.muted { "No personal keys yet." }
            } @else {
                table id="personal-keys" {
                    tr { th { "Label" } th { "Key" } th { "Created" } th { "Revoked" } }
                    @for k in &page.personal_keys {
                        tr {
                            td { (k.label) }
                            td { code.key-prefix { (k.prefix) "…" } }
                            td { (when(k.created_at)) }
                            td { (k.revoked_at.map(when).unwrap_or_else(|| "—".into())) }
                        }
                    }
                }
            }
        },
    )
}

pub fn not_found(brand: &Brand) -> Markup {
    dashboard(
        brand,
        None,
        "Not found",
        html! { h1 { "Not found" } p { "No such project in your organizations." } p { a href="/" { "Your projects" } } },
    )
}

pub fn too_many(brand: &Brand) -> Markup {
    dashboard(
        brand,
        None,
        "Slow down",
        html! { h1 { "Too many attempts" } p { "Please wait a moment and open your link again." } },
    )
}

pub fn failure(brand: &Brand) -> Markup {
    dashboard(
        brand,
        None,
        "Error",
        html! { h1 { "Something went wrong" } p { "Please try again in a moment." } },
    )
}

fn logout() -> Markup {
    html! { form method="post" action="/logout" { button type="submit" id="logout" { "Log out" } } }
}

fn when(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Who asks, for which address, for what; the first step is an emailed sign-in link.
pub fn consent(c: &ConsentPage) -> Markup {
    layout(
        "Connect your account",
        html! {
            h1 { (c.orchestrator_label) " wants to connect to your account" }
            p { "For the address " strong id="email" { (c.email_masked) } "." }
            @if !c.scopes.is_empty() {
                p { "It asks for:" }
                ul id="scopes" { @for scope in &c.scopes { li { code { (scope) } } } }
            }
            p { "First, prove that this address is yours: we email you a sign-in link, valid 15 minutes." }
            form method="post" action="/consent/link" {
                (consent_fields(c))
                button type="submit" id="send-link" { "Email me a sign-in link" }
            }
            (decline_form(c))
        },
    )
}

pub fn consent_link_sent(email_masked: &str) -> Markup {
    layout(
        "Check your inbox",
        html! {
            h1 { "Check your inbox" }
            p id="sent" { "We sent a sign-in link to " strong { (email_masked) } ". Open it in this browser within 15 minutes." }
        },
    )
}

pub fn consent_too_many() -> Markup {
    layout(
        "Too many emails",
        html! {
            h1 { "Too many sign-in emails" }
            p.error id="error" data-error="rate_limited" { "We sent several sign-in links already. Use the latest one, or try again in a few minutes." }
        },
    )
}

/// The address is proved: which project the orchestrator may reach.
pub fn consent_choose(c: &ConsentPage, choices: &[Choice]) -> Markup {
    layout(
        "Choose a project",
        html! {
            h1 { "Choose what " (c.orchestrator_label) " may reach" }
            p { "Signed in as " strong { (c.email_masked) } "." }
            form method="post" action="/consent/confirm" {
                (consent_fields(c))
                @for (i, choice) in choices.iter().enumerate() {
                    p {
                        label {
                            input type="radio" name="choice" value=(choice.value()) checked[i == 0];
                            " "
                            @match choice {
                                Choice::Project { name, organization_name, .. } => {
                                    (name) span.muted { " · " (organization_name) }
                                }
                                Choice::NewProject { organization_name, .. } => {
                                    "A new project" span.muted { " · " (organization_name) }
                                }
                                Choice::NewAccount => { "A new account for this address" }
                            }
                        }
                    }
                }
                button type="submit" id="confirm" { "Allow" }
            }
            (decline_form(c))
        },
    )
}

/// Why the leg stops here.
pub fn consent_refused(e: &ConsentError) -> Markup {
    let (code, text) = match e {
        ConsentError::Unknown => {
            ("unknown", "This link is not valid. Ask your agent to start again.")
        }
        ConsentError::Expired => {
            ("expired", "This request has expired. Ask your agent to start again.")
        }
        ConsentError::Used => {
            ("used", "This request was already answered. Nothing more to do here.")
        }
        ConsentError::Superseded => (
            "superseded",
            "A newer request replaced this one. Use the latest link your agent gave you.",
        ),
        ConsentError::Link => (
            "link",
            "This sign-in link has expired or was already used. Ask for a new one from the request page.",
        ),
        ConsentError::Forbidden => (
            "forbidden",
            "This browser has not proved the address. Open the sign-in link we emailed you.",
        ),
        ConsentError::Choice => {
            ("choice", "That choice is no longer available. Reload the page and choose again.")
        }
        ConsentError::Mail(_) | ConsentError::Account(_) | ConsentError::Store(_) => {
            ("failed", "Something went wrong on our side. Try again in a moment.")
        }
    };
    layout(
        "Cannot continue",
        html! {
            h1 { "We cannot continue" }
            p.error id="error" data-error=(code) { (text) }
        },
    )
}

fn consent_fields(c: &ConsentPage) -> Markup {
    html! {
        input type="hidden" name="consent" value=(c.consent);
        input type="hidden" name="csrf" value=(c.csrf);
    }
}

fn decline_form(c: &ConsentPage) -> Markup {
    html! {
        form method="post" action="/consent/decline" {
            (consent_fields(c))
            button type="submit" id="decline" { "Decline" }
        }
    }
}

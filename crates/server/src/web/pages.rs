//! The dashboard's HTML, rendered with maud (escaped by construction).

use maud::{DOCTYPE, Markup, html};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::store::dashboard::{ProjectPage, ProjectSummary};

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1d1d1f}\
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #ddd}\
code{background:#f3f3f5;padding:.1rem .3rem;border-radius:4px}.error{background:#fdecec;padding:.75rem;border-radius:6px}\
.muted{color:#666}button{padding:.4rem .9rem}form{margin-top:1.5rem}";

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · provisio" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
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
pub fn saas_login_failed() -> Markup {
    layout(
        "Sign-in failed",
        html! {
            h1 { "We could not sign you in" }
            p.error id="error" data-error="saas_login_failed" {
                "The dashboard did not accept this sign-in. Ask your agent for a new dashboard link."
            }
        },
    )
}

pub fn home(error: Option<&str>, projects: Option<&[ProjectSummary]>) -> Markup {
    layout(
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
                    (logout())
                }
                None => {
                    p.muted { "Open the dashboard from your coding agent: it hands you a one-time link." }
                }
            }
        },
    )
}

pub fn project(page: &ProjectPage) -> Markup {
    let p = &page.summary;
    layout(
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
            (logout())
        },
    )
}

pub fn not_found() -> Markup {
    layout(
        "Not found",
        html! { h1 { "Not found" } p { "No such project in your organizations." } p { a href="/" { "Your projects" } } },
    )
}

pub fn too_many() -> Markup {
    layout(
        "Slow down",
        html! { h1 { "Too many attempts" } p { "Please wait a moment and open your link again." } },
    )
}

pub fn failure() -> Markup {
    layout("Error", html! { h1 { "Something went wrong" } p { "Please try again in a moment." } })
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

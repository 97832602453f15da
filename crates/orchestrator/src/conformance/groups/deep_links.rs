//! `POST /provisioning/deep_links` (spec 5.10): a one-time dashboard link, its answer against the
//! shipped schema, what opening it once and twice does, and the endpoint's errors — flat, except
//! bearer failures (status envelope).
//!
//! The link is opened as a browser's first request would be: no redirect followed, no cookie sent —
//! except a redirect to another origin, which hands the browser to a dashboard that lives elsewhere
//! (provisio in connector mode answers `302` to the SaaS's one-time sign-in URL): that one answer is
//! opened too, since the session is set there. What the page at the link is (`/login`, the redirect
//! to `/projects/{id}`, the error redirects) is provisio's own choice, so those checks are tagged
//! `[provisio]`; where the first opening lands (`/projects/{id}`, the `provisio_session` cookie) is
//! provisio's built-in dashboard, tagged `[builtin]`.

use serde_json::{Value, json};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::super::{
    expect::{Expect, summarize},
    fixtures::{Account, Catalog, create_body, new_account, provision, refreshed},
    report::{
        Scope::{Protocol, Provisio},
        Tag::Builtin,
    },
    runner::{Recorder, Verdict, judge},
    schemas::Schema,
    wire::{Ctx, DEEP_LINKS},
};
use crate::{Reply, client::unix_now};
use reqwest::Url;

/// The spec's lifetime of a link (5.10), and the slack allowed for clocks and the network.
const TTL: i64 = 600;
const TTL_SLACK: i64 = 60;
/// The spec's words for another purpose (5.10).
const UNSUPPORTED: &str = "Unsupported purpose: billing. Supported: dashboard";
/// Where provisio sends a browser whose link is used, expired or unknown (spec 5.10).
const EXPIRED_OR_INVALID: &str = "/?error=expired_or_invalid_token";

fn dashboard() -> Value {
    json!({"purpose": "dashboard"})
}

pub async fn run(cx: &Ctx, rec: &mut Recorder<'_>) {
    issue_checks(cx, rec).await;
    open_checks(cx, rec).await;
    errors(cx, rec).await;
}

/// Issues a link for `account` that must succeed; the answer.
async fn issue(cx: &Ctx, account: &Account, body: &Value) -> Result<Value, String> {
    let reply = cx.post(DEEP_LINKS, body).bearer(account.access_token()).send().await?;
    match reply.json {
        Some(json) if reply.status == 200 && json["url"].is_string() => Ok(json),
        _ => Err(format!("set-up failed: the deep link answered {}", summarize(&reply))),
    }
}

/// A new user's link to its linked project; the user and the link's URL.
async fn fresh_link(cx: &Ctx) -> Result<(Account, String), String> {
    let account = new_account(cx).await?;
    let link = issue(cx, &account, &dashboard()).await?;
    Ok((account, link["url"].as_str().unwrap_or_default().to_string()))
}

/// The service the resource checks provision, for a resource to link to.
async fn any_service(cx: &Ctx) -> Result<String, String> {
    Ok(Catalog::fetch(cx).await?.subject().to_string())
}

async fn issue_checks(cx: &Ctx, rec: &mut Recorder<'_>) {
    rec.expect("issue", Protocol, Expect::schema(200, Schema::DeepLink), async {
        let account = new_account(cx).await?;
        cx.post(DEEP_LINKS, &dashboard()).bearer(account.access_token()).send().await
    })
    .await;
    rec.check(
        "expires_in_600s",
        Protocol,
        format!("expires_at is {TTL} s from now (± {TTL_SLACK} s), RFC 3339"),
        async {
            let account = new_account(cx).await?;
            let link = issue(cx, &account, &dashboard()).await?;
            let text = link["expires_at"].as_str().unwrap_or_default();
            let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) else {
                return Err(format!("expires_at {text:?} is not RFC 3339"));
            };
            let ahead = at.unix_timestamp() - unix_now();
            judge((ahead - TTL).abs() <= TTL_SLACK, format!("expires_at {text:?}: {ahead} s ahead"))
        },
    )
    .await;
    rec.expect("for_resource", Protocol, Expect::schema(200, Schema::DeepLink), async {
        let account = new_account(cx).await?;
        let service = any_service(cx).await?;
        let created = provision(cx, account.access_token(), &create_body(cx, &service)).await?;
        let body = json!({"purpose": "dashboard", "resource_id": created.id});
        cx.post(DEEP_LINKS, &body).bearer(account.access_token()).send().await
    })
    .await;
    rec.check(
        "url_names_the_resource",
        Provisio,
        "url is <public url>/login?token=…&project_id=<resource id>",
        async {
            let account = new_account(cx).await?;
            let service = any_service(cx).await?;
            let created = provision(cx, account.access_token(), &create_body(cx, &service)).await?;
            let link =
                issue(cx, &account, &json!({"purpose": "dashboard", "resource_id": created.id}))
                    .await?;
            let url = link["url"].as_str().unwrap_or_default();
            let (path, query) = url.split_once('?').unwrap_or((url, ""));
            let has = |key: &str, value: Option<&str>| {
                query
                    .split('&')
                    .filter_map(|p| p.split_once('='))
                    .any(|(k, v)| k == key && !v.is_empty() && value.is_none_or(|want| v == want))
            };
            let ok = path.ends_with("/login")
                && has("token", None)
                && has("project_id", Some(&created.id));
            judge(ok, format!("url {url:?}, resource {:?}", created.id))
        },
    )
    .await;
}

async fn open_checks(cx: &Ctx, rec: &mut Recorder<'_>) {
    rec.check(
        "open_once_logs_in",
        Protocol,
        "the first opening logs in: 2xx, or 3xx not to an error, with an HttpOnly cookie (or a 3xx to another origin whose answer is that)",
        async {
            let (_, url) = fresh_link(cx).await?;
            logs_in(&open_following_handover(cx, &url).await?)
        },
    )
    .await;
    rec.check_tagged(
        "open_once_lands_on_project",
        Provisio,
        &[Builtin],
        "303 to /projects/<linked project> with an HttpOnly SameSite=Lax provisio_session cookie",
        async {
            let (account, url) = fresh_link(cx).await?;
            let reply = cx.open(&url).await?;
            let target = format!("/projects/{}", account.first_team()?);
            let cookie = cookies(&reply).into_iter().find(|c| c.starts_with("provisio_session="));
            let secure_cookie = cookie
                .as_deref()
                .is_some_and(|c| has_attribute(c, "HttpOnly") && has_attribute(c, "SameSite=Lax"));
            let got = format!(
                "{} Location: {} Set-Cookie: {}",
                reply.status,
                location(&reply).unwrap_or("(none)"),
                if cookie.is_some() { "provisio_session=…" } else { "(none)" }
            );
            judge(reply.status == 303 && location(&reply) == Some(&target) && secure_cookie, got)
        },
    )
    .await;
    rec.check(
        "open_twice_refused",
        Protocol,
        "the second opening does not log in: no cookie, not a 3xx into the dashboard, no 5xx",
        async {
            let (_, url) = fresh_link(cx).await?;
            let first = open_following_handover(cx, &url).await?;
            logs_in(&first).map_err(|why| format!("set-up failed: the first opening: {why}"))?;
            refused(&cx.open(&url).await?)
        },
    )
    .await;
    rec.check(
        "open_twice_error_redirect",
        Provisio,
        format!("the second opening: 303 to {EXPIRED_OR_INVALID}, no cookie"),
        async {
            let (_, url) = fresh_link(cx).await?;
            cx.open(&url).await?;
            redirects_to(&cx.open(&url).await?, EXPIRED_OR_INVALID)
        },
    )
    .await;
    rec.check(
        "open_unknown_token",
        Provisio,
        format!("a link with an unknown token: 303 to {EXPIRED_OR_INVALID}, no cookie"),
        async {
            let (_, url) = fresh_link(cx).await?;
            let base = url.split_once('?').map_or(url.as_str(), |(path, _)| path);
            let reply = cx.open(&format!("{base}?token=conformance-unknown-link-token")).await?;
            redirects_to(&reply, EXPIRED_OR_INVALID)
        },
    )
    .await;
    rec.check(
        "open_missing_token",
        Provisio,
        "a link without a token: 303 to /?error=missing_token, no cookie",
        async {
            let (_, url) = fresh_link(cx).await?;
            let base = url.split_once('?').map_or(url.as_str(), |(path, _)| path);
            redirects_to(&cx.open(base).await?, "/?error=missing_token")
        },
    )
    .await;
}

async fn errors(cx: &Ctx, rec: &mut Recorder<'_>) {
    // Bearer failures: 401 in the status envelope (spec 4), whatever the code (the spec names
    // none); the request names no resource, so `id` is `""`.
    let refused = Expect::bearer_refused;
    let post = |body: Value| cx.post(DEEP_LINKS, &body);

    rec.expect(
        "unsupported_purpose",
        Protocol,
        Expect::flat(400, "unsupported_purpose").message(UNSUPPORTED),
        async {
            let account = new_account(cx).await?;
            post(json!({"purpose": "billing"})).bearer(account.access_token()).send().await
        },
    )
    .await;
    rec.expect("missing_purpose", Provisio, Expect::flat(400, "unsupported_purpose"), async {
        let account = new_account(cx).await?;
        post(json!({})).bearer(account.access_token()).send().await
    })
    .await;
    rec.expect("malformed_json", Protocol, Expect::flat(400, "invalid_request"), async {
        let account = new_account(cx).await?;
        post(json!({})).raw_body(&b"{\"purpose\": "[..]).bearer(account.access_token()).send().await
    })
    .await;
    rec.expect("missing_bearer", Protocol, refused(), post(dashboard()).send()).await;
    rec.expect(
        "wrong_bearer",
        Protocol,
        refused(),
        post(dashboard()).bearer("conformance-not-a-token").send(),
    )
    .await;
    // Spec 2: a bearer token alone is never enough.
    rec.expect("bearer_alone_refused", Protocol, Expect::invalid_signature(), async {
        let account = new_account(cx).await?;
        post(dashboard()).bearer(account.access_token()).unsigned().send().await
    })
    .await;
    rec.expect("revoked_bearer", Protocol, refused(), async {
        let account = new_account(cx).await?;
        refreshed(cx, &account).await?;
        post(dashboard()).bearer(account.access_token()).send().await
    })
    .await;
    // decisions.md: `resource_id` must be in the token's scope (403 flat) and a positive integer.
    rec.expect("foreign_resource", Provisio, Expect::flat(403, "forbidden"), async {
        let owner = new_account(cx).await?;
        let service = any_service(cx).await?;
        let created = provision(cx, owner.access_token(), &create_body(cx, &service)).await?;
        let intruder = new_account(cx).await?;
        post(json!({"purpose": "dashboard", "resource_id": created.id}))
            .bearer(intruder.access_token())
            .send()
            .await
    })
    .await;
    rec.expect("invalid_resource_id", Provisio, Expect::flat(400, "invalid_request"), async {
        let account = new_account(cx).await?;
        post(json!({"purpose": "dashboard", "resource_id": "conformance-id"}))
            .bearer(account.access_token())
            .send()
            .await
    })
    .await;
}

fn location(reply: &Reply) -> Option<&str> {
    reply.headers.get("location").and_then(|v| v.to_str().ok())
}

fn cookies(reply: &Reply) -> Vec<String> {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect()
}

fn has_attribute(cookie: &str, attribute: &str) -> bool {
    cookie.split(';').skip(1).any(|a| a.trim().eq_ignore_ascii_case(attribute))
}

/// One line: status, `Location` and how many cookies were set (never their values, nor a `token`
/// in the `Location`: a hand-over's one-time sign-in URL carries one).
fn describe(reply: &Reply) -> String {
    format!(
        "{} Location: {}, {} cookie(s) set",
        reply.status,
        location(reply).map_or_else(|| "(none)".to_string(), without_token),
        cookies(reply).len()
    )
}

/// `target` with the value of a `token` query parameter replaced by `…`.
fn without_token(target: &str) -> String {
    let Some((path, query)) = target.split_once('?') else { return target.to_string() };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some(("token", value)) if !value.is_empty() => "token=…".to_string(),
            _ => pair.to_string(),
        })
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

/// Where a redirect hands the browser over to another origin than `url`'s: the absolute URL.
fn handover(url: &str, reply: &Reply) -> Option<Url> {
    if !(300..400).contains(&reply.status) {
        return None;
    }
    let from = Url::parse(url).ok()?;
    let to = from.join(location(reply)?).ok()?;
    (to.origin() != from.origin()).then_some(to)
}

/// Opens `url` as a browser's first request; when the answer hands over to another origin, opens
/// that too (once). The answers, in order.
async fn open_following_handover(cx: &Ctx, url: &str) -> Result<Vec<Reply>, String> {
    let first = cx.open(url).await?;
    let next = handover(url, &first);
    let mut answers = vec![first];
    if let Some(next) = next {
        answers.push(cx.open(next.as_str()).await?);
    }
    Ok(answers)
}

/// A login: the last answer is a 2xx, or a 3xx to a place that is not an error, setting an HttpOnly
/// cookie; an answer before it (a hand-over to another origin) is not to an error either.
fn logs_in(answers: &[Reply]) -> Verdict {
    let got = answers.iter().map(describe).collect::<Vec<_>>().join(" → ");
    let to_error = |r: &Reply| location(r).is_some_and(|l| l.contains("error"));
    let Some(last) = answers.last() else { return Err("no answer".into()) };
    let arrived =
        (200..300).contains(&last.status) || ((300..400).contains(&last.status) && !to_error(last));
    let session = cookies(last).iter().any(|c| has_attribute(c, "HttpOnly"));
    judge(arrived && session && !answers.iter().any(to_error), got)
}

/// Not a login: no cookie, not a redirect into the dashboard, and no server error.
fn refused(reply: &Reply) -> Verdict {
    let got = describe(reply);
    let to_error = location(reply).is_some_and(|l| l.contains("error"));
    let into_dashboard = (300..400).contains(&reply.status) && !to_error;
    judge(cookies(reply).is_empty() && !into_dashboard && reply.status < 500, got)
}

/// A 303 to exactly `target`, with no cookie.
fn redirects_to(reply: &Reply, target: &str) -> Verdict {
    judge(
        reply.status == 303 && location(reply) == Some(target) && cookies(reply).is_empty(),
        describe(reply),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn answer(status: u16, location: Option<&str>, cookie: Option<&str>) -> Reply {
        let mut headers = HeaderMap::new();
        if let Some(location) = location {
            headers.insert("location", HeaderValue::from_str(location).unwrap());
        }
        if let Some(cookie) = cookie {
            headers.insert("set-cookie", HeaderValue::from_str(cookie).unwrap());
        }
        Reply { status, headers, raw: Vec::new(), json: None }
    }

    #[test]
    fn a_redirect_to_another_origin_is_a_hand_over() {
        let link = "http://127.0.0.1:8080/login?token=t&project_id=1";
        let saas = answer(302, Some("http://127.0.0.1:9000/session?token=s"), None);
        assert_eq!(
            handover(link, &saas).map(String::from),
            Some("http://127.0.0.1:9000/session?token=s".to_string())
        );
        assert_eq!(handover(link, &answer(303, Some("/projects/1"), None)), None);
        assert_eq!(handover(link, &answer(303, Some("http://127.0.0.1:8080/x"), None)), None);
        assert_eq!(handover(link, &answer(200, Some("http://elsewhere.example/"), None)), None);
    }

    #[test]
    fn a_login_sets_an_http_only_cookie_where_it_lands() {
        let session = Some("s=1; HttpOnly; SameSite=Lax");
        assert!(logs_in(&[answer(303, Some("/projects/1"), session)]).is_ok());
        assert!(logs_in(&[answer(303, Some("/projects/1"), Some("s=1"))]).is_err());
        assert!(logs_in(&[answer(303, Some("/?error=missing_token"), session)]).is_err());
        let handed = answer(302, Some("http://127.0.0.1:9000/session?token=secret"), None);
        let landed = answer(302, Some("/dashboard"), session);
        let got = logs_in(&[handed.clone(), landed]).unwrap();
        assert!(!got.contains("secret"), "{got}");
        assert!(got.contains("/session?token=…"), "{got}");
        assert!(
            logs_in(std::slice::from_ref(&handed)).is_err(),
            "no session at the hand-over alone"
        );
        let refused = answer(302, Some("/?error=expired"), None);
        assert!(logs_in(&[handed, refused]).is_err());
    }
}

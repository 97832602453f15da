//! The consent leg end to end in-process, with the sign-in email received by a real SMTP server on
//! loopback: request → page → emailed link → proof → choice → callback with code and state; and
//! expiry, reuse, superseding, decline, forged forms, the link opened after the consent was used,
//! the outbox mode, connector mode, and no pre-registration takeover.

use provisio_server::email::{EmailSpec, Mailer};
use provisio_testkit::backend_test;
use serde_json::{Value, json};

use crate::{
    saas::Saas,
    smtp::SmtpServer,
    support::{CALLBACK_URL, NOW, Req, Setup, TestApp, account_body, consent_orchestrator},
};

fn smtp_mailer(server: &SmtpServer) -> Mailer {
    EmailSpec {
        smtp_url: Some(server.url()),
        from: "provisio <no-reply@provider.example>".into(),
        ..EmailSpec::default()
    }
    .validate(&|_| None)
    .unwrap()
}

/// A consent orchestrator's account request with a confirmation secret; the consent URL's path.
async fn request_consent(app: &TestApp, id: &str, email: &str) -> String {
    let mut body = account_body(id, email);
    body["confirmation_secret"] = json!(format!("state-{id}"));
    let reply = app.account_request(&body).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert_eq!(reply.json["type"], "requires_auth", "{}", reply.json);
    let url = reply.json["requires_auth"]["redirect"]["url"].as_str().unwrap();
    url.strip_prefix("https://provider.example").unwrap().to_string()
}

/// `name="…" value="…"` of a hidden field in a page.
fn field(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("{name} in {html}"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_string()
}

async fn post_form(
    app: &TestApp,
    path: &str,
    form: &str,
    cookie: Option<&str>,
) -> (u16, axum::http::HeaderMap, String) {
    let mut req = Req::form(path, form).signature(None).api_version(None);
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    app.raw(req.build()).await
}

/// The sign-in link in the last email to `to`.
fn link_in(server: &SmtpServer, to: &str) -> String {
    let mail = server
        .received()
        .into_iter()
        .rev()
        .find(|m| m.to.iter().any(|t| t == to))
        .expect("an email");
    // Quoted-printable: soft line breaks and the escaped `=`.
    let text = mail.text().replace("=\r\n", "").replace("=3D", "=");
    let at = text.find("https://provider.example/consent/verify?token=").expect("a link");
    let link: String = text[at..].chars().take_while(|c| !c.is_whitespace()).collect();
    link.strip_prefix("https://provider.example").unwrap().to_string()
}

/// Through the page and the email to the choice: the consent id, csrf and proof cookie.
async fn prove(
    app: &TestApp,
    server: &SmtpServer,
    consent_path: &str,
    email: &str,
) -> (String, String, String) {
    let (status, _, html) = app.browse(consent_path, None).await;
    assert_eq!(status, 200, "{html}");
    let (consent, csrf) = (field(&html, "consent"), field(&html, "csrf"));
    let (status, _, sent) =
        post_form(app, "/consent/link", &format!("consent={consent}&csrf={csrf}"), None).await;
    assert_eq!(status, 200, "{sent}");
    let (status, headers, _) = app.browse(&link_in(server, email), None).await;
    assert_eq!(status, 303);
    assert_eq!(headers["location"], format!("/consent/choose?consent={consent}").as_str());
    let cookie = headers["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
            && cookie.contains("Path=/consent"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_string();
    (consent, csrf, cookie)
}

fn query_of(location: &str) -> Vec<(String, String)> {
    let url = reqwest::Url::parse(location).unwrap();
    url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

#[backend_test]
async fn a_new_address_is_proved_then_created_and_the_code_returns_to_the_orchestrator() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::with_consent(smtp_mailer(&smtp), None).await;
    let path = request_consent(&app, "req_new", "Grace@Example.com").await;
    assert_eq!(app.count("users").await, 0, "nothing is created before the proof");
    let (status, headers, html) = app.browse(&path, None).await;
    assert_eq!(status, 200);
    assert!(html.contains("G***@Example.com") && !html.contains("Grace@"), "{html}");
    assert!(html.contains("Stripe wants to connect"));
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("form-action 'self' https://orchestrator.example"), "{csp}");
    assert_eq!(headers["cache-control"], "no-store");

    let (consent, csrf, cookie) = prove(&app, &smtp, &path, "Grace@Example.com").await;
    let (status, _, choose) =
        app.browse(&format!("/consent/choose?consent={consent}"), Some(&cookie)).await;
    assert_eq!(status, 200, "{choose}");
    assert!(choose.contains("value=\"new_account\""), "{choose}");
    let (status, headers, _) = post_form(
        &app,
        "/consent/confirm",
        &format!("consent={consent}&csrf={csrf}&choice=new_account"),
        Some(&cookie),
    )
    .await;
    assert_eq!(status, 302);
    let location = headers["location"].to_str().unwrap();
    assert!(location.starts_with(CALLBACK_URL), "{location}");
    let query = query_of(location);
    assert_eq!(query[1], ("state".to_string(), "state-req_new".to_string()));
    let tokens = app.redeem(&query[0].1).await;
    assert_eq!(app.count("users").await, 1);
    assert_eq!(tokens["account"]["available_teams"].as_array().unwrap().len(), 1);
    // Single use: the same confirmation again is refused.
    let (status, _, again) = post_form(
        &app,
        "/consent/confirm",
        &format!("consent={consent}&csrf={csrf}&choice=new_account"),
        Some(&cookie),
    )
    .await;
    assert_eq!(status, 410, "{again}");
    assert!(again.contains("data-error=\"used\""));
}

#[backend_test]
async fn an_existing_user_picks_one_of_their_projects() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::with_consent(smtp_mailer(&smtp), None).await;
    // The user exists (made by a trusted path: here, seeded through the built-in tables).
    app.exec(
        "INSERT INTO users (id, email, email_normalized, created_at) VALUES ('usr_1', 'ada@example.com', 'ada@example.com', 1); \
         INSERT INTO organizations (id, name, created_at) VALUES ('org_1', 'Engines', 1); \
         INSERT INTO memberships (user_id, organization_id, role, created_at) VALUES ('usr_1', 'org_1', 'owner', 1); \
         INSERT INTO projects (organization_id, name, is_demo, api_key, created_at) VALUES ('org_1', 'Analytical', 0, 'pub_a', 1), ('org_1', 'Difference', 0, 'pub_b', 1);"
    )
    .await;
    let path = request_consent(&app, "req_ada", "ada@example.com").await;
    let (consent, csrf, cookie) = prove(&app, &smtp, &path, "ada@example.com").await;
    let (_, _, choose) =
        app.browse(&format!("/consent/choose?consent={consent}"), Some(&cookie)).await;
    assert!(
        choose.contains("Analytical")
            && choose.contains("Difference")
            && choose.contains("new_project"),
        "{choose}"
    );
    let project = app.scalar_i64("SELECT id FROM projects WHERE name = 'Difference'").await;
    let (status, headers, _) = post_form(
        &app,
        "/consent/confirm",
        &format!("consent={consent}&csrf={csrf}&choice=project:{project}"),
        Some(&cookie),
    )
    .await;
    assert_eq!(status, 302);
    let code = query_of(headers["location"].to_str().unwrap())[0].1.clone();
    let tokens = app.redeem(&code).await;
    assert_eq!(tokens["account"]["id"], "org_1");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(app.principal(access).await.unwrap().primary_project_id, project);
    assert_eq!(
        app.scalar_text("SELECT event FROM audit_events WHERE event LIKE 'account.%'").await,
        "account.linked"
    );
}

#[backend_test]
async fn decline_returns_access_denied_and_closes_the_consent() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::with_consent(smtp_mailer(&smtp), None).await;
    let path = request_consent(&app, "req_no", "no@example.com").await;
    let (_, _, html) = app.browse(&path, None).await;
    let (consent, csrf) = (field(&html, "consent"), field(&html, "csrf"));
    let (status, headers, _) =
        post_form(&app, "/consent/decline", &format!("consent={consent}&csrf={csrf}"), None).await;
    assert_eq!(status, 302);
    assert_eq!(
        headers["location"].to_str().unwrap(),
        format!("{CALLBACK_URL}?error=access_denied&state=state-req_no")
    );
    let (status, _, page) = app.browse(&path, None).await;
    assert_eq!(status, 410);
    assert!(page.contains("data-error=\"used\""));
    assert_eq!(app.count("users").await, 0);
}

#[backend_test]
async fn forged_forms_and_missing_proof_are_refused() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::with_consent(smtp_mailer(&smtp), None).await;
    let path = request_consent(&app, "req_csrf", "csrf@example.com").await;
    let (_, _, html) = app.browse(&path, None).await;
    let consent = field(&html, "consent");
    // A forged value, a missing one, or no form at all: the forged-form page, never an email.
    for form in
        [format!("consent={consent}&csrf=forged"), format!("consent={consent}"), String::new()]
    {
        for path in ["/consent/link", "/consent/confirm", "/consent/decline"] {
            let (status, _, html) = post_form(&app, path, &form, None).await;
            assert_eq!(status, 403, "{path} {form}");
            assert!(html.contains("This browser has not proved the address"), "{html}");
        }
    }
    let not_a_form = axum::http::Request::post("/consent/link")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(format!(r#"{{"consent":"{consent}"}}"#)))
        .unwrap();
    assert_eq!(app.raw(not_a_form).await.0, 403);
    assert!(smtp.received().is_empty(), "no email for a forged form");
    let csrf = field(&html, "csrf");
    // Without the proof cookie, neither the choice nor the confirmation.
    let (status, _, _) = app.browse(&format!("/consent/choose?consent={consent}"), None).await;
    assert_eq!(status, 403);
    let (status, _, _) = post_form(
        &app,
        "/consent/confirm",
        &format!("consent={consent}&csrf={csrf}&choice=new_account"),
        Some("provisio_consent=guess"),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(app.count("users").await, 0);
}

#[backend_test]
async fn links_and_consents_expire_and_a_newer_request_supersedes() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::with_consent(smtp_mailer(&smtp), None).await;
    // A newer request for the same email supersedes an open one.
    let older = request_consent(&app, "req_b", "late@example.com").await;
    let newer = request_consent(&app, "req_c", "late@example.com").await;
    let (status, _, page) = app.browse(&older, None).await;
    assert_eq!((status, page.contains("data-error=\"superseded\"")), (410, true));
    let (status, _, html) = app.browse(&newer, None).await;
    assert_eq!(status, 200);
    let (consent, csrf) = (field(&html, "consent"), field(&html, "csrf"));
    post_form(&app, "/consent/link", &format!("consent={consent}&csrf={csrf}"), None).await;
    let link = link_in(&smtp, "late@example.com");
    // The emailed link lives 15 minutes.
    app.state.clock.advance(16 * 60);
    let (status, _, page) = app.browse(&link, None).await;
    assert_eq!(status, 410);
    assert!(page.contains("data-error=\"link\""));
    // The consent lives 30 minutes.
    app.state.clock.advance(15 * 60);
    let (status, _, page) = app.browse(&newer, None).await;
    assert_eq!(status, 410);
    assert!(page.contains("data-error=\"expired\""));
    let (status, _, _) = app.browse("/consent?token=nonsense", None).await;
    assert_eq!(status, 404);
    // A day after they expired, consents (they hold an email) and their links are deleted.
    app.state.clock.advance(24 * 3600);
    let now = app.state.clock.now();
    app.state.store.sweep(now, now * 1000).await.unwrap();
    assert_eq!(app.count("pending_consents").await + app.count("consent_links").await, 0);
}

#[backend_test]
async fn a_link_opened_after_the_consent_was_used_goes_nowhere() {
    let smtp = SmtpServer::start().await;
    let app = TestApp::with_consent(smtp_mailer(&smtp), None).await;
    let path = request_consent(&app, "req_twice", "twice@example.com").await;
    let (_, _, html) = app.browse(&path, None).await;
    let (consent, csrf) = (field(&html, "consent"), field(&html, "csrf"));
    post_form(&app, "/consent/link", &format!("consent={consent}&csrf={csrf}"), None).await;
    let spare = link_in(&smtp, "twice@example.com");
    let (consent, csrf, cookie) = prove(&app, &smtp, &path, "twice@example.com").await;
    let confirm = format!("consent={consent}&csrf={csrf}&choice=new_account");
    assert_eq!(post_form(&app, "/consent/confirm", &confirm, Some(&cookie)).await.0, 302);
    // The first link, unused, now proves nothing: its consent is closed.
    let (status, headers, _) = app.browse(&spare, None).await;
    assert_eq!(status, 303);
    let cookie = headers["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let (status, _, page) =
        app.browse(&format!("/consent/choose?consent={consent}"), Some(&cookie)).await;
    assert_eq!((status, page.contains("data-error=\"used\"")), (410, true));
}

#[backend_test]
async fn sign_in_emails_are_limited_per_consent() {
    let smtp = SmtpServer::start().await;
    let limits = provisio_server::rate_limit::RateLimits::default();
    let app = Setup { mailer: Some(smtp_mailer(&smtp)), rate_limits: limits, ..Setup::consent() }
        .open()
        .await;
    let path = request_consent(&app, "req_many", "many@example.com").await;
    let (_, _, html) = app.browse(&path, None).await;
    let form = format!("consent={}&csrf={}", field(&html, "consent"), field(&html, "csrf"));
    for _ in 0..3 {
        assert_eq!(post_form(&app, "/consent/link", &form, None).await.0, 200);
    }
    let (status, headers, _) = post_form(&app, "/consent/link", &form, None).await;
    assert_eq!(status, 429);
    assert!(headers.get("retry-after").is_some());
    assert_eq!(smtp.received().len(), 3);
}

#[backend_test]
async fn without_email_settings_messages_land_in_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::with_consent(Mailer::outbox(dir.path().join("outbox")), None).await;
    let path = request_consent(&app, "req_outbox", "files@example.com").await;
    let (_, _, html) = app.browse(&path, None).await;
    let form = format!("consent={}&csrf={}", field(&html, "consent"), field(&html, "csrf"));
    assert_eq!(post_form(&app, "/consent/link", &form, None).await.0, 200);
    let files: Vec<_> = std::fs::read_dir(dir.path().join("outbox")).unwrap().collect();
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(files[0].as_ref().unwrap().path()).unwrap();
    assert!(
        text.contains("To: files@example.com") && text.contains("/consent/verify?token"),
        "{text}"
    );
}

#[backend_test]
async fn connector_mode_offers_the_saas_projects_and_makes_a_new_one_there() {
    let smtp = SmtpServer::start().await;
    let saas = Saas::start().await;
    let app = TestApp::with_consent(smtp_mailer(&smtp), Some(&saas)).await;
    saas.seed_user(
        "lin@example.com",
        false,
        &[("Lab", "2020-01-01T00:00:00Z", &[("Existing", false), ("Demo", true)])],
    );
    let path = request_consent(&app, "req_saas", "lin@example.com").await;
    assert!(saas.calls("users.lookup").is_empty(), "nothing asked of the SaaS before the proof");
    let (consent, csrf, cookie) = prove(&app, &smtp, &path, "lin@example.com").await;
    let (_, _, choose) =
        app.browse(&format!("/consent/choose?consent={consent}"), Some(&cookie)).await;
    assert!(
        choose.contains("Existing") && !choose.contains(">Demo") && choose.contains("new_project"),
        "{choose}"
    );
    let (status, headers, _) = post_form(
        &app,
        "/consent/confirm",
        &format!("consent={consent}&csrf={csrf}&choice=new_project"),
        Some(&cookie),
    )
    .await;
    assert_eq!(status, 302);
    assert_eq!(saas.calls("projects.create").len(), 1);
    let tokens = app.redeem(&query_of(headers["location"].to_str().unwrap())[0].1).await;
    let teams: Vec<Value> = tokens["account"]["available_teams"].as_array().unwrap().clone();
    assert_eq!(teams.len(), 2, "{teams:?}");
    assert_eq!(
        app.scalar_text("SELECT event FROM audit_events WHERE event LIKE 'account.%'").await,
        "account.linked"
    );
}

#[backend_test]
async fn a_consent_orchestrator_cannot_pre_register_an_address_for_a_trusted_one() {
    // The takeover a security review found: an orchestrator on `consent` made an account for an
    // address nobody proved, the owner arrived through a trusted orchestrator and was linked into
    // it, and the first orchestrator's tokens reached the owner's new resources.
    const TRUSTED: &str = "whsec_trusted";
    let smtp = SmtpServer::start().await;
    let trusted =
        provisio_server::orchestrators::Orchestrator::new("trusted", None, &[TRUSTED.to_string()]);
    let app = Setup {
        mailer: Some(smtp_mailer(&smtp)),
        orchestrators: vec![consent_orchestrator("stripe"), trusted],
        ..Setup::default()
    }
    .open()
    .await;
    // 1. The untrusted orchestrator asks for the address first: nothing is made.
    request_consent(&app, "req_squat", "owner@example.com").await;
    assert_eq!(app.count("users").await, 0);
    // 2. The owner arrives through the trusted orchestrator: a fresh account of their own.
    let body = account_body("req_owner", "owner@example.com");
    let signed = |req: Req| req.signed_with(&[TRUSTED], NOW);
    let reply = app.send(signed(Req::json("/provisioning/account_requests", &body)).build()).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let code = reply.json["oauth"]["code"].as_str().unwrap().to_string();
    let tokens = app
        .send(
            signed(Req::form(
                "/oauth/token",
                &format!("grant_type=authorization_code&code={code}"),
            ))
            .build(),
        )
        .await;
    assert_eq!(tokens.status, 200, "{}", tokens.json);
    let access = tokens.json["access_token"].as_str().unwrap().to_string();
    let created = app
        .send(
            signed(Req::json("/provisioning/resources", &json!({})))
                .header("authorization", &format!("Bearer {access}"))
                .build(),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.json);
    // 3. The untrusted orchestrator asks again: the browser step again, and no grant of any kind.
    request_consent(&app, "req_squat_2", "owner@example.com").await;
    let grants = app
        .scalar_i64("SELECT COUNT(*) FROM token_families WHERE orchestrator = 'stripe'")
        .await
        + app
            .scalar_i64("SELECT COUNT(*) FROM authorization_codes WHERE orchestrator = 'stripe'")
            .await;
    assert_eq!(grants, 0, "the owner's resources stay out of the untrusted orchestrator's reach");
    assert_eq!(app.count("users").await, 1);
}

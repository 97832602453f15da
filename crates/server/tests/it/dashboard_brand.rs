//! `[dashboard]`: the built-in dashboard shows the product's name and logo, who is signed in and in
//! which organization, a link back to the SaaS, in the product's accent — without a script, with
//! images allowed from the logo's origin only. Bad values refuse the start naming the key.

use clap::Parser;
use provisio_server::{
    clock::Clock,
    config::ServeArgs,
    prepare,
    web::{Brand, DashboardSpec},
};
use provisio_testkit::backend_test;
use serde_json::json;

use crate::support::{NOW, Req, Setup, TestApp};

const ACME: &str = "https://cdn.acme.example";

fn acme() -> Brand {
    Brand::new(&DashboardSpec {
        product_name: Some("Acme <Analytics>".into()),
        logo_url: Some(format!("{ACME}/brand/logo.svg")),
        accent_color: Some("#FF6600".into()),
        home_url: Some("https://app.acme.example/settings?tab=agents&x=1".into()),
    })
    .unwrap()
}

/// A signed-in browser: the session cookie and the project the link opened.
async fn signed_in(app: &TestApp, email: &str) -> (String, i64) {
    let access = app.tokens_for(email).await["access_token"].as_str().unwrap().to_string();
    let link = app
        .with_bearer(
            Req::json("/provisioning/deep_links", &json!({"purpose": "dashboard"})),
            &access,
        )
        .await;
    let path = link.json["url"]
        .as_str()
        .unwrap()
        .trim_start_matches("https://provider.example")
        .to_string();
    let (status, headers, _) = app.browse(&path, None).await;
    assert_eq!(status, 303);
    let project =
        headers["location"].to_str().unwrap().trim_start_matches("/projects/").parse().unwrap();
    let cookie = headers["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    (cookie, project)
}

fn csp(headers: &axum::http::HeaderMap) -> String {
    headers["content-security-policy"].to_str().unwrap().to_string()
}

fn assert_no_script(html: &str) {
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<script") && !lower.contains("javascript:"), "{html}");
    assert!(!lower.contains(" onclick") && !lower.contains(" onload"), "{html}");
}

#[backend_test]
async fn a_branded_dashboard_names_the_product_the_user_and_the_way_home() {
    let app = Setup { dashboard: acme(), ..Setup::default() }.open().await;
    let (cookie, project) = signed_in(&app, "Ada@Example.com").await;

    for path in [format!("/projects/{project}"), "/".to_string()] {
        let (status, headers, html) = app.browse(&path, Some(&cookie)).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            html.contains(r#"<span id="product-name">Acme &lt;Analytics&gt;</span>"#),
            "{html}"
        );
        assert!(html.contains(" · Acme &lt;Analytics&gt;</title>"), "{html}");
        assert!(
            html.contains(&format!(r#"<img id="logo" src="{ACME}/brand/logo.svg" alt="""#)),
            "{html}"
        );
        assert!(
            html.contains(
                r#"<a id="home-link" href="https://app.acme.example/settings?tab=agents&amp;x=1">Back to Acme &lt;Analytics&gt;</a>"#
            ),
            "{html}"
        );
        assert!(
            html.contains(r#"<strong id="signed-in-email">Ada@Example.com</strong>"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<span id="signed-in-organization">Stripe (Ada@Example.com)</span>"#),
            "{html}"
        );
        assert!(html.contains("border-bottom:3px solid #ff6600"), "the accent: {html}");
        assert!(html.contains(r#"id="logout""#), "{html}");
        assert_no_script(&html);
        let policy = csp(&headers);
        assert_eq!(
            policy,
            format!(
                "default-src 'none'; style-src 'unsafe-inline'; img-src {ACME}; form-action 'self'; frame-ancestors 'none'"
            )
        );
        assert!(!policy.contains("script-src"));
    }

    // Without a session: the product and the way home, nobody signed in.
    let (_, headers, html) = app.browse("/?error=login_required", None).await;
    assert!(html.contains("Acme &lt;Analytics&gt;") && html.contains(r#"id="home-link""#));
    assert!(!html.contains("signed-in") && !html.contains(r#"id="logout""#), "{html}");
    assert!(csp(&headers).contains(&format!("img-src {ACME};")));
    assert_no_script(&html);
    // Error pages are branded too.
    let (status, _, html) = app.browse("/projects/999999", Some(&cookie)).await;
    assert_eq!(status, 404);
    assert!(html.contains("Acme &lt;Analytics&gt;"));
    assert_no_script(&html);
}

#[backend_test]
async fn the_organization_shown_is_the_projects_and_every_one_of_the_users_on_the_home_page() {
    let app = TestApp::new().await;
    let (cookie, project) = signed_in(&app, "two-orgs@example.com").await;
    let user = app.scalar_text("SELECT id FROM users").await;
    app.exec(&format!(
        "INSERT INTO organizations (id, name, created_at) VALUES ('org_second', 'Second & Co', {NOW}); \
         INSERT INTO memberships (user_id, organization_id, role, created_at) VALUES ('{user}', 'org_second', 'member', {NOW} + 1);"
    ))
    .await;
    let (_, _, html) = app.browse(&format!("/projects/{project}"), Some(&cookie)).await;
    assert!(
        html.contains(r#"<span id="signed-in-organization">Stripe (two-orgs@example.com)</span>"#),
        "{html}"
    );
    let (_, _, html) = app.browse("/", Some(&cookie)).await;
    assert!(
        html.contains(
            r#"<span id="signed-in-organization">Stripe (two-orgs@example.com), Second &amp; Co</span>"#
        ),
        "{html}"
    );
}

#[backend_test]
async fn without_a_dashboard_section_the_pages_look_as_before() {
    let app = TestApp::new().await;
    let (cookie, project) = signed_in(&app, "plain@example.com").await;
    let (_, headers, html) = app.browse(&format!("/projects/{project}"), Some(&cookie)).await;
    assert!(html.contains(r#"<span id="product-name">provisio</span>"#), "{html}");
    assert!(html.contains(" · provisio</title>"));
    assert!(html.contains(r#"<strong id="signed-in-email">plain@example.com</strong>"#));
    assert!(!html.contains("<img") && !html.contains("home-link"), "{html}");
    assert!(!html.contains("3px solid"), "no accent: {html}");
    assert_eq!(
        csp(&headers),
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    );
    assert_no_script(&html);
}

#[backend_test]
async fn a_logo_on_provisios_own_origin_is_allowed_as_self() {
    let brand = Brand::new(&DashboardSpec {
        logo_url: Some("/brand/logo.png".into()),
        home_url: Some("http://127.0.0.1:3000/".into()),
        accent_color: Some("#fd0".into()),
        ..DashboardSpec::default()
    })
    .unwrap();
    let app = Setup { dashboard: brand, ..Setup::default() }.open().await;
    let (_, headers, html) = app.browse("/", None).await;
    assert!(html.contains(r#"src="/brand/logo.png""#), "{html}");
    assert!(html.contains(r#"href="http://127.0.0.1:3000/""#), "{html}");
    assert!(csp(&headers).contains("; img-src 'self'; "), "{}", csp(&headers));
    // A light accent gets dark button text.
    assert!(html.contains("background:#fd0;color:#1d1d1f"), "{html}");
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

/// Starts with `[dashboard]` holding `body`; the refusal's message.
async fn refusal(body: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("provisio.toml");
    std::fs::write(&path, format!("[dashboard]\n{body}\n")).unwrap();
    let db = format!("sqlite://{}", dir.path().join("p.db").display());
    let argv = ["provisio", "--database-url", &db, "--config", path.to_str().unwrap()];
    let args = Cli::try_parse_from(argv).unwrap().serve;
    let listen = "127.0.0.1:8080".parse().unwrap();
    match prepare(&args, Clock::system(), listen).await {
        Ok(_) => panic!("{body} was accepted"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn bad_values_refuse_the_start_naming_the_key() {
    for (body, key) in [
        (r#"product_name = "  ""#, "product_name"),
        (r#"logo_url = "http://cdn.example/logo.png""#, "logo_url"),
        (r#"logo_url = "javascript:alert(1)""#, "logo_url"),
        (r#"logo_url = "//cdn.example/logo.png""#, "logo_url"),
        (r#"accent_color = "red""#, "accent_color"),
        (r##"accent_color = "#ff6600; background:url(x)""##, "accent_color"),
        (r#"home_url = "http://app.example/""#, "home_url"),
        (r#"home_url = "javascript:alert(1)""#, "home_url"),
    ] {
        let message = refusal(body).await;
        assert!(message.starts_with(&format!("[dashboard] {key}: ")), "{body}: {message}");
    }
    let unknown = refusal(r#"logo = "x""#).await;
    assert!(unknown.contains("unknown field `logo`"), "{unknown}");
}

#[tokio::test]
async fn a_good_section_is_what_the_pages_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("provisio.toml");
    std::fs::write(
        &path,
        "[dashboard]\nproduct_name = \"Acme\"\nlogo_url = \"https://cdn.acme.example/l.svg\"\n\
         accent_color = \"#0A3\"\nhome_url = \"https://app.acme.example/\"\n",
    )
    .unwrap();
    let db = format!("sqlite://{}", dir.path().join("p.db").display());
    let argv = ["provisio", "--database-url", &db, "--config", path.to_str().unwrap()];
    let args = Cli::try_parse_from(argv).unwrap().serve;
    let startup = prepare(&args, Clock::system(), "127.0.0.1:8080".parse().unwrap()).await.unwrap();
    let brand = &startup.state.dashboard;
    assert_eq!(brand.product_name, "Acme");
    assert_eq!(brand.accent_color.as_deref(), Some("#0a3"));
    assert_eq!(brand.home_url.as_deref(), Some("https://app.acme.example/"));
    assert_eq!(brand.logo_url.as_deref(), Some("https://cdn.acme.example/l.svg"));
}

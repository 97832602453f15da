//! A person's view: headless Chromium opens a dashboard deep link from a running `provisio serve`,
//! lands on the project page (name and key prefix shown), and a second use of the same link lands
//! on the error. A screenshot of the project page goes to the test's output folder.
//! Without Chromium the test skips with a message; in CI (`CI` set) it must run.

use std::{path::Path, process::Command};

use provisio_orchestrator::{Client, ClientConfig};
use serde_json::json;

use crate::server::Server;

/// Headless Chromium on this closed network: no sandbox (root), and nothing that calls out.
pub const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,900",
];

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|bin| Command::new(bin).arg("--version").output().is_ok_and(|o| o.status.success()))
}

/// Runs headless Chromium on `url` with a fresh profile; `extra` picks the output (DOM or screenshot).
fn headless(bin: &str, profile: &Path, url: &str, extra: &[String]) -> String {
    let out = Command::new(bin)
        .args(CHROMIUM_FLAGS)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn a_deep_link_opens_the_project_page_once_in_a_real_browser() {
    let Some(bin) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the browser test: install Debian's chromium"
        );
        eprintln!("SKIPPED: no Chromium on this machine (apt-get install chromium)");
        return;
    };
    let server = Server::start(&["--signing-secret", "whsec_browser"]);
    let client =
        Client::new(ClientConfig::new(&server.base_url, vec!["whsec_browser".into()])).unwrap();
    let body = provisio_orchestrator::client::account_request_body(
        "ar_browser",
        "browser@example.com",
        "acct_browser",
    );
    let code = client.account_request(&body).await.unwrap().json.unwrap()["oauth"]["code"]
        .as_str()
        .unwrap()
        .to_string();
    let tokens = client.redeem_code(&code, None).await.unwrap().json.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let created = client
        .provision(
            &json!({"project_id": "web", "configuration": {"project_name": "Browser Project"}}),
            access,
        )
        .await
        .unwrap();
    let created = created.json.unwrap();
    let id = created["id"].as_str().unwrap();
    let personal =
        created["complete"]["access_configuration"]["personal_api_key"].as_str().unwrap();
    let link = |client: Client| async move {
        let reply = client
            .deep_link(&json!({"purpose": "dashboard", "resource_id": id}), access)
            .await
            .unwrap();
        reply.json.unwrap()["url"].as_str().unwrap().to_string()
    };
    let (first, second) = (link(client.clone()).await, link(client.clone()).await);

    let dir = tempfile::tempdir().unwrap();
    let dom = headless(bin, &dir.path().join("a"), &first, &["--dump-dom".into()]);
    assert!(dom.contains("Browser Project"), "the project page: {dom}");
    assert!(dom.contains(&personal[..12]), "the key prefix is shown");
    assert!(!dom.contains(personal), "never the secret");

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join("project-page.png");
    let _ = std::fs::remove_file(&shot);
    headless(bin, &dir.path().join("b"), &second, &[format!("--screenshot={}", shot.display())]);
    assert!(
        shot.metadata().map(|m| m.len() > 1000).unwrap_or(false),
        "a screenshot at {}",
        shot.display()
    );
    eprintln!("screenshot: {}", shot.display());

    let reused = headless(bin, &dir.path().join("c"), &first, &["--dump-dom".into()]);
    assert!(
        reused.contains("expired or was already used"),
        "a used link lands on the error: {reused}"
    );
}

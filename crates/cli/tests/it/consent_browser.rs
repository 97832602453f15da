//! The consent leg in a real browser: headless Chromium, driven over WebDriver by `chromedriver`,
//! against the real `provisio serve` binary with `linking = "consent"`. The sign-in email goes to a
//! real SMTP server on loopback, and the browser returns to a tiny orchestrator callback server:
//! account request → consent page → "Email me a sign-in link" → the emailed link → the choice →
//! "Allow" → `callback_url?code=…&state=…` → the code redeemed for tokens; then a second request
//! declined (`?error=access_denied&state=…`). A screenshot of the choice page goes to the test's
//! output folder. Without Chromium or chromedriver the test skips; in CI (`CI` set) it must run.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, extract::Query, routing::get};
use base64::{Engine, engine::general_purpose::STANDARD as B64};
use provisio_orchestrator::{Client, ClientConfig, client::account_request_body};
use serde_json::{Value, json};

use crate::{
    server::{Server, config_file},
    smtp::SmtpServer,
};

const SECRET: &str = "whsec_consent_browser";
/// The W3C WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// An executable by name, as an absolute path: the first on `PATH` that answers `--version`.
fn executable(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/lib/chromium")])
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .filter(|candidate| candidate.is_file())
        .find(|candidate| {
            Command::new(candidate)
                .arg("--version")
                .stdin(Stdio::null())
                .output()
                .is_ok_and(|o| o.status.success())
        })
}

/// One query string as received: its pairs in order.
type Pairs = Vec<(String, String)>;

/// The orchestrator's callback: records every query it receives and answers 200.
struct Callback {
    url: String,
    received: Arc<Mutex<Vec<Pairs>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Callback {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Callback {
    async fn start() -> Self {
        let received: Arc<Mutex<Vec<Pairs>>> = Arc::default();
        let record = Arc::clone(&received);
        let app = Router::new().route(
            "/callback",
            get(move |Query(query): Query<Pairs>| async move {
                record.lock().unwrap().push(query);
                axum::response::Html("<h1 id=\"callback\">The orchestrator got the answer</h1>")
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url: format!("http://{addr}/callback"), received, task }
    }

    /// Waits for the `n`th query (1-based) to arrive; its pairs.
    async fn nth(&self, n: usize, driver: &WebDriver) -> Pairs {
        for _ in 0..300 {
            if let Some(query) = self.received.lock().unwrap().get(n - 1) {
                return query.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the callback received no query #{n} within 30 s; the browser is at {} showing:\n{}",
            driver.current_url().await,
            driver.source().await
        );
    }
}

fn param<'q>(query: &'q [(String, String)], name: &str) -> Option<&'q str> {
    query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// chromedriver and one browser session. Dropping it deletes the session (closing Chromium) and
/// stops chromedriver, on success and on failure alike.
struct WebDriver {
    http: reqwest::Client,
    base: String,
    port: u16,
    session: Option<String>,
    child: Child,
    profile: tempfile::TempDir,
}

impl Drop for WebDriver {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            // Blocking and by hand: no runtime to await on here.
            let _ = raw_delete(self.port, &format!("/session/{session}"));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `DELETE path` on 127.0.0.1:`port` over a plain socket; the status line.
fn raw_delete(port: u16, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "DELETE {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    Ok(reply.lines().next().unwrap_or_default().to_string())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl WebDriver {
    /// Starts chromedriver on a free loopback port and opens a headless session with a fresh
    /// profile. Needs a rustls provider installed (the orchestrator's `Client::new` does it).
    async fn start(chromedriver: &Path, chromium: &Path, log: &Path) -> Self {
        let port = free_port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(90))
            .no_proxy()
            .build()
            .expect("an HTTP client");
        let mut driver = Self {
            http,
            base: format!("http://127.0.0.1:{port}"),
            port,
            session: None,
            child,
            profile: tempfile::tempdir().unwrap(),
        };
        driver.wait_ready(log).await;
        let args = crate::browser::CHROMIUM_FLAGS
            .iter()
            .map(|flag| flag.to_string())
            .chain([format!("--user-data-dir={}", driver.profile.path().display())])
            .collect::<Vec<_>>();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium.display().to_string(), "args": args},
        }}});
        let created = driver.command(reqwest::Method::POST, "/session", Some(capabilities)).await;
        let created = created.unwrap_or_else(|e| {
            panic!("a new WebDriver session: {e}\nchromedriver log:\n{}", tail(log))
        });
        driver.session = Some(created["sessionId"].as_str().expect("a session id").to_string());
        driver
    }

    async fn wait_ready(&mut self, log: &Path) {
        for _ in 0..300 {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("chromedriver exited ({status}) before it was ready:\n{}", tail(log));
            }
            if let Ok(status) = self.command(reqwest::Method::GET, "/status", None).await
                && status["ready"] == true
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver was not ready within 30 s:\n{}", tail(log));
    }

    /// One WebDriver command: its `value`, or the error it answered with.
    async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status();
        let reply: Value =
            response.json().await.map_err(|e| format!("{method} {path}: not JSON: {e}"))?;
        let value = reply.get("value").cloned().unwrap_or(Value::Null);
        if status.is_success() {
            Ok(value)
        } else {
            Err(format!("{method} {path}: {status}: {} ({})", value["error"], value["message"]))
        }
    }

    /// A command in this session that must succeed.
    async fn session_command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let session = self.session.as_deref().expect("a session");
        self.command(method, &format!("/session/{session}{path}"), body)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    async fn navigate(&self, url: &str) {
        self.session_command(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    async fn current_url(&self) -> String {
        let url = self.session_command(reqwest::Method::GET, "/url", None).await;
        url.as_str().unwrap_or_default().to_string()
    }

    async fn source(&self) -> String {
        let source = self.session_command(reqwest::Method::GET, "/source", None).await;
        source.as_str().unwrap_or_default().to_string()
    }

    /// Every element matching `css` now (maybe none).
    async fn find_all(&self, css: &str) -> Vec<String> {
        let found = self
            .session_command(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found
            .as_array()
            .map(|all| all.iter().filter_map(|e| e[ELEMENT].as_str().map(String::from)).collect())
            .unwrap_or_default()
    }

    /// The first element matching `css`, waiting up to 30 s for a page to show it.
    async fn wait_for(&self, css: &str) -> String {
        for _ in 0..300 {
            if let Some(element) = self.find_all(css).await.into_iter().next() {
                return element;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "no {css} within 30 s; the browser is at {} showing:\n{}",
            self.current_url().await,
            self.source().await
        );
    }

    async fn click(&self, element: &str) {
        self.session_command(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn text(&self, element: &str) -> String {
        let text = self
            .session_command(reqwest::Method::GET, &format!("/element/{element}/text"), None)
            .await;
        text.as_str().unwrap_or_default().to_string()
    }

    async fn property(&self, element: &str, name: &str) -> Value {
        self.session_command(
            reqwest::Method::GET,
            &format!("/element/{element}/property/{name}"),
            None,
        )
        .await
    }

    /// A PNG of the viewport.
    async fn screenshot(&self) -> Vec<u8> {
        let shot = self.session_command(reqwest::Method::GET, "/screenshot", None).await;
        B64.decode(shot.as_str().expect("base64")).expect("a base64 PNG")
    }

    /// Deletes the session (Chromium closes); chromedriver stops when the guard drops.
    async fn quit(mut self) {
        let session = self.session.take().expect("a session");
        let deleted =
            self.command(reqwest::Method::DELETE, &format!("/session/{session}"), None).await;
        assert!(deleted.is_ok(), "the session is deleted: {deleted:?}");
    }
}

/// The end of a log file, for a failure message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// The sign-in link in the last email to `to`, as the person would click it.
async fn emailed_link(smtp: &SmtpServer, to: &str, base_url: &str) -> String {
    let prefix = format!("{base_url}/consent/verify?token=");
    for _ in 0..300 {
        if let Some(mail) = smtp.received().into_iter().rev().find(|m| m.to.iter().any(|t| t == to))
        {
            assert_eq!(mail.from, "no-reply@provider.test");
            // Quoted-printable: soft line breaks and the escaped `=`.
            let text = mail.text().replace("=\r\n", "").replace("=3D", "=");
            assert!(text.contains("From: provisio <no-reply@provider.test>"), "{text}");
            let at = text.find(&prefix).unwrap_or_else(|| panic!("a link {prefix}… in:\n{text}"));
            return text[at..].chars().take_while(|c| !c.is_whitespace()).collect();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no email to {to} within 30 s (received: {:?})", smtp.received());
}

/// A signed account request with a confirmation secret; the `requires_auth` URL.
async fn request_consent(client: &Client, id: &str, email: &str, state: &str) -> String {
    let mut body = account_request_body(id, email, &format!("acct_{id}"));
    body["confirmation_secret"] = json!(state);
    let reply = client.account_request(&body).await.unwrap();
    assert_eq!(reply.status, 200, "{:?}", reply.json);
    let json = reply.json.unwrap();
    assert_eq!(json["type"], "requires_auth", "{json}");
    json["requires_auth"]["redirect"]["url"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_consent_leg_runs_in_a_real_browser_from_request_to_callback() {
    let (Some(chromium), Some(chromedriver)) = (
        executable(&["chromium", "chromium-browser", "google-chrome"]),
        executable(&["chromedriver"]),
    ) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the consent browser test: install Debian's chromium and chromium-driver"
        );
        eprintln!(
            "SKIPPED: no Chromium or chromedriver on this machine (apt-get install chromium chromium-driver)"
        );
        return;
    };

    let smtp = SmtpServer::start().await;
    let callback = Callback::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(
        dir.path(),
        &format!(
            "[[orchestrators]]\nname = \"stripe\"\nlabel = \"Stripe\"\nsigning_secrets = [\"{SECRET}\"]\n\
             linking = \"consent\"\ncallback_url = \"{}\"\n\n\
             [email]\nsmtp_url = \"{}\"\nfrom = \"provisio <no-reply@provider.test>\"\n",
            callback.url,
            smtp.url()
        ),
    );
    let server = Server::start_in_with_env(dir, &["--config", &config], &[]);
    // Also installs the rustls provider the WebDriver client needs.
    let client = Client::new(ClientConfig::new(&server.base_url, vec![SECRET.into()])).unwrap();

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&shots).unwrap();
    let log = shots.join("chromedriver.log");
    let _ = std::fs::remove_file(&log);
    let driver = WebDriver::start(&chromedriver, &chromium, &log).await;

    // 1. The orchestrator asks; the person opens the consent page it was given.
    let email = "grace@browser.example";
    let consent_url = request_consent(&client, "req_browser", email, "state-browser").await;
    assert!(
        consent_url.starts_with(&format!("{}/consent?token=", server.base_url)),
        "{consent_url}"
    );
    driver.navigate(&consent_url).await;
    let shown = driver.text(&driver.wait_for("#email").await).await;
    assert_eq!(shown, "g***@browser.example");
    assert!(driver.source().await.contains("Stripe wants to connect"));

    // 2. "Email me a sign-in link": the form posts, the page says to check the inbox.
    driver.click(&driver.wait_for("#send-link").await).await;
    let sent = driver.text(&driver.wait_for("#sent").await).await;
    assert!(sent.contains("g***@browser.example"), "{sent}");

    // 3. The emailed link, opened in the same browser: the proof cookie, then the choice.
    let link = emailed_link(&smtp, email, &server.base_url).await;
    driver.navigate(&link).await;
    let confirm = driver.wait_for("#confirm").await;
    let at = driver.current_url().await;
    assert!(at.starts_with(&format!("{}/consent/choose?consent=", server.base_url)), "{at}");
    let source = driver.source().await;
    assert!(source.contains("g***@browser.example"), "the masked address: {source}");
    assert!(!source.contains(email), "never the full address: {source}");
    let choices = driver.find_all("input[type=radio][name=choice]").await;
    assert_eq!(choices.len(), 1, "a new address has one choice: {source}");
    assert_eq!(driver.property(&choices[0], "value").await, "new_account");
    assert_eq!(driver.property(&choices[0], "checked").await, true);

    let shot = shots.join("consent-choose.png");
    let _ = std::fs::remove_file(&shot);
    let png = driver.screenshot().await;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 1000, "a PNG screenshot");
    std::fs::write(&shot, &png).unwrap();
    eprintln!("screenshot: {}", shot.display());

    // 4. "Allow": back to the orchestrator with a code and the state.
    driver.click(&confirm).await;
    let query = callback.nth(1, &driver).await;
    assert_eq!(param(&query, "state"), Some("state-browser"), "{query:?}");
    assert_eq!(param(&query, "error"), None, "{query:?}");
    let code = param(&query, "code").expect("a code").to_string();
    driver.wait_for("#callback").await;
    assert!(driver.current_url().await.starts_with(&callback.url));

    // 5. The orchestrator redeems the code: tokens for the new account, that work.
    let tokens = client.redeem_code(&code, None).await.unwrap();
    assert_eq!(tokens.status, 200, "{:?}", tokens.json);
    let tokens = tokens.json.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    assert!(access.starts_with("pvat"), "{tokens}");
    assert!(tokens["refresh_token"].as_str().unwrap().starts_with("pvrt"), "{tokens}");
    assert!(!tokens["account"]["id"].as_str().unwrap().is_empty(), "{tokens}");
    assert_eq!(tokens["account"]["available_teams"].as_array().unwrap().len(), 1, "{tokens}");
    let created = client
        .provision(
            &json!({"project_id": "consent_browser", "configuration": {"project_name": "Consented"}}),
            access,
        )
        .await
        .unwrap();
    assert_eq!(created.status, 200, "the access token works: {:?}", created.json);
    // Single use: a second redemption is refused and revokes what the first one issued.
    let again = client.redeem_code(&code, None).await.unwrap();
    assert_eq!(again.status, 400, "a code is single use: {:?}", again.json);

    // 6. A second request, declined on its first page: access_denied with its state, no email.
    let emails = smtp.received().len();
    let consent_url =
        request_consent(&client, "req_declined", "no@browser.example", "state-no").await;
    driver.navigate(&consent_url).await;
    driver.click(&driver.wait_for("#decline").await).await;
    let query = callback.nth(2, &driver).await;
    assert_eq!(
        query,
        [("error".to_string(), "access_denied".to_string()), ("state".into(), "state-no".into())]
    );
    driver.wait_for("#callback").await;
    assert_eq!(smtp.received().len(), emails, "declining sends no email");

    driver.quit().await;
}

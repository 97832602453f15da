//! The provider over a real socket: Python-signed requests, rotation, tampering, the zero-config
//! secret surviving a restart, graceful shutdown, the orchestrator CLI.

use std::process::Command;

use provisio_orchestrator::Method;
use provisio_orchestrator::{Client, ClientConfig, client::Auth};
use serde_json::{Value, json};

use crate::server::{Server, config_file};

/// Signs `"<t>." + body` with Python's `hmac`, an implementation independent of ours.
fn python_sign(secret: &str, t: i64, body: &[u8]) -> Option<String> {
    let script = "import hmac,hashlib,sys; s,t=sys.argv[1],sys.argv[2]; b=sys.stdin.buffer.read(); print(hmac.new(s.encode(), t.encode()+b'.'+b, hashlib.sha256).hexdigest())";
    let mut child = Command::new("python3")
        .args(["-c", script, secret, &t.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    use std::io::Write;
    child.stdin.take()?.write_all(body).ok()?;
    let out = child.wait_with_output().ok()?;
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}

fn now() -> i64 {
    provisio_orchestrator::client::unix_now()
}

async fn get(server: &Server, path: &str, signature: &str, body: &[u8]) -> (u16, Value) {
    let client = Client::new(ClientConfig::new(&server.base_url, vec![])).unwrap();
    let auth = Auth {
        unsigned: true,
        extra_headers: vec![("Stripe-Signature".into(), signature.into())],
        ..Auth::default()
    };
    let reply =
        client.send(Method::GET, &client.url(path), body.to_vec(), None, &auth).await.unwrap();
    (reply.status, reply.json.unwrap())
}

#[tokio::test]
async fn python_signed_requests_rotation_and_tampering_over_a_real_socket() {
    let server = Server::start(&["--signing-secret", "whsec_old,whsec_new"]);
    let t = now();
    let body = br#"{"any":"bytes","even":"\u00e9"}"#;
    let Some(sig_new) = python_sign("whsec_new", t, body) else {
        eprintln!("SKIPPED: python3 is not available to sign independently");
        return;
    };
    let sig_old = python_sign("whsec_old", t, body).unwrap();
    let sig_retired = python_sign("whsec_retired", t, body).unwrap();

    let ok = json!({"status":"ok","supported_versions":["0.1d"]});
    assert_eq!(
        get(&server, "/provisioning/health", &format!("t={t},v1={sig_new}"), body).await,
        (200, ok.clone())
    );
    // Double-signed as during rotation: one retired, one current.
    let rotated = format!("t={t},v1={sig_retired},v1={sig_new}");
    assert_eq!(get(&server, "/provisioning/health", &rotated, body).await, (200, ok.clone()));
    assert_eq!(
        get(&server, "/provisioning/health", &format!("t={t},v1={sig_old}"), body).await,
        (200, ok)
    );

    let refused =
        json!({"error":{"code":"invalid_signature","message":"Signature verification failed"}});
    let mut tampered = body.to_vec();
    tampered[3] ^= 1;
    assert_eq!(
        get(&server, "/provisioning/health", &format!("t={t},v1={sig_new}"), &tampered).await,
        (401, refused.clone())
    );
    assert_eq!(
        get(&server, "/provisioning/services", &format!("t={t},v1={sig_retired}"), body).await,
        (401, refused)
    );
}

#[tokio::test]
async fn zero_config_secret_survives_a_restart_and_the_cli_uses_it() {
    let first = Server::start(&[]);
    let secret = first
        .banner
        .iter()
        .find_map(|l| l.split_whitespace().find(|w| w.starts_with("whsec_")))
        .expect("banner shows the generated secret")
        .to_string();
    assert!(first.banner.iter().any(|l| l.contains("orchestrator health --base-url")));
    let (status, dir) = first.terminate();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");

    let second = Server::start_in(dir, &[]);
    // Printed once, when generated (a restart's banner goes to journald again); the same secret
    // still signs.
    assert!(!second.banner.iter().any(|l| l.contains(&secret)), "{:?}", second.banner);
    assert!(second.banner.iter().any(|l| l.contains("the one generated on first start")));
    let out = Command::new(env!("CARGO_BIN_EXE_provisio"))
        .args([
            "orchestrator",
            "health",
            "--json",
            "--base-url",
            &second.base_url,
            "--signing-secret",
            &secret,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, json!({"status":"ok","supported_versions":["0.1d"]}));

    let out = Command::new(env!("CARGO_BIN_EXE_provisio"))
        .args([
            "orchestrator",
            "services",
            "--json",
            "--base-url",
            &second.base_url,
            "--signing-secret",
            "wrong",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "a refused call exits non-zero");
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["error"]["code"], "invalid_signature");
}

#[tokio::test]
async fn the_orchestrator_cli_runs_the_whole_flow_and_chains_calls_through_its_state_file() {
    let server = Server::start(&["--signing-secret", "whsec_cli"]);
    let state = server.dir.as_ref().unwrap().path().join("state.json");
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_provisio"))
            .arg("orchestrator")
            .args(args)
            .args([
                "--json",
                "--base-url",
                &server.base_url,
                "--signing-secret",
                "whsec_cli",
                "--state-file",
            ])
            .arg(&state)
            .output()
            .unwrap();
        (out.status.success(), serde_json::from_slice::<Value>(&out.stdout).unwrap_or(Value::Null))
    };
    let (ok, steps) = run(&["flow", "--email", "flow@example.com", "--name", "Flo W"]);
    assert!(ok, "{steps}");
    let names: Vec<_> =
        steps.as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "health",
            "services",
            "account_request",
            "token",
            "provision",
            "get",
            "rotate",
            "deep_link"
        ]
    );
    assert!(steps[7]["body"]["url"].as_str().unwrap().contains("/login?token="));
    assert_eq!(
        steps[3]["body"]["account"]["available_teams"][0]["organization_name"],
        "Stripe (flow@example.com)"
    );

    let (ok, body) = run(&["account-request", "--email", "flow@example.com", "--pkce"]);
    assert!(ok && body["type"] == "oauth", "{body}");
    let (ok, body) = run(&["token"]);
    assert!(ok, "the saved code and PKCE verifier redeem: {body}");
    let (ok, body) = run(&["refresh"]);
    assert!(ok && body.get("account").is_none(), "{body}");
    let (ok, body) = run(&["token"]);
    assert!(!ok && body.is_null(), "no code left to redeem");
    let (ok, body) = run(&["provision", "--project-id", "cli-1", "--project-name", "From the CLI"]);
    assert!(ok && body["status"] == "complete", "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let (ok, body) = run(&["get"]);
    assert!(ok && body["id"] == id.as_str(), "the last resource is the default: {body}");
    let (ok, body) = run(&["update-service", "--service-id", "free"]);
    assert!(ok, "{body}");
    let (ok, body) = run(&["rotate", &id]);
    assert!(
        ok && body["complete"]["access_configuration"]["personal_api_key"].is_string(),
        "{body}"
    );
    let (ok, body) = run(&["deep-link", "--resource-id", &id]);
    assert!(ok && body["purpose"] == "dashboard", "{body}");
    let (ok, body) = run(&["remove"]);
    assert!(ok && body == serde_json::json!({"status": "removed", "id": id}), "{body}");
    let (ok, body) = run(&["account-request", "--email", "flow@example.com", "--team-id", "abc"]);
    assert!(!ok);
    assert_eq!(body["error"]["message"], "configuration.team_id must be an integer");
}

/// The status of a `GET /login` sent over a plain socket with this `X-Forwarded-For`, if any.
fn login_status(server: &Server, forwarded: Option<&str>) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(server.addr()).unwrap();
    let header = forwarded.map(|f| format!("X-Forwarded-For: {f}\r\n")).unwrap_or_default();
    let request = format!(
        "GET /login?token=guess HTTP/1.1\r\nHost: provisio\r\n{header}Connection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap()
}

/// Over a real socket the peer address reaches the login limit: behind a trusted proxy (here the
/// loopback address) each forwarded client has its own bucket, and the proxy's own calls theirs.
#[test]
fn behind_a_trusted_proxy_a_real_server_limits_logins_per_forwarded_client() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_file(
        dir.path(),
        "[rate_limits]\ntrusted_proxies = [\"127.0.0.1\"]\ndashboard_logins_per_ip = { burst = 2, per_minute = 1 }\n",
    );
    let server = Server::start_in(dir, &["--config", &config]);
    let spent = Some("198.51.100.1");
    assert_eq!([login_status(&server, spent), login_status(&server, spent)], [303, 303]);
    assert_eq!(login_status(&server, spent), 429);
    assert_eq!(
        login_status(&server, Some("6.6.6.6, 198.51.100.1")),
        429,
        "a spoofed entry is ignored"
    );
    assert_eq!(login_status(&server, Some("198.51.100.2")), 303);
    assert_eq!(login_status(&server, None), 303, "the proxy itself");
    let (status, _) = server.terminate();
    assert!(status.success());
}

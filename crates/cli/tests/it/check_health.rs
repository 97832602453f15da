//! `provisio check-health`, the container's HEALTHCHECK: exit status 0 only when the real server
//! answers 2xx; a 404, a closed port and a server that never answers all fail.

use std::{
    process::{Command, Output},
    time::{Duration, Instant},
};

use crate::server::Server;

fn check_health(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_provisio"))
        .arg("check-health")
        .args(args)
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn succeeds_only_on_a_2xx_from_the_server() {
    let server = Server::start(&["--signing-secret", "s"]);

    let ready = check_health(&["--url", &format!("{}/readyz", server.base_url)]);
    let stdout = text(&ready.stdout);
    assert!(ready.status.success(), "{stdout} {}", text(&ready.stderr));
    assert!(stdout.contains("200 OK"), "{stdout}");
    assert!(stdout.contains(r#""database":"ok""#), "{stdout}");

    let missing = check_health(&["--url", &format!("{}/no-such-path", server.base_url)]);
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("404"), "status on failure: {}", text(&missing.stderr));
}

#[test]
fn fails_on_a_closed_port() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let closed = check_health(&["--url", &format!("http://127.0.0.1:{port}/readyz")]);
    assert!(!closed.status.success());
    assert!(
        text(&closed.stderr).contains(&format!("127.0.0.1:{port}")),
        "{}",
        text(&closed.stderr)
    );
}

#[test]
fn fails_on_a_server_that_never_answers() {
    // Connections are accepted by the kernel into the backlog; nothing ever reads or answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/readyz", listener.local_addr().unwrap());
    let started = Instant::now();
    let silent = check_health(&["--url", &url, "--timeout-secs", "1"]);
    assert!(!silent.status.success());
    assert!(started.elapsed() < Duration::from_secs(10), "gave up after {:?}", started.elapsed());
    drop(listener);
}

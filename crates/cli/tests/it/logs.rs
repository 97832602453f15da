//! What `provisio serve` writes to its log at the default level: one access line per request
//! (probes only at debug), no colour codes in a file, no secret.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
    time::Duration,
};

const SECRET: &str = "whsec_log_test_secret";

#[test]
fn the_default_log_has_one_access_line_per_request_without_colour_or_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("serve.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let db = format!("sqlite://{}", dir.path().join("provisio.db").display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_provisio"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &db,
            "--signing-secret",
            SECRET,
        ])
        .env_remove("RUST_LOG")
        .env_remove("PROVISIO_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    // The banner names the address; the rest of stdout is drained, as a closed pipe would fail
    // the server's next print.
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("provisio is serving the APP 0.1d provider at ") {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    let base_url = rx.recv_timeout(Duration::from_secs(60)).expect("the banner names the address");
    let signed = Command::new(env!("CARGO_BIN_EXE_provisio"))
        .args(["orchestrator", "health", "--base-url", &base_url, "--signing-secret", SECRET])
        .output()
        .unwrap();
    assert!(signed.status.success(), "{}", String::from_utf8_lossy(&signed.stderr));
    let mut probe = TcpStream::connect(base_url.trim_start_matches("http://")).unwrap();
    probe.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    probe.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let _ = probe.read_to_end(&mut Vec::new());
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    child.wait().unwrap();

    let text = std::fs::read_to_string(&log_path).unwrap();
    let access: Vec<&str> = text.lines().filter(|l| l.contains("provisio::access")).collect();
    assert_eq!(access.len(), 1, "one line for the signed call, none for the probe:\n{text}");
    for field in [
        "INFO",
        "method=GET",
        "route=/provisioning/health",
        "status=200",
        "orchestrator=\"stripe\"",
        "request_id=",
    ] {
        assert!(access[0].contains(field), "{field} missing from {}", access[0]);
    }
    assert!(!text.contains('\u{1b}'), "no colour codes in a file:\n{text}");
    assert!(!text.contains(SECRET), "no secret in the log");
}

//! `provisio conformance` as people and CI run it: piped, it prints the failed checks in full and
//! counts the passed ones; `--junit` writes one test case per check; a signing secret the provider
//! does not know is said once, before any check runs.

use std::{collections::BTreeSet, process::Command};

use serde_json::Value;

use crate::server::Server;

const SECRET: &str = "whsec_cli_conformance";

/// Runs `provisio conformance` against `base_url` with stdout piped: (exit success, stdout, stderr).
fn conformance(base_url: &str, secret: &str, extra: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_provisio"))
        .args(["conformance", "--base-url", base_url, "--signing-secret", secret])
        .args(extra)
        .env_remove("PROVISIO_BASE_URL")
        .env_remove("PROVISIO_SIGNING_SECRET")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A loopback URL nothing listens on: the dashboard links of a provider whose `--public-url` it is
/// cannot be opened, so exactly the checks that open them fail.
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

#[test]
fn a_piped_run_prints_failures_in_full_counts_passes_and_writes_junit() {
    let public_url = dead_url();
    let server = Server::start(&["--signing-secret", SECRET, "--public-url", &public_url]);
    let dir = tempfile::tempdir().unwrap();
    let (json_path, junit_path) = (dir.path().join("report.json"), dir.path().join("report.xml"));
    let (ok, stdout, stderr) = conformance(
        &server.base_url,
        SECRET,
        &["--report", json_path.to_str().unwrap(), "--junit", junit_path.to_str().unwrap()],
    );
    assert!(!ok, "a failed check fails the run\n{stdout}{stderr}");
    let report: Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    let checks = report["checks"].as_array().unwrap();
    let with = |outcome: &str| -> Vec<&Value> {
        checks.iter().filter(|c| c["outcome"] == outcome).collect()
    };
    let (passed, failed) = (with("pass"), with("fail"));
    assert!(!failed.is_empty() && failed.iter().all(|c| c["group"] == "deep_links"), "{stdout}");
    assert!(passed.len() > 200, "{stdout}");

    // The compact form: no table, every failure with everything the provider answered.
    assert!(!stdout.contains("+---") && !stdout.contains("| check"), "{stdout}");
    for check in &failed {
        let id = check["id"].as_str().unwrap();
        let heading = stdout.lines().find(|l| {
            l.strip_prefix("FAIL ")
                .is_some_and(|rest| rest == id || rest.starts_with(&format!("{id} [")))
        });
        assert!(heading.is_some(), "{id} is listed\n{stdout}");
        let got = check["got"].as_str().unwrap();
        assert!(stdout.contains(&format!("  got:      {got}\n")), "{id} in full\n{stdout}");
        let expected = check["expected"].as_str().unwrap();
        assert!(stdout.contains(&format!("  expected: {expected}\n")), "{stdout}");
    }
    assert!(
        failed.iter().any(|c| c["got"].as_str().unwrap().chars().count() > 140),
        "a got longer than the table clips its cells to is shown whole"
    );
    for check in &passed {
        let id = check["id"].as_str().unwrap();
        assert!(!stdout.contains(&format!("{id} ")), "a passed check is only counted: {id}");
    }
    assert_eq!(stdout.lines().filter(|l| l.starts_with("FAIL ")).count(), failed.len());
    let by_group = stdout.lines().find_map(|l| l.strip_prefix("passed by group: ")).unwrap();
    assert!(by_group.starts_with("health 3, services "), "{by_group}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.last().copied(),
        Some(&*format!("{} passed, {} failed", passed.len(), failed.len()))
    );
    assert_eq!(lines[lines.len() - 2], format!("{} checks", checks.len()));
    assert_eq!(lines.len(), failed.len() * 3 + 3, "{stdout}");

    // JUnit: well-formed, one test case per check, named by its id; failures marked.
    let xml = std::fs::read_to_string(&junit_path).unwrap();
    well_formed(&xml);
    let cases: BTreeSet<&str> = xml
        .match_indices("<testcase ")
        .map(|(at, _)| {
            let name = &xml[at..].split(" name=\"").nth(1).unwrap();
            &name[..name.find('"').unwrap()]
        })
        .collect();
    let ids: BTreeSet<&str> = checks.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(xml.matches("<testcase ").count(), checks.len());
    assert_eq!(cases, ids);
    assert_eq!(xml.matches("<failure ").count(), failed.len());
    assert!(xml.contains(&format!(
        "<testsuite name=\"provisio conformance\" tests=\"{}\" failures=\"{}\" skipped=\"0\">",
        checks.len(),
        failed.len()
    )));
}

#[test]
fn format_table_prints_every_check_as_a_row() {
    let server = Server::start(&["--signing-secret", SECRET]);
    let (ok, stdout, stderr) =
        conformance(&server.base_url, SECRET, &["--only", "health", "--format", "table"]);
    assert!(ok, "{stdout}{stderr}");
    for id in ["health.ok", "health.supports_0_1d", "health.json_content_type"] {
        assert!(stdout.lines().any(|l| l.contains(id) && l.contains("| pass")), "{id}\n{stdout}");
    }
    assert!(stdout.ends_with("3 checks\n3 passed, 0 failed\n"), "{stdout}");

    let (ok, stdout, _) =
        conformance(&server.base_url, SECRET, &["--only", "health", "--format", "compact"]);
    assert!(ok);
    assert_eq!(stdout, "passed by group: health 3\n3 checks\n3 passed, 0 failed\n");
}

#[test]
fn a_wrong_secret_is_said_once_before_any_check() {
    let server = Server::start(&["--signing-secret", SECRET]);
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("report.json");
    let started = std::time::Instant::now();
    let (ok, stdout, stderr) = conformance(
        &server.base_url,
        "whsec_not_the_one",
        &["--report", json_path.to_str().unwrap()],
    );
    assert!(!ok);
    assert_eq!(stdout, "", "no checks, no table");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: the provider at {} refuses this signing secret: a signed GET \
             /provisioning/health answered 401 ",
            server.base_url
        )),
        "{stderr}"
    );
    assert!(stderr.contains("invalid_signature"), "{stderr}");
    assert!(stderr.contains("check --signing-secret"), "{stderr}");
    assert_eq!(stderr.matches("refuses").count(), 1, "{stderr}");
    assert!(!json_path.exists(), "the suite did not run");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));

    // Nobody listening: said once too.
    let (ok, stdout, stderr) = conformance(&dead_url(), SECRET, &[]);
    assert!(!ok);
    assert_eq!(stdout, "");
    assert!(
        stderr.starts_with("error: cannot reach the provider at http://127.0.0.1:"),
        "{stderr}"
    );
}

/// Fails unless `xml` is well-formed: one root element, every tag closed in order, attribute values
/// quoted, and `&` and `<` only as markup or the five predefined entities.
fn well_formed(xml: &str) {
    let body = xml.strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>").unwrap().trim();
    let mut open: Vec<&str> = Vec::new();
    let mut roots = 0;
    let mut rest = body;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            text(rest);
            break;
        };
        text(&rest[..lt]);
        assert!(!open.is_empty() || rest[..lt].trim().is_empty(), "text outside the root");
        let gt = rest[lt..].find('>').map(|g| lt + g).expect("an unclosed tag");
        let tag = &rest[lt + 1..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(open.pop(), Some(name), "closing tag out of order");
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let (name, mut attributes) = tag.split_once(' ').unwrap_or((tag, ""));
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "tag name {name:?}"
        );
        while !attributes.trim().is_empty() {
            let (key, value) = attributes.trim_start().split_once("=\"").expect("key=\"value\"");
            assert!(key.chars().all(|c| c.is_ascii_alphanumeric()), "attribute name {key:?}");
            let end = value.find('"').expect("a closing quote");
            text(&value[..end]);
            attributes = &value[end + 1..];
        }
        if open.is_empty() {
            roots += 1;
        }
        if !self_closing {
            open.push(name);
        }
    }
    assert!(open.is_empty(), "unclosed: {open:?}");
    assert_eq!(roots, 1, "one root element");
}

/// Character data: no `<`, and every `&` starts a predefined entity.
fn text(data: &str) {
    assert!(!data.contains('<'), "{data:?}");
    for (at, _) in data.match_indices('&') {
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].iter().any(|e| data[at..].starts_with(e)),
            "a bare & in {data:?}"
        );
    }
}

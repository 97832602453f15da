//! `provisio connector-check` against the connector tests' SaaS: a correct one passes every check,
//! and each deliberately broken one fails exactly the checks that name its fault.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::saas::{Broken, CONNECTOR_SECRET, EVENTS_SECRET, Saas};

/// Runs the binary against `saas`; (exit success, the JSON report, stdout).
async fn check(saas: &Saas) -> (bool, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let junit = dir.path().join("report.xml");
    let args = [
        "connector-check".to_string(),
        "--url".into(),
        saas.connector_url(),
        "--secret-env".into(),
        "CHECK_CONNECTOR_SECRET".into(),
        "--events-url".into(),
        saas.events_url(),
        "--events-secret-env".into(),
        "CHECK_EVENTS_SECRET".into(),
        "--report".into(),
        report.display().to_string(),
        "--junit".into(),
        junit.display().to_string(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_provisio"))
            .args(args)
            .env("CHECK_CONNECTOR_SECRET", CONNECTOR_SECRET)
            .env("CHECK_EVENTS_SECRET", EVENTS_SECRET)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json: Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase").count(), json["checks"].as_array().unwrap().len());
    (out.status.success(), json, stdout)
}

fn with(report: &Value, outcome: &str) -> BTreeSet<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["outcome"] == outcome)
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

async fn broken(fault: Broken) -> (bool, Value, String) {
    let saas = Saas::start().await;
    saas.world().broken = Some(fault);
    check(&saas).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saas_that_keeps_the_contract_passes_every_check() {
    let saas = Saas::start().await;
    let (ok, report, stdout) = check(&saas).await;
    assert!(ok, "{stdout}");
    assert_eq!(report["failed"], 0, "{stdout}");
    assert_eq!(report["skipped"], 0, "{stdout}");
    assert_eq!(report["passed"], 19, "{stdout}");
    assert!(stdout.contains("signs up one test user, connector-check-"), "{stdout}");
    assert!(stdout.ends_with("19 passed, 0 failed\n"), "{stdout}");
    assert!(report["timing"]["calls"].as_u64().unwrap() >= 17);
    // One test user, under the check's domain; the resource was removed at the end.
    let users = saas.world().users.clone();
    assert_eq!(users.len(), 1);
    assert!(users[0].email.ends_with("@connector-check.invalid"));
    assert!(saas.world().live_secret.is_empty(), "removed: no live credentials left");
    // Secrets the SaaS minted never reach the report or the terminal.
    let minted = saas.world().minted.clone();
    let resource = minted.keys().next().unwrap().clone();
    assert!(!stdout.contains(&format!("sk_{resource}")), "{stdout}");
    assert!(!report.to_string().contains(&format!("sk_{resource}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saas_that_skips_signature_checks_fails_the_signature_checks() {
    let (ok, report, stdout) = broken(Broken::SkipsSignatures).await;
    assert!(!ok);
    let expected: BTreeSet<String> =
        ["signature.missing", "signature.other_secret", "signature.stale"].map(String::from).into();
    assert_eq!(with(&report, "fail"), expected, "{stdout}");
    assert!(stdout.contains("must be refused with a 4xx before any work"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saas_that_makes_a_second_user_on_a_new_webhook_id_fails_user_exists() {
    let (ok, report, stdout) = broken(Broken::UserPerWebhookId).await;
    assert!(!ok);
    assert_eq!(with(&report, "fail"), ["users.create.exists".to_string()].into(), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saas_that_answers_an_empty_user_fails_the_unknown_lookup() {
    let (ok, report, stdout) = broken(Broken::EmptyUser).await;
    assert!(!ok);
    assert_eq!(with(&report, "fail"), ["users.lookup.unknown".to_string()].into(), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saas_with_string_project_ids_fails_the_create_shape() {
    let (ok, report, stdout) = broken(Broken::StringProjectIds).await;
    assert!(!ok);
    assert_eq!(with(&report, "fail"), ["users.create.shape".to_string()].into(), "{stdout}");
    let shape =
        report["checks"].as_array().unwrap().iter().find(|c| c["id"] == "users.create.shape");
    let got = shape.unwrap()["got"].as_str().unwrap();
    assert!(got.contains("not the specified shape"), "{got}");
    // What needs the user is skipped, saying why.
    assert!(with(&report, "skip").contains("resources.provision.shape"));
}

#[test]
fn a_missing_secret_variable_is_named() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_provisio"))
        .args([
            "connector-check",
            "--url",
            "http://127.0.0.1:9/x",
            "--secret-env",
            "NO_SUCH_SECRET_VAR",
        ])
        .env_remove("NO_SUCH_SECRET_VAR")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("environment variable NO_SUCH_SECRET_VAR is not set"), "{stderr}");
}

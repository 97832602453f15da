//! `serve` start-up: configuration resolution, the generated secret, refusal of a bad catalog.

use std::io::Write;

use clap::Parser;
use provisio_server::{client_addr::TrustedProxies, clock::Clock, config::ServeArgs, prepare};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

const LISTEN: std::net::SocketAddr =
    std::net::SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 8080));

fn args(dir: &tempfile::TempDir, extra: &[&str]) -> ServeArgs {
    let db = format!("sqlite://{}", dir.path().join("p.db").display());
    let mut argv = vec!["provisio", "--database-url", &db];
    argv.extend_from_slice(extra);
    Cli::try_parse_from(argv).unwrap().serve
}

#[tokio::test]
async fn zero_configuration_generates_a_secret_and_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let first = prepare(&args(&dir, &[]), Clock::system(), LISTEN).await.unwrap();
    let secret = first.generated_secret.clone().unwrap();
    assert!(secret.starts_with("whsec_") && secret.len() > 40);
    first.state.store.close().await.expect("the store closes cleanly");
    let second = prepare(&args(&dir, &[]), Clock::system(), LISTEN).await.unwrap();
    assert_eq!(second.generated_secret.as_deref(), Some(secret.as_str()));
    assert_eq!(second.state.public_url, "http://127.0.0.1:8080");
    assert!(dir.path().join("p.db").exists());
}

#[tokio::test]
async fn a_configured_secret_wins_and_is_not_shown() {
    let dir = tempfile::tempdir().unwrap();
    let startup = prepare(
        &args(&dir, &["--signing-secret", "a,b", "--public-url", "https://p.example/"]),
        Clock::system(),
        LISTEN,
    )
    .await
    .unwrap();
    assert!(startup.generated_secret.is_none());
    assert!(startup.state.orchestrators.has_secrets());
    assert_eq!(startup.state.public_url, "https://p.example");
}

#[tokio::test]
async fn an_explicitly_empty_secret_leaves_the_provider_unconfigured() {
    let dir = tempfile::tempdir().unwrap();
    let startup =
        prepare(&args(&dir, &["--signing-secret", ""]), Clock::system(), LISTEN).await.unwrap();
    assert!(startup.generated_secret.is_none());
    assert!(!startup.state.orchestrators.has_secrets());
}

#[tokio::test]
async fn a_bad_catalog_refuses_to_start_naming_service_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("provisio.toml");
    let mut file = std::fs::File::create(&path).unwrap();
    writeln!(
        file,
        "[[services]]\nid = \"db\"\ndescription = \"A database\"\ncategories = [\"databases\"]\npricing = {{ type = \"free\" }}"
    )
    .unwrap();
    let err = prepare(&args(&dir, &["--config", path.to_str().unwrap()]), Clock::system(), LISTEN)
        .await
        .err()
        .unwrap();
    let message = err.to_string();
    assert!(
        message.contains("service \"db\", field `categories`: unknown category \"databases\""),
        "{message}"
    );
}

#[tokio::test]
async fn an_unreadable_config_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let err =
        prepare(&args(&dir, &["--config", "/nonexistent/provisio.toml"]), Clock::system(), LISTEN)
            .await
            .err()
            .unwrap();
    assert!(err.to_string().contains("/nonexistent/provisio.toml"));
}

#[tokio::test]
async fn trusted_proxies_from_the_file_and_a_bad_one_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("provisio.toml");
    let args = args(&dir, &["--config", path.to_str().unwrap()]);
    std::fs::write(&path, "[rate_limits]\ntrusted_proxies = [\"10.0.0.0/8\", \"192.0.2.7\"]\n")
        .unwrap();
    let startup = prepare(&args, Clock::system(), LISTEN).await.unwrap();
    let expected = ["10.0.0.0/8", "192.0.2.7/32"].map(String::from).to_vec();
    assert_eq!(startup.state.trusted_proxies, TrustedProxies::try_from(expected).unwrap());
    std::fs::write(&path, "[rate_limits]\ntrusted_proxies = [\"lb.internal\"]\n").unwrap();
    let message = prepare(&args, Clock::system(), LISTEN).await.err().unwrap().to_string();
    assert!(message.contains("\"lb.internal\" is neither an address nor a network"), "{message}");
}

#[tokio::test]
async fn orchestrators_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("provisio.toml");
    std::fs::write(&path, "[limits]\nsignature_tolerance_secs = 60\n\n[[orchestrators]]\nname = \"acme\"\nlabel = \"Acme\"\nsigning_secrets = [\"s1\"]\n").unwrap();
    let startup =
        prepare(&args(&dir, &["--config", path.to_str().unwrap()]), Clock::system(), LISTEN)
            .await
            .unwrap();
    assert!(startup.generated_secret.is_none());
    assert_eq!(startup.state.limits.signature_tolerance_secs, 60);
    assert_eq!(startup.state.orchestrators.all()[0].label, "Acme");
}

/// Starts with `toml` as the config file (and `extra` flags); the refusal's message.
async fn refusal(toml: &str, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("provisio.toml");
    std::fs::write(&path, toml).unwrap();
    let mut flags = vec!["--config", path.to_str().unwrap()];
    flags.extend_from_slice(extra);
    prepare(&args(&dir, &flags), Clock::system(), LISTEN).await.err().unwrap().to_string()
}

#[tokio::test]
async fn a_bad_connector_or_events_section_refuses_the_start_naming_the_key() {
    let connector = |extra: &str| {
        format!(
            "[connector]\nurl = \"https://saas.example/v1\"\nsecret_env = \"PROVISIO_TEST_UNSET_SECRET\"\n\
             dashboard_origin = \"https://app.saas.example\"\n{extra}"
        )
    };
    assert_eq!(
        refusal(&connector(""), &[]).await,
        "[connector] secret_env: environment variable PROVISIO_TEST_UNSET_SECRET is not set"
    );
    let not_whsec = connector("").replace("PROVISIO_TEST_UNSET_SECRET", "HOME");
    assert_eq!(
        refusal(&not_whsec, &[]).await,
        "[connector] secret_env: environment variable HOME: secret #1 does not start with whsec_"
    );
    let plain_http = connector("").replace("https://saas.example", "http://saas.example");
    assert!(refusal(&plain_http, &[]).await.starts_with("[connector] url: "));
    let unknown = refusal(&connector("timeout = 5\n"), &[]).await;
    assert!(unknown.contains("unknown field `timeout`"), "{unknown}");
    let missing = refusal("[connector]\nurl = \"https://saas.example\"\n", &[]).await;
    assert!(missing.contains("missing field `secret_env`"), "{missing}");
    let events = "[events]\nurl = \"ftp://saas.example/events\"\nsecret_env = \"HOME\"\n";
    assert!(refusal(events, &[]).await.starts_with("[events] url: "));
}

#[tokio::test]
async fn settings_that_lead_nowhere_in_connector_mode_are_refused() {
    // Secret checks come first, so these use a file whose secret is bad only after the setting.
    let with_billing = "[connector]\nurl = \"https://saas.example\"\nsecret_env = \"HOME\"\n\
                        dashboard_origin = \"https://app.saas.example\"\n\n[billing]\nbackend = \"record\"\n";
    assert_eq!(
        refusal(with_billing, &[]).await,
        "[billing] backend: payment tokens go to the SaaS in connector mode; remove [billing]"
    );
}

#[tokio::test]
async fn a_consent_orchestrator_needs_a_callback_url_it_may_use() {
    let consent = |extra: &str| {
        format!(
            "[[orchestrators]]\nname = \"acme\"\nsigning_secrets = [\"s1\"]\nlinking = \"consent\"\n{extra}"
        )
    };
    assert_eq!(
        refusal(&consent(""), &[]).await,
        "orchestrator \"acme\": callback_url is required with linking = \"consent\" (where the browser returns)"
    );
    let plain = refusal(&consent("callback_url = \"http://orchestrator.example/cb\"\n"), &[]).await;
    assert!(plain.starts_with("orchestrator \"acme\": callback_url: "), "{plain}");
    assert!(plain.contains("must be https (or http on a loopback host)"), "{plain}");
    for good in ["https://orchestrator.example/cb", "http://127.0.0.1:8765/callback"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("provisio.toml");
        std::fs::write(&path, consent(&format!("callback_url = \"{good}\"\n"))).unwrap();
        let startup =
            prepare(&args(&dir, &["--config", path.to_str().unwrap()]), Clock::system(), LISTEN)
                .await
                .unwrap();
        assert!(startup.state.orchestrators.all()[0].callback_url.is_some());
        // No [email]: the sign-in links go to files beside the database, and serve says so.
        let outbox = startup.state.mailer.as_ref().unwrap().outbox_dir().unwrap().to_path_buf();
        assert_eq!(outbox, dir.path().join("outbox"));
    }
}

//! `serve` start-up: configuration resolution, the generated secret, refusal of a bad catalog.

use std::io::Write;

use clap::Parser;
use provisio_server::{
    client_addr::TrustedProxies, clock::Clock, config::ServeArgs, prepare, serve::SigningSecret,
};

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
    let SigningSecret::Generated { secret, new: true } = first.secret.clone() else {
        panic!("a new secret: {:?}", first.secret)
    };
    assert!(secret.starts_with("whsec_") && secret.len() > 40);
    first.state.store.close().await.expect("the store closes cleanly");
    drop(first);
    let second = prepare(&args(&dir, &[]), Clock::system(), LISTEN).await.unwrap();
    assert_eq!(second.secret, SigningSecret::Generated { secret, new: false }, "kept, not new");
    assert_eq!(second.state.public_url, "http://127.0.0.1:8080");
    assert!(dir.path().join("p.db").exists());
}

#[tokio::test]
async fn a_second_serve_on_one_sqlite_file_is_refused_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let first = prepare(&args(&dir, &[]), Clock::system(), LISTEN).await.unwrap();
    let second = prepare(&args(&dir, &[]), Clock::system(), LISTEN).await;
    let message = second.err().expect("refused").to_string();
    assert!(message.contains("is already served by another provisio serve"), "{message}");
    assert!(message.contains(&format!("(process {})", std::process::id())), "{message}");
    first.state.store.close().await.unwrap();
    drop(first);
    prepare(&args(&dir, &[]), Clock::system(), LISTEN).await.expect("free again once it stopped");
}

#[cfg(unix)]
#[tokio::test]
async fn the_database_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let startup = prepare(&args(&dir, &[]), Clock::system(), LISTEN).await.unwrap();
    for file in ["p.db", "p.db-wal", "p.db.lock"] {
        let path = dir.path().join(file);
        if path.exists() {
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{file}");
        }
    }
    drop(startup);
}

#[tokio::test]
async fn a_configuration_error_leaves_no_database_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("provisio.toml");
    std::fs::write(
        &path,
        "[[orchestrators]]\nname = \"acme\"\nsigning_secrets_env = \"PROVISIO_TEST_UNSET_VAR_9\"\n",
    )
    .unwrap();
    let refused =
        prepare(&args(&dir, &["--config", path.to_str().unwrap()]), Clock::system(), LISTEN).await;
    let message = refused.err().expect("refused").to_string();
    assert!(message.contains("PROVISIO_TEST_UNSET_VAR_9"), "{message}");
    assert!(!dir.path().join("p.db").exists(), "checked before the database was created");
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
    assert_eq!(
        startup.secret,
        SigningSecret::Configured { hint: "\"$PROVISIO_SIGNING_SECRET\"".into() }
    );
    assert!(startup.state.orchestrators.has_secrets());
    assert_eq!(startup.state.public_url, "https://p.example");
}

#[tokio::test]
async fn an_explicitly_empty_secret_leaves_the_provider_unconfigured() {
    let dir = tempfile::tempdir().unwrap();
    let startup =
        prepare(&args(&dir, &["--signing-secret", ""]), Clock::system(), LISTEN).await.unwrap();
    assert!(matches!(startup.secret, SigningSecret::Configured { .. }));
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
    assert_eq!(
        startup.secret,
        SigningSecret::Configured {
            hint: "<a secret of signing_secrets in the config file>".into()
        }
    );
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

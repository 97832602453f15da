//! `email::Mailer` against a real SMTP conversation over loopback (the receiver in `smtp.rs`), and
//! its outbox folder.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use provisio_server::email::{EmailError, EmailSpec, Mailer, Message, SEND_TIMEOUT, parse_mailbox};

use crate::smtp::{Options, SmtpServer, decode_header, parse_message};

const FROM: &str = "provisio <no-reply@saas.example>";

fn no_env(_: &str) -> Option<String> {
    None
}

fn mailer(url: &str) -> Mailer {
    EmailSpec { smtp_url: Some(url.into()), from: FROM.into(), ..EmailSpec::default() }
        .validate(&no_env)
        .unwrap()
}

fn mailer_with_auth(url: &str, user: &str, password: &str) -> Mailer {
    let password = password.to_string();
    EmailSpec {
        smtp_url: Some(url.into()),
        smtp_username: Some(user.into()),
        smtp_password_env: Some("TEST_SMTP_PASSWORD".into()),
        from: FROM.into(),
        ..EmailSpec::default()
    }
    .validate(&move |var| (var == "TEST_SMTP_PASSWORD").then(|| password.clone()))
    .unwrap()
}

/// A sign-in mail with what tends to break a transport: a long link, lines starting with dots, a
/// line that is only a dot.
fn sign_in(to: &str) -> Message {
    Message::new(
        to,
        "Your sign-in link",
        "Hello,\n\nSign in within 15 minutes:\nhttps://saas.example/consent/sign-in?token=\
         q3Jx9vZkP2mW7tYb4LcN8dRf6GhS1aUe0oIiKjXyQwErTyUiOpAsDfGhJkLzXcVbNm\n.\n..two dots\n\
         \n-- \nprovisio\n",
    )
}

/// `body` is `text` with CRLF line endings. Trailing line ends are not compared: lettre ends the
/// message with a CRLF of its own, and over SMTP adds another before the final `.` line.
fn assert_body(body: &str, text: &str) {
    let expected = text.replace('\n', "\r\n");
    assert_eq!(body.trim_end_matches("\r\n"), expected.trim_end_matches("\r\n"));
    assert!(body.ends_with("\r\n"), "{body:?}");
}

#[tokio::test]
async fn a_message_arrives_over_smtp_with_its_headers_and_body() {
    let server = SmtpServer::start().await;
    let mailer = mailer(&server.url());
    let message = sign_in("Ada Lovelace <ada@customer.example>");
    mailer.send(&message).await.unwrap();

    let received = server.received();
    assert_eq!(received.len(), 1);
    let got = &received[0];
    assert_eq!(got.from, "no-reply@saas.example");
    assert_eq!(got.to, vec!["ada@customer.example".to_string()]);
    assert_eq!(got.authenticated_as, None);
    // The lines "." and "..two dots" went over the wire dot-stuffed and came back intact.
    assert!(got.text().contains("\r\n.\r\n..two dots\r\n"), "{}", got.text());
    let parsed = parse_message(&got.data);
    assert_eq!(parsed.header("From"), Some(FROM));
    assert_eq!(parsed.header("To"), Some("\"Ada Lovelace\" <ada@customer.example>"));
    assert_eq!(parsed.header("Subject"), Some("Your sign-in link"));
    assert_eq!(parsed.header("Auto-Submitted"), Some("auto-generated"));
    assert_eq!(parsed.header("MIME-Version"), Some("1.0"));
    assert_eq!(parsed.header("Content-Type"), Some("text/plain; charset=utf-8"));
    assert!(parsed.header("Date").is_some_and(|d| d.ends_with("+0000")), "{parsed:?}");
    let id = parsed.header("Message-ID").unwrap();
    assert!(id.starts_with('<') && id.ends_with("@saas.example>"), "{id}");
    assert_body(&parsed.body, &message.text);

    let commands = server.commands();
    assert!(commands[0].starts_with("EHLO "), "{commands:?}");
    assert!(commands.contains(&"MAIL FROM:<no-reply@saas.example>".to_string()), "{commands:?}");
    assert!(commands.contains(&"RCPT TO:<ada@customer.example>".to_string()), "{commands:?}");
    assert!(!commands.iter().any(|c| c.starts_with("AUTH")), "{commands:?}");
}

#[tokio::test]
async fn non_ascii_subject_and_body_arrive_intact() {
    let server = SmtpServer::start().await;
    let message = Message::new(
        "émile@customer.example",
        "Connexion à provisio ✓",
        "Bonjour Émile,\nvoici le lien.\n",
    );
    mailer(&server.url()).send(&message).await.unwrap();
    let got = &server.received()[0];
    assert_eq!(got.to, vec!["émile@customer.example".to_string()]);
    let parsed = parse_message(&got.data);
    assert_eq!(decode_header(parsed.header("Subject").unwrap()), "Connexion à provisio ✓");
    assert_body(&parsed.body, &message.text);
}

#[tokio::test]
async fn an_html_alternative_follows_the_plain_text() {
    let server = SmtpServer::start().await;
    let message = sign_in("ada@customer.example")
        .with_html("<p>Sign in: <a href=\"https://saas.example/x\">link</a></p>");
    mailer(&server.url()).send(&message).await.unwrap();
    let raw = server.received()[0].text();
    assert!(raw.contains("Content-Type: multipart/alternative;"), "{raw}");
    let plain = raw.find("Content-Type: text/plain; charset=utf-8").unwrap();
    let html = raw.find("Content-Type: text/html; charset=utf-8").unwrap();
    assert!(plain < html, "{raw}");
}

#[tokio::test]
async fn auth_plain_with_the_password_from_the_environment() {
    let server = SmtpServer::with_credentials("apikey", "s3cret pass").await;
    let mailer = mailer_with_auth(&server.url(), "apikey", "s3cret pass");
    assert!(!mailer.describe().contains("s3cret"), "{}", mailer.describe());
    mailer.send(&sign_in("ada@customer.example")).await.unwrap();
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].authenticated_as.as_deref(), Some("apikey"));
    assert!(server.commands().iter().any(|c| c.starts_with("AUTH PLAIN ")));
}

#[tokio::test]
async fn auth_login_when_that_is_all_the_server_offers() {
    let server = SmtpServer::with(Options {
        credentials: Some(("apikey".into(), "s3cret".into())),
        mechanisms: Some(vec!["LOGIN"]),
    })
    .await;
    mailer_with_auth(&server.url(), "apikey", "s3cret")
        .send(&sign_in("ada@customer.example"))
        .await
        .unwrap();
    assert_eq!(server.received()[0].authenticated_as.as_deref(), Some("apikey"));
    assert!(server.commands().iter().any(|c| c == "AUTH LOGIN"));
}

#[tokio::test]
async fn a_wrong_password_is_a_permanent_refusal_and_nothing_is_sent() {
    let server = SmtpServer::with_credentials("apikey", "right").await;
    let err = mailer_with_auth(&server.url(), "apikey", "wrong")
        .send(&sign_in("ada@customer.example"))
        .await
        .unwrap_err();
    assert!(matches!(err, EmailError::Smtp { .. }), "{err}");
    assert!(err.is_permanent(), "{err}");
    assert!(err.to_string().contains("535"), "{err}");
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn a_server_without_starttls_is_refused_before_any_credentials() {
    // smtp:// without ?tls=none requires STARTTLS, even on loopback; the test server has no TLS.
    let server = SmtpServer::with_credentials("apikey", "s3cret").await;
    let url = format!("smtp://127.0.0.1:{}", server.addr.port());
    let err = mailer_with_auth(&url, "apikey", "s3cret")
        .send(&sign_in("ada@customer.example"))
        .await
        .unwrap_err();
    assert!(matches!(err, EmailError::Smtp { .. }), "{err}");
    assert!(err.to_string().contains("?tls=none"), "{err}");
    let commands = server.commands();
    assert!(
        !commands.iter().any(|c| c.starts_with("AUTH") || c.starts_with("MAIL")),
        "{commands:?}"
    );
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn the_connection_is_pooled_between_messages() {
    let server = SmtpServer::start().await;
    let mailer = mailer(&server.url());
    for to in ["ada@customer.example", "grace@customer.example", "edsger@customer.example"] {
        mailer.send(&sign_in(to)).await.unwrap();
        // lettre parks the connection from a task of its own once the send is done.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.received().len(), 3);
    assert_eq!(server.connections(), 1);
}

/// lettre's pool spawns a task when dropped; a `Mailer` dropped after the runtime (a server's state
/// at shutdown) must not panic for want of one.
#[test]
fn a_mailer_outliving_its_runtime_drops_quietly() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mailer = runtime.block_on(async {
        let server = SmtpServer::start().await;
        let mailer = mailer(&server.url());
        mailer.send(&sign_in("ada@customer.example")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(server.received().len(), 1);
        mailer
    });
    drop(runtime);
    drop(mailer);
}

#[tokio::test]
async fn a_bad_recipient_is_refused_before_connecting() {
    let server = SmtpServer::start().await;
    let err = mailer(&server.url())
        .send(&sign_in("ada@customer.example, eve@else.example"))
        .await
        .unwrap_err();
    assert!(matches!(err, EmailError::Recipient(_)), "{err}");
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn an_unreachable_server_fails_within_the_timeout() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mailer = mailer(&format!("smtp://127.0.0.1:{port}?tls=none"));
    let started = Instant::now();
    let err = mailer.send(&sign_in("ada@customer.example")).await.unwrap_err();
    assert!(started.elapsed() < SEND_TIMEOUT, "{:?}", started.elapsed());
    assert!(matches!(err, EmailError::Smtp { .. }), "{err}");
    assert!(!err.is_permanent(), "{err}");
    assert!(err.to_string().contains(&format!("127.0.0.1:{port}")), "{err}");
}

#[tokio::test]
async fn a_silent_server_times_out() {
    // Accepts the connection and never greets.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let timeout = Duration::from_millis(400);
    let mailer = mailer(&format!("smtp://127.0.0.1:{port}?tls=none")).with_timeout(timeout);
    let started = Instant::now();
    let err = mailer.send(&sign_in("ada@customer.example")).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed >= timeout && elapsed < timeout * 5, "{elapsed:?}");
    // lettre's own per-step limit and the overall one are the same: either may fire first.
    assert!(
        matches!(err, EmailError::Timeout { .. }) || err.to_string().contains("timed out"),
        "{err}"
    );
    assert!(!err.is_permanent());
    holder.abort();
}

#[tokio::test]
async fn the_outbox_writes_one_private_parseable_eml_per_message() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("outbox").join("nested");
    let mailer =
        EmailSpec { outbox_dir: Some(dir.clone()), from: FROM.into(), ..EmailSpec::default() }
            .validate(&no_env)
            .unwrap();
    assert!(mailer.describe().starts_with(&format!("OUTBOX {}/ (development", dir.display())));
    assert!(!dir.exists(), "validation touches no file");

    let first = sign_in("Ada <ada@customer.example>");
    mailer.send(&first).await.unwrap();
    mailer.send(&sign_in("grace@customer.example")).await.unwrap();

    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    for file in &files {
        let name = file.file_name().unwrap().to_str().unwrap();
        // 20260101T120000.123456Z-0123456789ab.eml
        let (stamp, suffix) = name.strip_suffix(".eml").unwrap().split_once('-').unwrap();
        assert_eq!(stamp.len(), "20260101T120000.123456Z".len(), "{name}");
        assert!(stamp.ends_with('Z') && stamp.as_bytes()[8] == b'T', "{name}");
        assert!(suffix.len() == 12 && suffix.bytes().all(|b| b.is_ascii_hexdigit()), "{name}");
        assert_private(file, 0o600);
    }
    assert_private(&dir, 0o700);

    let raw = std::fs::read(&files[0]).unwrap();
    let parsed = parse_message(&raw);
    let to = parsed.header("To").unwrap();
    assert!(to == "Ada <ada@customer.example>" || to == "grace@customer.example", "{to}");
    let first_parsed = files
        .iter()
        .map(|f| parse_message(&std::fs::read(f).unwrap()))
        .find(|p| p.header("To") == Some("Ada <ada@customer.example>"))
        .unwrap();
    assert_eq!(first_parsed.header("From"), Some(FROM));
    assert_eq!(first_parsed.header("Subject"), Some("Your sign-in link"));
    assert_body(&first_parsed.body, &first.text);
    assert_eq!(parse_mailbox(first_parsed.header("From").unwrap()).unwrap().to_string(), FROM);
}

#[tokio::test]
async fn an_outbox_that_cannot_be_created_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-folder");
    std::fs::write(&file, "x").unwrap();
    let err = Mailer::outbox(file.join("outbox"))
        .send(&sign_in("ada@customer.example"))
        .await
        .unwrap_err();
    assert!(matches!(err, EmailError::Outbox { .. }), "{err}");
}

#[cfg(unix)]
fn assert_private(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let actual = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(actual, mode, "{}", path.display());
}

#[cfg(not(unix))]
fn assert_private(_: &Path, _: u32) {}

//! `[email]`: how provisio sends mail (first user: the one-time sign-in link of the consent leg).
//!
//! A [`Mailer`] either speaks SMTP to a relay (lettre, rustls with ring, Mozilla roots from
//! `webpki-roots`, pooled connections) or writes each message as an `.eml` file into an outbox
//! folder, for development. Both are validated at start from an [`EmailSpec`]; every refusal names
//! the key, as the other sections do.
//!
//! # `smtp_url`
//!
//! | URL                                | transport                                   | default port |
//! |------------------------------------|---------------------------------------------|--------------|
//! | `smtps://host[:port]`              | implicit TLS from the first byte (RFC 8314) | 465          |
//! | `smtp://host[:port]`               | STARTTLS, **required**                      | 587          |
//! | `smtp://host[:port]?tls=starttls`  | the same, said explicitly                   | 587          |
//! | `smtp://host[:port]?tls=none`      | plain text, no TLS at all                   | 25           |
//!
//! * With STARTTLS a server that does not offer it is refused (the send fails; nothing, least of
//!   all a password, goes out in plain text). There is no "opportunistic" mode.
//! * TLS certificates are verified for `host` against the Mozilla roots; there is no switch to
//!   skip verification.
//! * `?tls=none` is the only way to plain text, and it is never implied, not even for a loopback
//!   host. It is for a local relay or a development catcher (Mailpit, MailHog:
//!   `smtp://localhost:1025?tls=none`). With credentials (`smtp_username`) it is refused unless
//!   the host is loopback (`localhost`, `127.0.0.0/8`, `::1`): a password never crosses a network
//!   in plain text.
//! * The URL carries no user or password (use `smtp_username` and `smtp_password_env`), no path,
//!   no fragment and no query parameter other than `tls`; `smtps://` takes no `tls` parameter.
//!
//! # The outbox
//!
//! `outbox_dir` instead of `smtp_url` (exactly one of the two): each message is written, not sent,
//! as `<UTC time>-<random>.eml` (RFC 5322, CRLF line endings), file mode `0600` on unix, the
//! folder created (`0700`) if missing. For development and tests only: the messages hold sign-in
//! links.

use std::{
    fmt,
    net::IpAddr,
    path::{Path, PathBuf},
    sync::OnceLock,
    time::Duration,
};

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Tokio1Executor,
    message::{
        MultiPart, SinglePart,
        header::{HeaderName, HeaderValue},
    },
    transport::smtp::{
        authentication::{Credentials, Mechanism},
        client::{Tls, TlsParameters},
    },
};
use reqwest::Url;
use serde::Deserialize;

pub use crate::connector::SetupError;
/// A parsed `Name <user@domain>` or `user@domain`.
pub use lettre::message::Mailbox;

/// One attempt to hand a message over (connect, TLS, AUTH, the whole SMTP dialogue; or the write
/// of the outbox file), unless [`Mailer::with_timeout`] says otherwise.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

const SECTION: &str = "email";

/// RFC 3834: a message sent by a program, which auto-responders should not answer.
const AUTO_SUBMITTED: HeaderName = HeaderName::new_from_ascii_str("Auto-Submitted");

/// `[email]` as written in the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSpec {
    /// `smtps://host[:port]`, `smtp://host[:port]` (STARTTLS) or `smtp://host[:port]?tls=none`;
    /// see the module documentation. Exactly one of `smtp_url` and `outbox_dir`.
    pub smtp_url: Option<String>,
    /// Development: write each message into this folder instead of sending it.
    pub outbox_dir: Option<PathBuf>,
    /// The SMTP AUTH user; set together with `smtp_password_env`.
    pub smtp_username: Option<String>,
    /// The environment variable holding the SMTP password (never the password itself).
    pub smtp_password_env: Option<String>,
    /// The sender: `provisio <no-reply@saas.example>` or `no-reply@saas.example`.
    pub from: String,
}

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// `smtps://`: TLS from the first byte.
    ImplicitTls,
    /// `smtp://`: plain connection upgraded with STARTTLS, refused if the server does not offer it.
    StartTls,
    /// `smtp://…?tls=none`: plain text throughout.
    None,
}

/// `smtp_url` as validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpEndpoint {
    /// The host to connect to and to verify the certificate for (an IPv6 address without brackets).
    pub host: String,
    pub port: u16,
    pub security: Security,
}

impl SmtpEndpoint {
    /// Parses and checks `smtp_url` (see the module documentation); the message says what is wrong.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = Url::parse(raw.trim()).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "{raw:?} must not carry credentials: use smtp_username and smtp_password_env"
            ));
        }
        if matches!(url.scheme(), "smtp" | "smtps") && url.host_str().is_none_or(str::is_empty) {
            return Err(format!("{raw:?} has no valid host: write {}://host[:port]", url.scheme()));
        }
        if !matches!(url.path(), "" | "/") {
            return Err(format!("{raw:?} must not have a path: write scheme://host[:port]"));
        }
        if url.fragment().is_some() {
            return Err(format!("{raw:?} must not have a fragment"));
        }
        let mut tls = None;
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "tls" if tls.is_none() => tls = Some(value.into_owned()),
                "tls" => return Err(format!("{raw:?} has more than one tls parameter")),
                other => {
                    return Err(format!(
                        "{raw:?} has an unknown query parameter {other:?} (only tls is known)"
                    ));
                }
            }
        }
        let (security, default_port) = match (url.scheme(), tls.as_deref()) {
            ("smtps", None) => (Security::ImplicitTls, 465),
            ("smtps", Some(_)) => {
                return Err(format!(
                    "{raw:?}: smtps:// is always implicit TLS and takes no tls parameter"
                ));
            }
            ("smtp", None | Some("starttls")) => (Security::StartTls, 587),
            ("smtp", Some("none")) => (Security::None, 25),
            ("smtp", Some(other)) => {
                return Err(format!(
                    "{raw:?} has tls={other:?}: write tls=starttls (the default) or tls=none"
                ));
            }
            (other, _) => {
                return Err(format!(
                    "{raw:?} has scheme {other:?}: use smtps:// (implicit TLS) or smtp:// (STARTTLS)"
                ));
            }
        };
        let host = host_of(&url).ok_or_else(|| format!("{raw:?} has no valid host"))?;
        let port = match url.port() {
            Some(0) => return Err(format!("{raw:?} has port 0")),
            Some(port) => port,
            None => default_port,
        };
        Ok(Self { host, port, security })
    }

    /// `localhost`, `127.0.0.0/8` or `::1`.
    pub fn is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }

    /// The URL in its canonical form (explicit port; `?tls=none` kept, `?tls=starttls` dropped).
    pub fn url(&self) -> String {
        let host =
            if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        match self.security {
            Security::ImplicitTls => format!("smtps://{host}:{}", self.port),
            Security::StartTls => format!("smtp://{host}:{}", self.port),
            Security::None => format!("smtp://{host}:{}?tls=none", self.port),
        }
    }
}

/// The host of an `smtp(s)://` URL: a DNS name or an IP address, lowercased.
///
/// `smtp` is not a scheme the URL standard knows, so its host is "opaque": checked here.
fn host_of(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().ok().map(|ip| ip.to_string());
    }
    let name_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    name_ok.then(|| host.to_ascii_lowercase())
}

/// Parses a mailbox (`Name <user@domain>` or `user@domain`), the whole string and only one.
pub fn parse_mailbox(raw: &str) -> Result<Mailbox, String> {
    let trimmed = raw.trim();
    let refuse = || format!("{raw:?} is not a mailbox: write Name <user@domain> or user@domain");
    if trimmed.is_empty() || trimmed.chars().any(char::is_control) {
        return Err(refuse());
    }
    let mailbox: Mailbox = trimmed.parse().map_err(|_| refuse())?;
    // lettre's parser stops at the end of the first mailbox and ignores what follows
    // ("a@b.example, c@d.example", "a@b.example junk"): accept only what reads back the same.
    let again: Mailbox = mailbox.to_string().parse().map_err(|_| refuse())?;
    let email: &str = mailbox.email.as_ref();
    let whole = match &mailbox.name {
        None => trimmed == email || trimmed == format!("<{email}>"),
        Some(_) => trimmed.ends_with(&format!("<{email}>")),
    };
    if again != mailbox || !whole {
        return Err(refuse());
    }
    Ok(mailbox)
}

impl EmailSpec {
    /// Validates the section; `env` reads an environment variable (the process's, or a test's).
    /// Touches neither the network nor the file system.
    pub fn validate(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Mailer, SetupError> {
        let fail = |key, message: String| SetupError { section: SECTION, key, message };
        let from = parse_mailbox(&self.from).map_err(|m| fail("from", m))?;
        match (&self.smtp_url, &self.outbox_dir) {
            (None, None) => Err(fail(
                "smtp_url",
                "is missing: set smtp_url to send mail, or outbox_dir to write it into a folder \
                 (development)"
                    .into(),
            )),
            (Some(_), Some(_)) => {
                Err(fail("outbox_dir", "set smtp_url or outbox_dir, not both".into()))
            }
            (None, Some(dir)) => {
                if self.smtp_username.is_some() {
                    return Err(fail("smtp_username", "applies only with smtp_url".into()));
                }
                if self.smtp_password_env.is_some() {
                    return Err(fail("smtp_password_env", "applies only with smtp_url".into()));
                }
                if dir.as_os_str().is_empty() {
                    return Err(fail("outbox_dir", "must name a folder".into()));
                }
                Ok(Mailer::outbox(dir.clone()).with_from(from))
            }
            (Some(raw), None) => {
                let endpoint = SmtpEndpoint::parse(raw).map_err(|m| fail("smtp_url", m))?;
                let credentials = self.credentials(env)?;
                if credentials.is_some()
                    && endpoint.security == Security::None
                    && !endpoint.is_loopback()
                {
                    return Err(fail(
                        "smtp_url",
                        format!(
                            "{raw:?} is plain text (tls=none) to a host that is not loopback: \
                             that would send the SMTP password in clear; use smtps:// or \
                             smtp:// (STARTTLS)"
                        ),
                    ));
                }
                let tls = match endpoint.security {
                    Security::None => Tls::None,
                    Security::StartTls | Security::ImplicitTls => {
                        let parameters = TlsParameters::new(endpoint.host.clone())
                            .map_err(|e| fail("smtp_url", format!("TLS setup: {e}")))?;
                        if endpoint.security == Security::StartTls {
                            Tls::Required(parameters)
                        } else {
                            Tls::Wrapper(parameters)
                        }
                    }
                };
                Ok(Mailer {
                    from,
                    timeout: SEND_TIMEOUT,
                    transport: Transport::Smtp(Box::new(Smtp {
                        endpoint,
                        tls,
                        credentials,
                        pool: OnceLock::new(),
                    })),
                })
            }
        }
    }

    fn credentials(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<SmtpCredentials>, SetupError> {
        let fail = |key, message: String| SetupError { section: SECTION, key, message };
        match (&self.smtp_username, &self.smtp_password_env) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(fail(
                "smtp_password_env",
                "smtp_username is set: name the environment variable holding the SMTP password"
                    .into(),
            )),
            (None, Some(_)) => Err(fail(
                "smtp_username",
                "smtp_password_env is set: name the SMTP user too".into(),
            )),
            (Some(username), Some(var)) => {
                if username.trim().is_empty() || username.chars().any(char::is_control) {
                    return Err(fail(
                        "smtp_username",
                        "must be a non-empty name without control characters".into(),
                    ));
                }
                if var.trim().is_empty() {
                    return Err(fail(
                        "smtp_password_env",
                        "must name an environment variable".into(),
                    ));
                }
                let password = env(var).ok_or_else(|| {
                    fail("smtp_password_env", format!("environment variable {var} is not set"))
                })?;
                if password.is_empty() {
                    return Err(fail(
                        "smtp_password_env",
                        format!("environment variable {var} is empty"),
                    ));
                }
                Ok(Some(SmtpCredentials {
                    username: username.clone(),
                    password_env: var.clone(),
                    password,
                }))
            }
        }
    }
}

/// A message to send: one recipient, a subject, a plain-text body and optionally an HTML
/// alternative of the same content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `user@domain` or `Name <user@domain>`.
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

impl Message {
    pub fn new(to: impl Into<String>, subject: impl Into<String>, text: impl Into<String>) -> Self {
        Self { to: to.into(), subject: subject.into(), text: text.into(), html: None }
    }

    /// Adds an HTML alternative (`multipart/alternative`, the plain text first).
    pub fn with_html(mut self, html: impl Into<String>) -> Self {
        self.html = Some(html.into());
        self
    }
}

/// A message not handed over.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("recipient {0:?} is not a mailbox")]
    Recipient(String),
    #[error("the message could not be built: {0}")]
    Build(String),
    /// The server refused or the conversation failed; `permanent` for a 5xx answer (retrying the
    /// same message will not help).
    #[error("SMTP {server}: {message}")]
    Smtp { server: String, message: String, permanent: bool },
    #[error("{target}: not done within {after:?}")]
    Timeout { target: String, after: Duration },
    #[error("outbox {path}: {source}")]
    Outbox { path: PathBuf, source: std::io::Error },
}

impl EmailError {
    /// A 5xx answer from the SMTP server, or a message that cannot be built: retrying is useless.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Recipient(_) | Self::Build(_) => true,
            Self::Smtp { permanent, .. } => *permanent,
            Self::Timeout { .. } | Self::Outbox { .. } => false,
        }
    }
}

/// Sends (or, in development, files) messages. Build it with [`EmailSpec::validate`] or
/// [`Mailer::outbox`]; share it behind an `Arc`.
pub struct Mailer {
    from: Mailbox,
    timeout: Duration,
    transport: Transport,
}

enum Transport {
    Smtp(Box<Smtp>),
    Outbox(PathBuf),
}

struct Smtp {
    endpoint: SmtpEndpoint,
    tls: Tls,
    credentials: Option<SmtpCredentials>,
    /// lettre's pooled transport, built on the first send: building it spawns the pool's cleanup
    /// task, which needs the tokio runtime that validation may run before.
    pool: OnceLock<AsyncSmtpTransport<Tokio1Executor>>,
}

struct SmtpCredentials {
    username: String,
    password_env: String,
    password: String,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // describe() never holds the password.
        f.debug_tuple("Mailer").field(&self.describe()).finish()
    }
}

impl Drop for Mailer {
    fn drop(&mut self) {
        // lettre's pool spawns a tokio task when it is dropped, which panics without a runtime
        // (a Mailer outliving the runtime at shutdown): then leave the idle connections to the
        // process's exit instead.
        if let Transport::Smtp(smtp) = &mut self.transport
            && let Some(pool) = smtp.pool.take()
            && tokio::runtime::Handle::try_current().is_err()
        {
            std::mem::forget(pool);
        }
    }
}

impl Mailer {
    /// Development: writes each message into `dir` (created if missing) instead of sending it. The
    /// sender is `provisio <provisio@localhost>` unless [`Mailer::with_from`] says otherwise.
    pub fn outbox(dir: impl Into<PathBuf>) -> Self {
        let from = Mailbox::new(
            Some("provisio".into()),
            lettre::Address::new_dangerous("provisio", "localhost"),
        );
        Self { from, timeout: SEND_TIMEOUT, transport: Transport::Outbox(dir.into()) }
    }

    /// The `From` of every message.
    pub fn with_from(mut self, from: Mailbox) -> Self {
        self.from = from;
        self
    }

    /// How long one send may take (default [`SEND_TIMEOUT`]); also lettre's limit on each network
    /// step.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn from(&self) -> &Mailbox {
        &self.from
    }

    /// The outbox folder, when messages are written rather than sent.
    pub fn outbox_dir(&self) -> Option<&Path> {
        match &self.transport {
            Transport::Outbox(dir) => Some(dir),
            Transport::Smtp(_) => None,
        }
    }

    /// One line for the start banner; never holds the password.
    pub fn describe(&self) -> String {
        match &self.transport {
            Transport::Smtp(smtp) => {
                let security = match smtp.endpoint.security {
                    Security::ImplicitTls => "implicit TLS",
                    Security::StartTls => "STARTTLS required",
                    Security::None => "plain text, no TLS",
                };
                let auth = match &smtp.credentials {
                    Some(c) => {
                        format!(", AUTH as {} (password from ${})", c.username, c.password_env)
                    }
                    None => String::new(),
                };
                format!("SMTP {} ({security}) from {}{auth}", smtp.endpoint.url(), self.from)
            }
            Transport::Outbox(dir) => {
                let mut shown = dir.display().to_string();
                if !shown.ends_with(std::path::MAIN_SEPARATOR) {
                    shown.push(std::path::MAIN_SEPARATOR);
                }
                format!(
                    "OUTBOX {shown} (development: messages are written as files, not sent) from {}",
                    self.from
                )
            }
        }
    }

    /// Hands `message` over: to the SMTP server (accepted for delivery when this returns `Ok`), or
    /// into the outbox folder. At most the mailer's timeout.
    pub async fn send(&self, message: &Message) -> Result<(), EmailError> {
        let built = self.build(message)?;
        let target = match &self.transport {
            Transport::Smtp(smtp) => format!("SMTP {}", smtp.endpoint.url()),
            Transport::Outbox(dir) => format!("outbox {}", dir.display()),
        };
        let attempt = async {
            match &self.transport {
                Transport::Smtp(smtp) => smtp.send(built, self.timeout).await,
                Transport::Outbox(dir) => write_to_outbox(dir.clone(), built.formatted()).await,
            }
        };
        tokio::time::timeout(self.timeout, attempt)
            .await
            .map_err(|_| EmailError::Timeout { target, after: self.timeout })?
    }

    /// The RFC 5322 message: `From`, `To`, `Subject`, `Date`, a `Message-ID` on the sender's
    /// domain, `Auto-Submitted: auto-generated`, and the body.
    fn build(&self, message: &Message) -> Result<lettre::Message, EmailError> {
        let to =
            parse_mailbox(&message.to).map_err(|_| EmailError::Recipient(message.to.clone()))?;
        let message_id = format!("<{}@{}>", random_hex(16), self.from.email.domain());
        let builder = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.clone())
            .date_now()
            .message_id(Some(message_id))
            .raw_header(HeaderValue::new(AUTO_SUBMITTED, "auto-generated".into()));
        let built = match &message.html {
            None => builder.singlepart(SinglePart::plain(message.text.clone())),
            Some(html) => builder
                .multipart(MultiPart::alternative_plain_html(message.text.clone(), html.clone())),
        };
        built.map_err(|e| EmailError::Build(e.to_string()))
    }
}

impl Smtp {
    fn transport(&self, timeout: Duration) -> &AsyncSmtpTransport<Tokio1Executor> {
        self.pool.get_or_init(|| {
            let mut builder =
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(self.endpoint.host.clone())
                    .port(self.endpoint.port)
                    .tls(self.tls.clone())
                    .timeout(Some(timeout));
            if let Some(c) = &self.credentials {
                builder = builder
                    .credentials(Credentials::new(c.username.clone(), c.password.clone()))
                    .authentication(vec![Mechanism::Plain, Mechanism::Login]);
            }
            builder.build()
        })
    }

    async fn send(&self, message: lettre::Message, timeout: Duration) -> Result<(), EmailError> {
        self.transport(timeout).send(message).await.map(|_| ()).map_err(|e| {
            let mut message = e.to_string();
            if self.endpoint.security == Security::StartTls && message.contains("STARTTLS") {
                message.push_str(
                    " (smtp:// requires STARTTLS; a plain-text development server needs ?tls=none)",
                );
            }
            EmailError::Smtp { server: self.endpoint.url(), message, permanent: e.is_permanent() }
        })
    }
}

/// Writes `bytes` as a new `.eml` file in `dir`: under a temporary name first, renamed when
/// complete, so a reader never sees half a message.
async fn write_to_outbox(dir: PathBuf, bytes: Vec<u8>) -> Result<(), EmailError> {
    let stamp = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]T[hour][minute][second].[subsecond digits:6]Z"
        ))
        .unwrap_or_else(|_| "message".into());
    let name = format!("{stamp}-{}.eml", random_hex(6));
    let path = dir.join(&name);
    let error_path = path.clone();
    let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write;
        create_private_dir(&dir)?;
        let partial = dir.join(format!(".{name}.partial"));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let result = options.open(&partial).and_then(|mut file| {
            file.write_all(&bytes)?;
            file.sync_all()
        });
        let result = result.and_then(|()| std::fs::rename(&partial, &path));
        if result.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        result
    })
    .await;
    match written {
        Ok(result) => result.map_err(|source| EmailError::Outbox { path: error_path, source }),
        Err(join) => Err(EmailError::Outbox {
            path: error_path,
            source: std::io::Error::other(join.to_string()),
        }),
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if getrandom::fill(&mut buf).is_err() {
        // Uniqueness, not secrecy: the clock is enough when the system's generator fails.
        let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (nanos >> ((i % 16) * 8)) as u8;
        }
    }
    hex::encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(var: &str) -> Option<String> {
        match var {
            "SMTP_PASSWORD" => Some("s3cret-pass".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn spec(url: &str) -> EmailSpec {
        EmailSpec {
            smtp_url: Some(url.into()),
            from: "provisio <no-reply@saas.example>".into(),
            ..EmailSpec::default()
        }
    }

    fn with_auth(url: &str) -> EmailSpec {
        EmailSpec {
            smtp_username: Some("apikey".into()),
            smtp_password_env: Some("SMTP_PASSWORD".into()),
            ..spec(url)
        }
    }

    fn refused(spec: &EmailSpec) -> SetupError {
        match spec.validate(&env) {
            Ok(mailer) => panic!("accepted: {}", mailer.describe()),
            Err(e) => e,
        }
    }

    fn endpoint(raw: &str) -> SmtpEndpoint {
        SmtpEndpoint::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"))
    }

    #[test]
    fn schemes_pick_the_security_and_the_default_port() {
        let cases = [
            ("smtps://mail.example", Security::ImplicitTls, 465),
            ("smtps://mail.example:2465", Security::ImplicitTls, 2465),
            ("smtp://mail.example", Security::StartTls, 587),
            ("smtp://mail.example:2525", Security::StartTls, 2525),
            ("smtp://mail.example?tls=starttls", Security::StartTls, 587),
            ("smtp://mail.example/", Security::StartTls, 587),
            ("smtp://mail.example?tls=none", Security::None, 25),
            ("smtp://127.0.0.1:1025?tls=none", Security::None, 1025),
            ("  smtp://Mail.Example:25  ", Security::StartTls, 25),
        ];
        for (raw, security, port) in cases {
            let e = endpoint(raw);
            assert_eq!((e.security, e.port), (security, port), "{raw}");
        }
        assert_eq!(endpoint("smtp://Mail.Example:25").host, "mail.example");
    }

    #[test]
    fn hosts_and_their_canonical_urls() {
        assert_eq!(endpoint("smtps://mail.example").url(), "smtps://mail.example:465");
        assert_eq!(endpoint("smtp://mail.example?tls=starttls").url(), "smtp://mail.example:587");
        assert_eq!(
            endpoint("smtp://localhost:1025?tls=none").url(),
            "smtp://localhost:1025?tls=none"
        );
        let v6 = endpoint("smtp://[::1]:1025?tls=none");
        assert_eq!(v6.host, "::1");
        assert_eq!(v6.url(), "smtp://[::1]:1025?tls=none");
        assert_eq!(endpoint("smtps://192.0.2.7").host, "192.0.2.7");
    }

    #[test]
    fn loopback_is_localhost_127_8_and_ipv6_one() {
        for raw in [
            "smtp://localhost",
            "smtp://LOCALHOST",
            "smtp://127.0.0.1",
            "smtp://127.8.9.10",
            "smtp://[::1]",
        ] {
            assert!(endpoint(raw).is_loopback(), "{raw}");
        }
        for raw in [
            "smtp://mail.example",
            "smtp://10.0.0.1",
            "smtp://[2001:db8::1]",
            "smtp://localhost.example",
            "smtp://mailpit",
        ] {
            assert!(!endpoint(raw).is_loopback(), "{raw}");
        }
    }

    #[test]
    fn malformed_urls_are_refused_with_a_reason() {
        let cases = [
            ("mail.example:587", "scheme"),
            ("https://mail.example", "scheme \"https\""),
            ("smtp://user:pw@mail.example", "must not carry credentials"),
            ("smtp://user@mail.example", "must not carry credentials"),
            ("smtp://mail.example/ehlo-name", "must not have a path"),
            ("smtp://mail.example#x", "fragment"),
            ("smtp://mail.example?tls=opportunistic", "tls=\"opportunistic\""),
            ("smtp://mail.example?tls=required", "tls=\"required\""),
            ("smtp://mail.example?tls=none&tls=none", "more than one"),
            ("smtp://mail.example?timeout=3", "unknown query parameter \"timeout\""),
            ("smtps://mail.example?tls=none", "takes no tls parameter"),
            ("smtp://mail.example:0", "port 0"),
            ("smtp://mail.example:99999", "not a URL"),
            ("smtp://", "no valid host"),
            ("smtp:mail.example", "no valid host"),
            ("smtp://mail%20x.example", "no valid host"),
            ("smtp://-mail.example", "no valid host"),
            ("smtp://mail..example", "no valid host"),
            ("", "not a URL"),
        ];
        for (raw, needle) in cases {
            match SmtpEndpoint::parse(raw) {
                Ok(e) => panic!("{raw:?} accepted as {e:?}"),
                Err(message) => assert!(message.contains(needle), "{raw:?}: {message}"),
            }
        }
    }

    #[test]
    fn errors_name_the_section_and_the_key() {
        let e = refused(&spec("smtp://mail.example?tls=bogus"));
        assert_eq!((e.section, e.key), ("email", "smtp_url"));
        assert!(e.to_string().starts_with("[email] smtp_url: "), "{e}");
    }

    #[test]
    fn credentials_never_go_in_clear_to_a_remote_host() {
        let e = refused(&with_auth("smtp://mail.example?tls=none"));
        assert_eq!(e.key, "smtp_url");
        assert!(e.message.contains("password in clear"), "{e}");
        let e = refused(&with_auth("smtp://10.1.2.3:1025?tls=none"));
        assert_eq!(e.key, "smtp_url");
        // Loopback plain text may carry them; TLS always may.
        for ok in [
            "smtp://127.0.0.1:1025?tls=none",
            "smtp://localhost:1025?tls=none",
            "smtp://[::1]:1025?tls=none",
            "smtp://mail.example",
            "smtps://mail.example",
        ] {
            assert!(with_auth(ok).validate(&env).is_ok(), "{ok}");
        }
        // Plain text without credentials, to any host, when asked for explicitly.
        assert!(spec("smtp://mailpit:1025?tls=none").validate(&env).is_ok());
    }

    #[test]
    fn username_and_password_env_come_together() {
        let only_user =
            EmailSpec { smtp_username: Some("apikey".into()), ..spec("smtps://mail.example") };
        assert_eq!(refused(&only_user).key, "smtp_password_env");
        let only_env = EmailSpec {
            smtp_password_env: Some("SMTP_PASSWORD".into()),
            ..spec("smtps://mail.example")
        };
        assert_eq!(refused(&only_env).key, "smtp_username");
        let blank_user =
            EmailSpec { smtp_username: Some(" ".into()), ..with_auth("smtps://mail.example") };
        assert_eq!(refused(&blank_user).key, "smtp_username");
        let unset = EmailSpec {
            smtp_password_env: Some("NOPE".into()),
            ..with_auth("smtps://mail.example")
        };
        let e = refused(&unset);
        assert_eq!(e.key, "smtp_password_env");
        assert!(e.message.contains("NOPE is not set"), "{e}");
        let empty = EmailSpec {
            smtp_password_env: Some("EMPTY".into()),
            ..with_auth("smtps://mail.example")
        };
        assert!(refused(&empty).message.contains("EMPTY is empty"));
        let blank_env =
            EmailSpec { smtp_password_env: Some("".into()), ..with_auth("smtps://mail.example") };
        assert_eq!(refused(&blank_env).key, "smtp_password_env");
    }

    #[test]
    fn exactly_one_of_smtp_url_and_outbox_dir() {
        let neither = EmailSpec { smtp_url: None, ..spec("") };
        assert_eq!(refused(&neither).key, "smtp_url");
        let both =
            EmailSpec { outbox_dir: Some("./outbox".into()), ..spec("smtps://mail.example") };
        assert_eq!(refused(&both).key, "outbox_dir");
        let outbox = EmailSpec { smtp_url: None, outbox_dir: Some("./outbox".into()), ..spec("") };
        let mailer = outbox.validate(&env).unwrap();
        assert_eq!(mailer.outbox_dir(), Some(Path::new("./outbox")));
        let with_user = EmailSpec { smtp_username: Some("apikey".into()), ..outbox.clone() };
        assert_eq!(refused(&with_user).key, "smtp_username");
        let with_env =
            EmailSpec { smtp_password_env: Some("SMTP_PASSWORD".into()), ..outbox.clone() };
        assert_eq!(refused(&with_env).key, "smtp_password_env");
        let empty = EmailSpec { outbox_dir: Some("".into()), ..outbox };
        assert_eq!(refused(&empty).key, "outbox_dir");
    }

    #[test]
    fn from_accepts_one_mailbox_and_nothing_else() {
        for ok in [
            "provisio <no-reply@saas.example>",
            "no-reply@saas.example",
            "<no-reply@saas.example>",
            "\"Provisio, the provider\" <no-reply@saas.example>",
            "Provisio Émile <no-reply@saas.example>",
            "  no-reply@saas.example  ",
            "dev@localhost",
        ] {
            assert!(parse_mailbox(ok).is_ok(), "{ok}");
        }
        let parsed = parse_mailbox("provisio <no-reply@saas.example>").unwrap();
        assert_eq!(parsed.name.as_deref(), Some("provisio"));
        assert_eq!(parsed.email.to_string(), "no-reply@saas.example");
        for bad in [
            "",
            "   ",
            "provisio",
            "no-reply",
            "no-reply@",
            "@saas.example",
            "no reply@saas.example",
            "no-reply@saas..example",
            "a@saas.example, b@saas.example",
            "a@saas.example b@saas.example",
            "provisio <no-reply@saas.example> trailing",
            "provisio <no-reply@saas.example",
            "no-reply@saas.example\r\nBcc: victim@else.example",
            "provisio\n <no-reply@saas.example>",
        ] {
            assert!(parse_mailbox(bad).is_err(), "{bad:?} accepted as {:?}", parse_mailbox(bad));
        }
        let e = refused(&EmailSpec { from: "provisio".into(), ..spec("smtps://mail.example") });
        assert_eq!((e.section, e.key), ("email", "from"));
        assert!(e.message.contains("is not a mailbox"), "{e}");
    }

    #[test]
    fn the_spec_reads_strictly_from_toml() {
        let spec: EmailSpec = toml::from_str(
            r#"
            smtp_url = "smtps://mail.example"
            smtp_username = "apikey"
            smtp_password_env = "SMTP_PASSWORD"
            from = "provisio <no-reply@saas.example>"
            "#,
        )
        .unwrap();
        assert!(spec.validate(&env).is_ok());
        let unknown = toml::from_str::<EmailSpec>(
            "smtp_url = \"smtps://mail.example\"\nfrom = \"a@b.example\"\nsmtp_password = \"x\"\n",
        );
        assert!(unknown.unwrap_err().to_string().contains("smtp_password"));
        assert!(toml::from_str::<EmailSpec>("smtp_url = \"smtps://mail.example\"\n").is_err());
    }

    #[test]
    fn describe_never_shows_the_password() {
        let mailer = with_auth("smtps://mail.example").validate(&env).unwrap();
        let line = mailer.describe();
        assert_eq!(
            line,
            "SMTP smtps://mail.example:465 (implicit TLS) from provisio <no-reply@saas.example>, \
             AUTH as apikey (password from $SMTP_PASSWORD)"
        );
        assert!(!line.contains("s3cret-pass"));
        assert!(!format!("{mailer:?}").contains("s3cret-pass"));
        let starttls = spec("smtp://mail.example").validate(&env).unwrap();
        assert_eq!(
            starttls.describe(),
            "SMTP smtp://mail.example:587 (STARTTLS required) from provisio <no-reply@saas.example>"
        );
        let plain = spec("smtp://localhost:1025?tls=none").validate(&env).unwrap();
        assert!(plain.describe().contains("smtp://localhost:1025?tls=none (plain text, no TLS)"));
        let outbox = Mailer::outbox("./outbox");
        assert_eq!(
            outbox.describe(),
            "OUTBOX ./outbox/ (development: messages are written as files, not sent) \
             from provisio <provisio@localhost>"
        );
    }

    #[test]
    fn built_messages_carry_the_headers_and_refuse_bad_recipients() {
        let mailer = spec("smtps://mail.example").validate(&env).unwrap();
        let message = Message::new("Ada <ada@customer.example>", "Sign in", "Hello\nworld");
        let raw = String::from_utf8(mailer.build(&message).unwrap().formatted()).unwrap();
        for header in [
            "From: provisio <no-reply@saas.example>\r\n",
            "To: Ada <ada@customer.example>\r\n",
            "Subject: Sign in\r\n",
            "Auto-Submitted: auto-generated\r\n",
            "@saas.example>\r\n",
            "Date: ",
            "Content-Type: text/plain; charset=utf-8\r\n",
        ] {
            assert!(raw.contains(header), "{header:?} missing in:\n{raw}");
        }
        assert!(raw.ends_with("\r\n\r\nHello\r\nworld\r\n"), "{raw}");
        for bad in [
            "",
            "ada",
            "ada@customer.example, eve@else.example",
            "ada@customer.example\r\nBcc: eve@else.example",
        ] {
            let e = mailer.build(&Message::new(bad, "s", "t")).unwrap_err();
            assert!(matches!(e, EmailError::Recipient(_)), "{bad:?}: {e}");
            assert!(e.is_permanent());
        }
    }

    #[test]
    fn a_subject_cannot_inject_headers() {
        let mailer = Mailer::outbox("unused");
        let message = Message::new("ada@customer.example", "Hi\r\nBcc: eve@else.example", "t");
        let raw = String::from_utf8(mailer.build(&message).unwrap().formatted()).unwrap();
        assert!(!raw.contains("\r\nBcc:"), "{raw}");
        assert!(!raw.contains("\nBcc:"), "{raw}");
    }
}

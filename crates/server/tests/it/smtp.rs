//! A minimal SMTP receiver for tests: plain text on 127.0.0.1:0, written with tokio. It speaks
//! enough of RFC 5321 for a real client (EHLO/HELO, AUTH PLAIN and LOGIN when given credentials,
//! MAIL FROM, RCPT TO, DATA with dot-unstuffing, RSET, NOOP, QUIT) and keeps what it received.
//! No TLS: it never offers STARTTLS.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use base64::{Engine, engine::general_purpose::STANDARD as B64};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

/// One message accepted by the server.
#[derive(Debug, Clone)]
pub struct Received {
    /// `MAIL FROM:<…>`, without the brackets.
    pub from: String,
    /// Every `RCPT TO:<…>`, without the brackets.
    pub to: Vec<String>,
    /// The DATA, dot-unstuffed, CRLF line endings, without the final `.` line.
    pub data: Vec<u8>,
    /// The user who authenticated on this connection, if any.
    pub authenticated_as: Option<String>,
}

impl Received {
    pub fn text(&self) -> String {
        String::from_utf8(self.data.clone()).unwrap()
    }
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Required user and password: AUTH is advertised and MAIL refused until it succeeded.
    pub credentials: Option<(String, String)>,
    /// The mechanisms advertised when `credentials` is set (default `PLAIN LOGIN`).
    pub mechanisms: Option<Vec<&'static str>>,
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    /// Every command line read, in order, across connections (AUTH payloads included).
    commands: Mutex<Vec<String>>,
    connections: AtomicUsize,
}

pub struct SmtpServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpServer {
    pub async fn start() -> Self {
        Self::with(Options::default()).await
    }

    pub async fn with_credentials(user: &str, password: &str) -> Self {
        Self::with(Options {
            credentials: Some((user.into(), password.into())),
            ..Options::default()
        })
        .await
    }

    pub async fn with(options: Options) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let options = Arc::new(options);
        let task = {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    shared.connections.fetch_add(1, Ordering::SeqCst);
                    let shared = Arc::clone(&shared);
                    let options = Arc::clone(&options);
                    tokio::spawn(async move {
                        let _ = session(stream, &shared, &options).await;
                    });
                }
            })
        };
        Self { addr, shared, task }
    }

    /// The URL for `[email] smtp_url`: plain text, as this server has no TLS.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none", self.addr.port())
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    pub fn commands(&self) -> Vec<String> {
        self.shared.commands.lock().unwrap().clone()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

#[derive(Default)]
struct Transaction {
    from: Option<String>,
    to: Vec<String>,
}

async fn session(stream: TcpStream, shared: &Shared, options: &Options) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut reply = async |text: &str| write.write_all(format!("{text}\r\n").as_bytes()).await;
    reply("220 localhost ESMTP provisio-test").await?;
    let mut greeted = false;
    let mut authenticated: Option<String> = None;
    let mut transaction = Transaction::default();
    loop {
        let Some(line) = read_line(&mut lines).await? else { return Ok(()) };
        shared.commands.lock().unwrap().push(line.clone());
        let (verb, rest) = match line.split_once(' ') {
            Some((verb, rest)) => (verb.to_ascii_uppercase(), rest.trim().to_string()),
            None => (line.to_ascii_uppercase(), String::new()),
        };
        match verb.as_str() {
            "EHLO" => {
                greeted = true;
                transaction = Transaction::default();
                let mut lines = vec!["250-localhost greets you".to_string()];
                lines.push("250-8BITMIME".into());
                lines.push("250-SMTPUTF8".into());
                if options.credentials.is_some() {
                    let mechanisms = options.mechanisms.clone().unwrap_or(vec!["PLAIN", "LOGIN"]);
                    lines.push(format!("250-AUTH {}", mechanisms.join(" ")));
                }
                lines.push("250 SIZE 10485760".into());
                reply(&lines.join("\r\n")).await?;
            }
            "HELO" => {
                greeted = true;
                transaction = Transaction::default();
                reply("250 localhost").await?;
            }
            "AUTH" => {
                let Some(expected) = &options.credentials else {
                    reply("502 5.5.1 AUTH not available").await?;
                    continue;
                };
                if authenticated.is_some() {
                    reply("503 5.5.1 already authenticated").await?;
                    continue;
                }
                let (mechanism, initial) = match rest.split_once(' ') {
                    Some((m, i)) => (m.to_ascii_uppercase(), Some(i.to_string())),
                    None => (rest.to_ascii_uppercase(), None),
                };
                let advertised = options.mechanisms.clone().unwrap_or(vec!["PLAIN", "LOGIN"]);
                if !advertised.contains(&mechanism.as_str()) {
                    reply("504 5.5.4 mechanism not supported").await?;
                    continue;
                }
                let answer = match mechanism.as_str() {
                    "PLAIN" => {
                        let payload = match initial {
                            Some(i) => i,
                            None => {
                                reply("334 ").await?;
                                let Some(l) = read_line(&mut lines).await? else { return Ok(()) };
                                l
                            }
                        };
                        decode(&payload).and_then(|p| {
                            // authzid NUL authcid NUL password
                            let mut parts = p.splitn(3, '\0');
                            let (_authz, user, pass) =
                                (parts.next()?, parts.next()?, parts.next()?);
                            Some((user.to_string(), pass.to_string()))
                        })
                    }
                    "LOGIN" => {
                        let user = match initial {
                            Some(i) => decode(&i),
                            None => {
                                reply(&format!("334 {}", B64.encode("Username:"))).await?;
                                let Some(l) = read_line(&mut lines).await? else { return Ok(()) };
                                decode(&l)
                            }
                        };
                        reply(&format!("334 {}", B64.encode("Password:"))).await?;
                        let Some(l) = read_line(&mut lines).await? else { return Ok(()) };
                        user.zip(decode(&l))
                    }
                    _ => None,
                };
                match answer {
                    Some((user, pass)) if (&user, &pass) == (&expected.0, &expected.1) => {
                        authenticated = Some(user);
                        reply("235 2.7.0 Authentication successful").await?;
                    }
                    _ => reply("535 5.7.8 Authentication credentials invalid").await?,
                }
            }
            "MAIL" => {
                if !greeted {
                    reply("503 5.5.1 EHLO first").await?;
                } else if options.credentials.is_some() && authenticated.is_none() {
                    reply("530 5.7.0 Authentication required").await?;
                } else if transaction.from.is_some() {
                    reply("503 5.5.1 nested MAIL").await?;
                } else if let Some(path) = path_after(&rest, "FROM:") {
                    transaction.from = Some(path);
                    reply("250 2.1.0 OK").await?;
                } else {
                    reply("501 5.5.4 syntax: MAIL FROM:<address>").await?;
                }
            }
            "RCPT" => {
                if transaction.from.is_none() {
                    reply("503 5.5.1 MAIL first").await?;
                } else if let Some(path) = path_after(&rest, "TO:") {
                    transaction.to.push(path);
                    reply("250 2.1.5 OK").await?;
                } else {
                    reply("501 5.5.4 syntax: RCPT TO:<address>").await?;
                }
            }
            "DATA" => {
                if transaction.to.is_empty() {
                    reply("503 5.5.1 RCPT first").await?;
                    continue;
                }
                reply("354 End data with <CR><LF>.<CR><LF>").await?;
                let mut data = Vec::new();
                loop {
                    let mut raw = Vec::new();
                    if lines.read_until(b'\n', &mut raw).await? == 0 {
                        return Ok(());
                    }
                    if raw == b".\r\n" || raw == b".\n" {
                        break;
                    }
                    // Dot-unstuffing (RFC 5321 4.5.2): a line's leading dot was doubled.
                    let line = if raw.starts_with(b"..") { &raw[1..] } else { &raw[..] };
                    data.extend_from_slice(line);
                }
                let transaction = std::mem::take(&mut transaction);
                shared.received.lock().unwrap().push(Received {
                    from: transaction.from.unwrap_or_default(),
                    to: transaction.to,
                    data,
                    authenticated_as: authenticated.clone(),
                });
                reply("250 2.0.0 OK queued").await?;
            }
            "RSET" => {
                transaction = Transaction::default();
                reply("250 2.0.0 OK").await?;
            }
            "NOOP" => reply("250 2.0.0 OK").await?,
            "QUIT" => {
                reply("221 2.0.0 Bye").await?;
                return Ok(());
            }
            "STARTTLS" => reply("454 4.7.0 TLS not available").await?,
            _ => reply("500 5.5.2 command not recognized").await?,
        }
    }
}

/// A command line without its CRLF; `None` at the end of the stream.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
) -> std::io::Result<Option<String>> {
    let mut raw = Vec::new();
    if reader.read_until(b'\n', &mut raw).await? == 0 {
        return Ok(None);
    }
    let line = String::from_utf8_lossy(&raw);
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_string()))
}

/// `FROM:<a@b> SIZE=…` → `a@b`.
fn path_after(rest: &str, keyword: &str) -> Option<String> {
    let head = rest.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let path = rest[keyword.len()..].trim_start();
    let inner = path.strip_prefix('<')?;
    let end = inner.find('>')?;
    Some(inner[..end].to_string())
}

fn decode(b64: &str) -> Option<String> {
    String::from_utf8(B64.decode(b64.trim()).ok()?).ok()
}

/// A message split for assertions: unfolded headers (names lowercased) and the decoded body
/// (`7bit`, `8bit` or `quoted-printable`; `base64` too).
#[derive(Debug)]
pub struct Parsed {
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Parsed {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

/// Parses an RFC 5322 message with a single text part (enough for what `Mailer` sends without an
/// HTML alternative); panics on anything else, which fails the test.
pub fn parse_message(raw: &[u8]) -> Parsed {
    // UTF-8 in headers only for internationalized addresses (RFC 6532; the server offers SMTPUTF8).
    let text = std::str::from_utf8(raw).expect("a message is UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("a blank line after the headers");
    assert!(!head.contains('\n') || head.contains("\r\n"), "bare LF in headers");
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().expect("a continuation after a header");
            last.1.push_str(line);
        } else {
            let (name, value) = line.split_once(':').expect("Name: value");
            assert!(!name.is_empty() && !name.contains(' '), "header name {name:?}");
            headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let parsed = Parsed { headers, body: String::new() };
    let encoding =
        parsed.header("content-transfer-encoding").unwrap_or("7bit").to_ascii_lowercase();
    let body = match encoding.as_str() {
        "7bit" | "8bit" => body.to_string(),
        "quoted-printable" => decode_quoted_printable(body),
        "base64" => String::from_utf8(B64.decode(body.replace("\r\n", "")).unwrap()).unwrap(),
        other => panic!("unexpected Content-Transfer-Encoding {other}"),
    };
    Parsed { body, ..parsed }
}

fn decode_quoted_printable(body: &str) -> String {
    let mut out = Vec::new();
    let bytes = body.replace("=\r\n", "").into_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Decodes RFC 2047 encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`) in a header value.
pub fn decode_header(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let between = &rest[..start];
        // Whitespace between two encoded words is dropped (RFC 2047 6.2).
        if !(after_word && between.trim().is_empty()) {
            out.push_str(between);
        }
        let word = &rest[start + 2..];
        let mut parts = word.splitn(3, '?');
        let (_charset, kind, tail) =
            (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
        let end = tail.find("?=").expect("an encoded word ends with ?=");
        let payload = &tail[..end];
        let bytes = match kind {
            "b" | "B" => B64.decode(payload).unwrap(),
            "q" | "Q" => decode_quoted_printable(&payload.replace('_', " ")).into_bytes(),
            other => panic!("encoding {other}"),
        };
        out.push_str(&String::from_utf8(bytes).unwrap());
        rest = &tail[end + 2..];
        after_word = true;
    }
    out.push_str(rest);
    out
}

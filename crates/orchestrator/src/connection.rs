//! One kept-alive HTTP/1.1 connection to a plain-`http` provider, for the load generator. Each bench
//! worker owns one, as wrk's connections do, so a request costs one write and a read or two instead
//! of a trip through a pooled general-purpose client (URL parsing, pool checkout, a channel to a
//! connection task). Responses are framed as RFC 9112 section 6.3 orders it: no body for HEAD, 1xx,
//! 204 and 304; chunked; Content-Length; otherwise until the provider closes.

use std::io;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// The most a response body may hold; a provider answering more is broken or hostile.
const MAX_BODY: usize = 64 << 20;
/// The most a response head may hold.
const MAX_HEAD: usize = 64 << 10;

/// What came back.
pub(crate) struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

#[derive(Debug)]
pub(crate) struct Connection {
    /// The base URL as the client writes it (no trailing `/`): request URLs start with it.
    base: String,
    /// The base URL's path (no trailing `/`), which request targets start with.
    base_path: String,
    /// `Host` header value.
    host: String,
    /// Where to connect.
    addr: String,
    stream: Option<TcpStream>,
    /// Bytes read and not yet consumed.
    buf: Vec<u8>,
    out: Vec<u8>,
    /// A request was started and not finished (it timed out): the stream's state is unknown.
    in_flight: bool,
}

impl Connection {
    /// A connection for a plain `http://` base URL; `None` for anything else (HTTPS goes through
    /// the pooled client).
    pub(crate) fn for_base_url(base_url: &str) -> Option<Self> {
        let base = base_url.trim_end_matches('/').to_string();
        let url = reqwest::Url::parse(&base).ok()?;
        if url.scheme() != "http" || url.query().is_some() || url.fragment().is_some() {
            return None;
        }
        let host_name = url.host_str()?;
        let host = match url.port() {
            Some(port) => format!("{host_name}:{port}"),
            None => host_name.to_string(),
        };
        let addr = format!("{host_name}:{}", url.port_or_known_default()?);
        let base_path = url.path().trim_end_matches('/').to_string();
        Some(Self {
            base,
            base_path,
            host,
            addr,
            stream: None,
            buf: Vec::with_capacity(16 << 10),
            out: Vec::with_capacity(4 << 10),
            in_flight: false,
        })
    }

    /// The request target (`/path?query`) of `url` when it is on this connection's base URL.
    pub(crate) fn target_of(&self, url: &str) -> Option<String> {
        let rest = url.strip_prefix(&self.base)?;
        (rest.starts_with('/') || rest.starts_with('?') || rest.is_empty()).then(|| {
            let target = format!("{}{rest}", self.base_path);
            if target.starts_with('/') { target } else { format!("/{target}") }
        })
    }

    /// Sends one request and reads its response. A kept-alive connection the provider closed
    /// while idle is reopened and the request sent once more, as long as nothing of a response
    /// had arrived.
    pub(crate) async fn send(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(impl AsRef<str>, impl AsRef<str>)],
        body: &[u8],
    ) -> io::Result<Response> {
        if std::mem::take(&mut self.in_flight) {
            self.reset();
        }
        self.write_request(method, target, headers, body)?;
        let reused = self.stream.is_some();
        self.in_flight = true;
        let result = match self.exchange(method).await {
            Err(_) if reused && self.buf.is_empty() => {
                self.reset();
                self.exchange(method).await
            }
            other => other,
        };
        self.in_flight = false;
        if result.is_err() {
            self.reset();
        }
        result
    }

    fn reset(&mut self) {
        self.stream = None;
        self.buf.clear();
    }

    fn write_request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(impl AsRef<str>, impl AsRef<str>)],
        body: &[u8],
    ) -> io::Result<()> {
        let unsafe_text = |s: &str| s.bytes().any(|b| b == b'\r' || b == b'\n');
        if unsafe_text(method)
            || unsafe_text(target)
            || headers.iter().any(|(n, v)| unsafe_text(n.as_ref()) || unsafe_text(v.as_ref()))
        {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "CR or LF in a request line"));
        }
        let out = &mut self.out;
        out.clear();
        for part in [method, " ", target, " HTTP/1.1\r\nhost: ", &self.host, "\r\n"] {
            out.extend_from_slice(part.as_bytes());
        }
        for (name, value) in headers {
            for part in [name.as_ref(), ": ", value.as_ref(), "\r\n"] {
                out.extend_from_slice(part.as_bytes());
            }
        }
        if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
            out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        Ok(())
    }

    /// Writes the prepared request and reads one whole response.
    async fn exchange(&mut self, method: &str) -> io::Result<Response> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(&self.addr).await?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
        }
        if let Some(stream) = self.stream.as_mut() {
            stream.write_all(&self.out).await?;
        }
        loop {
            let (status, headers, head_len, close) = self.read_head().await?;
            if (100..200).contains(&status) && status != 101 {
                self.buf.drain(..head_len);
                continue; // an interim response; the real one follows
            }
            let (body, consumed, until_close) = if method == "HEAD"
                || (100..200).contains(&status)
                || status == 204
                || status == 304
            {
                (Vec::new(), head_len, false)
            } else if header_has(&headers, "transfer-encoding", "chunked") {
                let (body, end) = self.read_chunked(head_len).await?;
                (body, end, false)
            } else if let Some(length) = content_length(&headers)? {
                self.fill_to(head_len + length).await?;
                (self.buf[head_len..head_len + length].to_vec(), head_len + length, false)
            } else {
                let body = self.read_to_close(head_len).await?;
                let consumed = self.buf.len();
                (body, consumed, true)
            };
            self.buf.drain(..consumed);
            // After 101 the connection speaks another protocol: it is not reused for HTTP/1.1.
            if close || until_close || status == 101 {
                self.reset();
            }
            return Ok(Response { status, headers, body });
        }
    }

    /// Reads until a whole response head is buffered: status, headers, its length, and whether
    /// the provider will close the connection after this response.
    async fn read_head(&mut self) -> io::Result<(u16, HeaderMap, usize, bool)> {
        loop {
            let mut slots = [httparse::EMPTY_HEADER; 64];
            let mut response = httparse::Response::new(&mut slots);
            match response.parse(&self.buf) {
                Ok(httparse::Status::Complete(len)) => {
                    let status = response.code.unwrap_or(0);
                    let mut headers = HeaderMap::with_capacity(response.headers.len());
                    for h in response.headers.iter() {
                        if let (Ok(name), Ok(value)) = (
                            HeaderName::from_bytes(h.name.as_bytes()),
                            HeaderValue::from_bytes(h.value),
                        ) {
                            headers.append(name, value);
                        }
                    }
                    let close = header_has(&headers, "connection", "close")
                        || (response.version == Some(0)
                            && !header_has(&headers, "connection", "keep-alive"));
                    return Ok((status, headers, len, close));
                }
                Ok(httparse::Status::Partial) if self.buf.len() < MAX_HEAD => {
                    self.read_more().await?
                }
                Ok(httparse::Status::Partial) => return Err(invalid("response head too large")),
                Err(e) => return Err(invalid(&format!("malformed response head: {e}"))),
            }
        }
    }

    /// Decodes a chunked body starting at `pos`; the body and where it ended.
    async fn read_chunked(&mut self, mut pos: usize) -> io::Result<(Vec<u8>, usize)> {
        let mut body = Vec::new();
        loop {
            let line_end = self.line_end(pos).await?;
            let size_text = self.buf[pos..line_end].split(|b| *b == b';').next().unwrap_or(&[]);
            let size = std::str::from_utf8(size_text)
                .ok()
                .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
                .filter(|size| body.len() + size <= MAX_BODY)
                .ok_or_else(|| invalid("malformed or oversized chunk size"))?;
            pos = line_end + 2;
            if size == 0 {
                // Trailer fields, then the empty line that ends the message.
                loop {
                    let end = self.line_end(pos).await?;
                    let empty = end == pos;
                    pos = end + 2;
                    if empty {
                        return Ok((body, pos));
                    }
                }
            }
            self.fill_to(pos + size + 2).await?;
            body.extend_from_slice(&self.buf[pos..pos + size]);
            if &self.buf[pos + size..pos + size + 2] != b"\r\n" {
                return Err(invalid("chunk not followed by CRLF"));
            }
            pos += size + 2;
        }
    }

    /// Index of the next CRLF at or after `pos`, reading as needed.
    async fn line_end(&mut self, pos: usize) -> io::Result<usize> {
        loop {
            if let Some(i) = self.buf[pos..].windows(2).position(|w| w == b"\r\n") {
                return Ok(pos + i);
            }
            if self.buf.len() - pos > MAX_HEAD {
                return Err(invalid("line too long in a chunked body"));
            }
            self.read_more().await?;
        }
    }

    async fn read_to_close(&mut self, pos: usize) -> io::Result<Vec<u8>> {
        loop {
            if self.buf.len() - pos > MAX_BODY {
                return Err(invalid("response body too large"));
            }
            let Some(stream) = self.stream.as_mut() else { break };
            if stream.read_buf(&mut self.buf).await? == 0 {
                break;
            }
        }
        Ok(self.buf[pos..].to_vec())
    }

    async fn fill_to(&mut self, len: usize) -> io::Result<()> {
        if len > MAX_BODY + MAX_HEAD {
            return Err(invalid("response body too large"));
        }
        while self.buf.len() < len {
            self.read_more().await?;
        }
        Ok(())
    }

    async fn read_more(&mut self) -> io::Result<()> {
        let stream = self.stream.as_mut().ok_or_else(|| invalid("not connected"))?;
        self.buf.reserve(8 << 10);
        match stream.read_buf(&mut self.buf).await? {
            0 => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the provider closed the connection",
            )),
            _ => Ok(()),
        }
    }
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

/// Whether a comma-separated header lists `token` (case-insensitively).
fn header_has(headers: &HeaderMap, name: &str, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

fn content_length(headers: &HeaderMap) -> io::Result<Option<usize>> {
    let mut values = headers.get_all("content-length").iter();
    let Some(first) = values.next() else { return Ok(None) };
    let length = first
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .ok_or_else(|| invalid("malformed Content-Length"))?;
    if values.any(|v| v != first) {
        return Err(invalid("conflicting Content-Length headers"));
    }
    if length > MAX_BODY {
        return Err(invalid("response body too large"));
    }
    Ok(Some(length))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use tokio::net::TcpListener;

    use super::*;

    /// A scripted provider: the nth accepted connection gets `script[n]`, a list of (expected
    /// request count, bytes answered after that many requests arrived), then is closed. Returns
    /// the base URL, the number of connections accepted, and every request head received.
    async fn provider(
        script: Vec<Vec<&'static [u8]>>,
    ) -> (String, Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (count, seen) = (accepted.clone(), heads.clone());
        tokio::spawn(async move {
            for answers in script {
                let (mut stream, _) = listener.accept().await.unwrap();
                count.fetch_add(1, Ordering::SeqCst);
                let mut buf = Vec::new();
                // A client that closes the connection ends its script early.
                'answers: for answer in answers {
                    // Read one request: its head, then its Content-Length body.
                    let (head, length) = loop {
                        let mut slots = [httparse::EMPTY_HEADER; 32];
                        let mut request = httparse::Request::new(&mut slots);
                        if let Ok(httparse::Status::Complete(n)) = request.parse(&buf) {
                            let length = request
                                .headers
                                .iter()
                                .find(|h| h.name == "content-length")
                                .map_or(0, |h| {
                                    std::str::from_utf8(h.value).unwrap().parse().unwrap()
                                });
                            break (n, length);
                        }
                        if stream.read_buf(&mut buf).await.unwrap() == 0 {
                            break 'answers;
                        }
                    };
                    while buf.len() < head + length {
                        if stream.read_buf(&mut buf).await.unwrap() == 0 {
                            break 'answers;
                        }
                    }
                    seen.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&buf[..head + length]).into_owned());
                    buf.drain(..head + length);
                    stream.write_all(answer).await.unwrap();
                }
            }
        });
        (base, accepted, heads)
    }

    async fn get(connection: &mut Connection, target: &str) -> io::Result<Response> {
        connection.send("GET", target, &[] as &[(&str, &str)], b"").await
    }

    #[tokio::test]
    async fn requests_share_one_kept_alive_connection_and_are_written_exactly() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-request-id: r1\r\n\r\n{}";
        let (base, accepted, heads) = provider(vec![vec![ok, ok]]).await;
        let mut connection = Connection::for_base_url(&format!("{base}/")).unwrap();
        let headers = [("stripe-signature", "t=1,v1=ab"), ("content-type", "application/json")];
        let first = connection
            .send("POST", "/provisioning/resources", &headers, b"{\"a\":1}")
            .await
            .unwrap();
        let second = get(&mut connection, "/provisioning/services").await.unwrap();
        assert_eq!((first.status, &first.body[..]), (200, &b"{}"[..]));
        assert_eq!(first.headers["x-request-id"], "r1");
        assert_eq!(second.body, b"{}");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        let host = base.trim_start_matches("http://");
        assert_eq!(
            heads.lock().unwrap()[..],
            [
                format!(
                    "POST /provisioning/resources HTTP/1.1\r\nhost: {host}\r\nstripe-signature: t=1,v1=ab\r\n\
                 content-type: application/json\r\ncontent-length: 7\r\n\r\n{{\"a\":1}}"
                ),
                format!("GET /provisioning/services HTTP/1.1\r\nhost: {host}\r\n\r\n"),
            ]
        );
    }

    #[tokio::test]
    async fn a_chunked_body_is_decoded_with_extensions_and_trailers() {
        let chunked: &[u8] = b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n\
            4;ext=1\r\n{\"a\"\r\nB\r\n:\"chunked\"}\r\n0\r\nx-trailer: t\r\n\r\n";
        let ok = b"HTTP/1.1 204 No Content\r\n\r\n";
        let (base, accepted, _) = provider(vec![vec![chunked, ok]]).await;
        let mut connection = Connection::for_base_url(&base).unwrap();
        let reply = get(&mut connection, "/").await.unwrap();
        assert_eq!((reply.status, &reply.body[..]), (201, &br#"{"a":"chunked"}"#[..]));
        let empty = get(&mut connection, "/").await.unwrap();
        assert_eq!((empty.status, empty.body.len()), (204, 0));
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "the connection stays usable after both");
    }

    #[tokio::test]
    async fn an_interim_response_is_skipped() {
        let answer = b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nx";
        let (base, _, _) = provider(vec![vec![answer]]).await;
        let reply = get(&mut Connection::for_base_url(&base).unwrap(), "/").await.unwrap();
        assert_eq!((reply.status, &reply.body[..]), (200, &b"x"[..]));
    }

    #[tokio::test]
    async fn a_body_without_length_runs_to_the_close_and_the_next_request_reconnects() {
        let until_close = b"HTTP/1.1 200 OK\r\n\r\nall of it";
        let closing = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 3\r\n\r\nbye";
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        let (base, accepted, _) = provider(vec![vec![until_close], vec![closing], vec![ok]]).await;
        let mut connection = Connection::for_base_url(&base).unwrap();
        assert_eq!(get(&mut connection, "/").await.unwrap().body, b"all of it");
        assert_eq!(get(&mut connection, "/").await.unwrap().body, b"bye");
        assert_eq!(get(&mut connection, "/").await.unwrap().body, b"ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_connection_that_switched_protocols_is_not_reused() {
        let switched = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: other\r\n\r\n";
        let stale = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nstale";
        let fresh = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfresh";
        let (base, _, _) = provider(vec![vec![switched, stale], vec![fresh]]).await;
        let mut connection = Connection::for_base_url(&base).unwrap();
        assert_eq!(get(&mut connection, "/").await.unwrap().status, 101);
        assert_eq!(get(&mut connection, "/").await.unwrap().body, b"fresh");
    }

    #[tokio::test]
    async fn a_connection_closed_while_idle_is_reopened_and_the_request_sent_again() {
        // The first connection answers once and then closes without saying so.
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        let (base, accepted, heads) = provider(vec![vec![ok], vec![ok]]).await;
        let mut connection = Connection::for_base_url(&base).unwrap();
        get(&mut connection, "/first").await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(get(&mut connection, "/second").await.unwrap().body, b"ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
        assert_eq!(heads.lock().unwrap().len(), 2, "the request reached the provider once");
    }

    #[tokio::test]
    async fn malformed_or_oversized_answers_are_errors_not_panics() {
        let cases: [(&'static [u8], &str); 5] = [
            (b"NOT HTTP AT ALL\r\n\r\n", "malformed response head"),
            (b"HTTP/1.1 200 OK\r\ncontent-length: nope\r\n\r\n", "malformed Content-Length"),
            (b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab", "conflicting"),
            (b"HTTP/1.1 200 OK\r\ncontent-length: 999999999999\r\n\r\n", "too large"),
            (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
        ];
        for (answer, expected) in cases {
            let (base, _, _) = provider(vec![vec![answer]]).await;
            let error =
                get(&mut Connection::for_base_url(&base).unwrap(), "/").await.err().unwrap();
            assert!(error.to_string().contains(expected), "{error} for {answer:?}");
        }
    }

    #[tokio::test]
    async fn a_truncated_answer_is_an_error() {
        let (base, _, _) =
            provider(vec![vec![b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort"]]).await;
        let error = get(&mut Connection::for_base_url(&base).unwrap(), "/").await.err().unwrap();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn line_breaks_in_a_request_are_refused_before_anything_is_sent() {
        let mut connection = Connection::for_base_url("http://127.0.0.1:9").unwrap();
        let error = connection.send("GET", "/", &[("x", "a\r\nevil: 1")], b"").await.err().unwrap();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(connection.stream.is_none());
    }

    #[test]
    fn only_plain_http_base_urls_get_a_connection_and_targets_keep_the_base_path() {
        assert!(Connection::for_base_url("https://example.com").is_none());
        assert!(Connection::for_base_url("http://example.com/?q=1").is_none());
        let root = Connection::for_base_url("http://example.com").unwrap();
        assert_eq!((root.host.as_str(), root.addr.as_str()), ("example.com", "example.com:80"));
        assert_eq!(root.target_of("http://example.com/a?b=1").as_deref(), Some("/a?b=1"));
        assert_eq!(root.target_of("http://other.example/a"), None);
        let under = Connection::for_base_url("http://127.0.0.1:8080/api/").unwrap();
        assert_eq!(under.host, "127.0.0.1:8080");
        assert_eq!(under.target_of("http://127.0.0.1:8080/api/x").as_deref(), Some("/api/x"));
        assert_eq!(under.target_of("http://127.0.0.1:8080/apiv2/x"), None);
        let v6 = Connection::for_base_url("http://[::1]:81").unwrap();
        assert_eq!((v6.host.as_str(), v6.addr.as_str()), ("[::1]:81", "[::1]:81"));
    }
}

//! A broken provider: a thin proxy in front of the real one that changes one behaviour. Each
//! defect is a [`Breakage`]; everything it leaves alone is the real provider's answer. The proxy is
//! the provider's public address: URLs of the real provider in its answers (deep links, `host`)
//! name the proxy, so a browser's visit to a link passes through the defect too.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router,
    body::{Body, to_bytes},
    extract::{Request, State},
    http::{HeaderMap, Method, StatusCode},
    response::Response,
};

/// A request on its way to the real provider.
pub struct Forward {
    pub method: Method,
    /// Path and query.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// An answer on its way back.
#[derive(Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    pub fn set_json(&mut self, value: &serde_json::Value) {
        self.body = serde_json::to_vec(value).unwrap();
    }
}

/// One defect.
pub trait Breakage: Send + Sync + 'static {
    /// Changes the request before it is forwarded, or answers it without forwarding.
    fn request(&self, _request: &mut Forward) -> Option<Answer> {
        None
    }

    /// How long to hold the request (after `request`) before forwarding it.
    fn hold(&self, _request: &Forward) -> std::time::Duration {
        std::time::Duration::ZERO
    }

    /// Asks for the request to be sent again, changed, once the real provider has answered it;
    /// the second answer replaces the first.
    fn retry(&self, _request: &Forward, _answer: &Answer) -> Option<Forward> {
        None
    }

    /// Changes the real provider's answer.
    fn response(&self, _request: &Forward, _answer: &mut Answer) {}
}

struct Shared {
    upstream: String,
    /// The proxy's own base URL.
    public: String,
    http: reqwest::Client,
    breakage: Box<dyn Breakage>,
}

/// A running proxy; stops when dropped.
pub struct Proxy {
    pub base_url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: &str, breakage: impl Breakage) -> Self {
        // reqwest is built without a bundled crypto provider (as in the crate itself).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener =
            tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            public: base_url.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            breakage: Box::new(breakage),
        });
        let app = Router::new().fallback(relay).with_state(shared);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { base_url, task }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Headers that describe one hop's framing, not the message.
const HOP: [&str; 4] = ["host", "content-length", "transfer-encoding", "connection"];

fn end_to_end(headers: &HeaderMap) -> HeaderMap {
    let mut kept = headers.clone();
    for name in HOP {
        kept.remove(name);
    }
    kept
}

async fn relay(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let body = to_bytes(body, 8 * 1024 * 1024).await.unwrap().to_vec();
    let mut forward =
        Forward { method: parts.method, path, headers: end_to_end(&parts.headers), body };
    let answer = match shared.breakage.request(&mut forward) {
        Some(answer) => answer,
        None => {
            tokio::time::sleep(shared.breakage.hold(&forward)).await;
            let mut answer = upstream(&shared, &forward).await;
            if let Some(again) = shared.breakage.retry(&forward, &answer) {
                answer = upstream(&shared, &again).await;
            }
            shared.breakage.response(&forward, &mut answer);
            answer
        }
    };
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap();
    *response.headers_mut() = answer.headers;
    response
}

/// The real provider's answer to `forward`, with its own URLs turned into the proxy's.
async fn upstream(shared: &Shared, forward: &Forward) -> Answer {
    let reply = shared
        .http
        .request(forward.method.clone(), format!("{}{}", shared.upstream, forward.path))
        .headers(forward.headers.clone())
        .body(forward.body.clone())
        .send()
        .await
        .unwrap();
    let status = reply.status().as_u16();
    let headers = end_to_end(reply.headers());
    let mut body = reply.bytes().await.unwrap().to_vec();
    if let Ok(text) = std::str::from_utf8(&body)
        && text.contains(&shared.upstream)
    {
        body = text.replace(&shared.upstream, &shared.public).into_bytes();
    }
    Answer { status, headers, body }
}

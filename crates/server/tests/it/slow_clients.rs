//! Slow clients cannot hold connections (security review, issue 16 item 3): the real accept loop
//! over loopback, with a short header deadline and a small connection cap. Waits are bounded
//! generously; nothing here measures speed.

use std::{net::SocketAddr, time::Duration};

use provisio_server::accept::{self, ConnectionLimits};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::oneshot,
};

use crate::support::TestApp;

/// Long enough for any slow machine to notice a closed connection.
const BOUND: Duration = Duration::from_secs(30);

struct Server {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn serve(app: &TestApp, header_read_timeout: Duration, max_connections: usize) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let limits = ConnectionLimits { header_read_timeout, max_connections };
    tokio::spawn(accept::serve(listener, app.router.clone(), limits, async {
        let _ = stopped.await;
    }));
    Server { addr, _stop: stop }
}

/// Reads until the server closes the connection; what it sent before.
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let read = async {
        let mut buf = [0u8; 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(BOUND, read).await.expect("the server closed the connection");
    String::from_utf8_lossy(&seen).into_owned()
}

/// `GET /healthz` on a new connection: the status line.
async fn healthz(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = until_closed(&mut stream).await;
    answer.lines().next().unwrap_or_default().to_string()
}

/// Waits (within [`BOUND`]) until `/healthz` answers 200 on a new connection.
async fn answers_again(addr: SocketAddr, what: &str) {
    let recovered = async {
        while healthz(addr).await != "HTTP/1.1 200 OK" {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(BOUND, recovered).await.expect(what);
}

#[tokio::test]
async fn a_client_that_sends_nothing_or_trickles_its_headers_is_cut_off() {
    let app = TestApp::new().await;
    let server = serve(&app, Duration::from_millis(500), 64).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    let mut trickling = TcpStream::connect(server.addr).await.unwrap();
    trickling.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let trickle = async {
        // A header byte every 100 ms: never a whole head before the deadline.
        for byte in
            b"x-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter().cycle()
        {
            if trickling.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(BOUND, trickle).await.expect("the trickling client was cut off");
    assert_eq!(until_closed(&mut silent).await, "", "closed without an answer");
    assert_eq!(healthz(server.addr).await, "HTTP/1.1 200 OK", "the server still answers");
}

#[tokio::test]
async fn a_kept_alive_connection_idle_past_the_deadline_is_closed() {
    let app = TestApp::new().await;
    let server = serve(&app, Duration::from_millis(500), 64).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let answer = until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
}

#[tokio::test]
async fn past_the_cap_a_connection_is_answered_503_and_room_comes_back() {
    let app = TestApp::new().await;
    // A deadline far beyond the test: only closing frees room here.
    let server = serve(&app, Duration::from_secs(600), 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        // A complete request, answered, then kept alive: the connection stays open.
        stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK"));
        held.push(stream);
    }
    let refused = {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        until_closed(&mut stream).await
    };
    assert!(refused.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{refused}");
    assert!(refused.contains("retry-after: 1\r\n"), "{refused}");
    let body = refused.split("\r\n\r\n").nth(1).unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(body).unwrap(),
        serde_json::json!({"error":{"code":"timeout","message":"Too many open connections; retry shortly"}})
    );
    drop(held);
    answers_again(server.addr, "room came back once they closed").await;
}

#[tokio::test]
async fn held_connections_are_cut_off_by_the_deadline_and_free_their_room() {
    // A slowloris at the cap: every connection sends half a head. The deadline closes them, so the
    // server serves again without anyone letting go.
    let app = TestApp::new().await;
    let server = serve(&app, Duration::from_millis(500), 4).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(b"GET /healthz HTTP/1.1\r\nhost:").await.unwrap();
        held.push(stream);
    }
    for stream in &mut held {
        assert_eq!(until_closed(stream).await, "");
    }
    answers_again(server.addr, "the server answers again").await;
}

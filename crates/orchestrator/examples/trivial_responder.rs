//! A provider that does nothing: every request gets the same small JSON answer at once. `provisio
//! bench` against it shows how fast the load generator itself can go, i.e. that it is not the
//! bottleneck when it measures a real provider (docs/benchmarks.md). It parses just enough HTTP/1.1
//! to find where each request ends (head, then a Content-Length body) so that it costs as little as
//! possible and the generator is what the measurement measures.
//!
//! `cargo run --release -p provisio-orchestrator --example trivial_responder -- 127.0.0.1:18099`
#![allow(clippy::expect_used)]

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

const ANSWER: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"data\":[]}";

#[tokio::main]
async fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18099".into());
    let listener = TcpListener::bind(&addr).await.expect("bind");
    println!("trivial responder on http://{addr}");
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        tokio::spawn(answer_all(stream));
    }
}

/// Answers every request on one connection until the client closes it or sends garbage.
async fn answer_all(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(16 << 10);
    let mut out = Vec::with_capacity(4 << 10);
    loop {
        // Every complete request buffered so far gets an answer, all in one write.
        let mut consumed = 0;
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut request = httparse::Request::new(&mut headers);
            let Ok(httparse::Status::Complete(head)) = request.parse(&buf[consumed..]) else {
                break;
            };
            let length = request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() - consumed < head + length {
                break;
            }
            consumed += head + length;
            out.extend_from_slice(ANSWER);
        }
        buf.drain(..consumed);
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        buf.reserve(8 << 10);
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) if buf.len() > 1 << 20 => return,
            Ok(_) => {}
        }
    }
}

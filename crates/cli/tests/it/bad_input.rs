//! Hostile bytes on a real socket never take the server down: after each, health still answers.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use crate::server::Server;

/// Writes raw bytes, returns whatever the server answers (possibly nothing when it closes).
/// Requests that keep the connection open are cut off by the read timeout.
fn raw(server: &Server, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn still_alive(server: &Server) {
    let answer = raw(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 200"), "server still answers: {answer}");
}

#[test]
fn garbage_headers_invalid_utf8_huge_bodies_and_no_host() {
    let server = Server::start(&["--signing-secret", "s"]);

    let garbage_sig = b"GET /provisioning/health HTTP/1.1\r\nHost: x\r\nStripe-Signature: t=\xff\xfe,v1=zz\xc3\r\nAPI-Version: \xc3\x28\r\nConnection: close\r\n\r\n";
    let answer = raw(&server, garbage_sig);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains(
        r#"{"error":{"code":"invalid_signature","message":"Signature verification failed"}}"#
    ));
    still_alive(&server);

    // Bytes the HTTP parser itself refuses (a NUL in a header) get its bare 400 before the app runs.
    let nul = raw(
        &server,
        b"GET /provisioning/health HTTP/1.1\r\nHost: x\r\nStripe-Signature: \x00\r\n\r\n",
    );
    assert!(nul.starts_with("HTTP/1.1 400"), "{nul}");
    still_alive(&server);

    let utf8 = b"GET /provisioning/services HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\n\xff\xfe\xfd\xfc";
    let answer = raw(&server, utf8);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains(
        r#"{"error":{"code":"invalid_signature","message":"Signature verification failed"}}"#
    ));
    still_alive(&server);

    let mut huge = b"GET /provisioning/health HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\nConnection: close\r\n\r\n".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 10 * 1024 * 1024));
    let answer = raw(&server, &huge);
    assert!(answer.starts_with("HTTP/1.1 413"), "{}", &answer[..answer.len().min(200)]);
    assert!(answer.contains(
        r#"{"error":{"code":"request_too_large","message":"Request body is too large"}}"#
    ));
    still_alive(&server);

    let chunked_huge = {
        let mut r = b"GET /provisioning/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
        for _ in 0..11 {
            r.extend_from_slice(b"100000\r\n");
            r.extend(std::iter::repeat_n(b'b', 0x100000));
            r.extend_from_slice(b"\r\n");
        }
        r.extend_from_slice(b"0\r\n\r\n");
        r
    };
    let answer = raw(&server, &chunked_huge);
    assert!(answer.starts_with("HTTP/1.1 413"), "{}", &answer[..answer.len().min(200)]);
    still_alive(&server);

    let no_host = raw(&server, b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert!(no_host.starts_with("HTTP/1.1 "), "an answer, not a crash: {no_host}");
    still_alive(&server);

    for junk in [
        &b"\x00\x01\x02\r\n\r\n"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET /provisioning/health HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"POST /provisioning/health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab",
    ] {
        let _ = raw(&server, junk);
        still_alive(&server);
    }
}

#[test]
fn an_oversized_content_length_is_refused_at_once_on_a_real_socket() {
    // The body is announced, never sent: the answer comes from the header alone, with no
    // `100 Continue` first (the raw read would otherwise wait out its 2 s and see nothing).
    let server = Server::start(&["--signing-secret", "s"]);
    let answer = raw(
        &server,
        b"POST /provisioning/resources HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\nExpect: 100-continue\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");
    assert!(answer.contains(
        r#"{"error":{"code":"request_too_large","message":"Request body is too large"}}"#
    ));
    still_alive(&server);
}

#[test]
fn the_served_binary_cuts_off_slow_headers_and_caps_connections() {
    // The limits of `[limits]` reach the real listener: a connection that sends half a head is
    // closed after the deadline (the old listener kept such connections forever), and past the
    // cap a new connection is answered 503.
    let dir = tempfile::tempdir().unwrap();
    let config = crate::server::config_file(
        dir.path(),
        "[limits]\nheader_read_timeout_secs = 1\nmax_connections = 2\n",
    );
    let server = Server::start_in(dir, &["--signing-secret", "s", "--config", &config]);
    let mut slow = TcpStream::connect(server.addr()).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost:").unwrap();
    let mut other = TcpStream::connect(server.addr()).unwrap();
    other.write_all(b"GET /healthz HTTP/1.1\r\nHost:").unwrap();
    let refused = raw(&server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    let mut rest = Vec::new();
    if let Err(e) = slow.read_to_end(&mut rest) {
        let timed_out =
            matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut);
        assert!(!timed_out, "closed by the deadline, not by our read timeout");
    }
    assert!(rest.is_empty(), "no answer to half a head: {}", String::from_utf8_lossy(&rest));
    drop(other);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let answer = raw(&server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "room came back: {answer}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

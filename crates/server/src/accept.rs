//! The accept loop: HTTP/1.1 connections served by hyper with the two limits `axum::serve` does
//! not set — a deadline for a request's headers, and a cap on open connections — and a drain of
//! in-flight requests on shutdown.
//!
//! * The header deadline (`[limits] header_read_timeout_secs`) runs from the moment a connection
//!   is accepted, or from the end of the previous answer on a kept-alive one, until the request's
//!   last header line: a client that sends nothing, or its headers a byte at a time, is cut off,
//!   and so is a kept-alive connection idle for as long (clients reconnect). The body is bounded
//!   by the request timeout of the router.
//! * Past `[limits] max_connections` open connections, a new one is answered 503 at once and
//!   closed, so the process keeps file descriptors for its database and for `/healthz` instead of
//!   queueing connections it cannot serve.

use std::{future::Future, io, sync::Arc, time::Duration};

use axum::{Router, extract::ConnectInfo};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};
use tower::ServiceExt;

/// How connections are bounded.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting, closes idle
/// connections and waits for the requests in flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            crate::metrics::connection_refused();
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request)
        });
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _open = Open::new();
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %peer, "connection closed with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Accept errors are the listener's, not a client's: out of file descriptors (`EMFILE`) is the
/// one that repeats, so the loop waits a moment instead of spinning.
async fn accept_failed(e: &io::Error) {
    tracing::warn!(error = %e, "could not accept a connection");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// The answer past the connection cap: 503 in the flat envelope, then close. What the client
/// already sent is read (briefly) before closing, so the close does not reset the connection
/// before the answer is read.
async fn refuse(mut stream: TcpStream) {
    const BODY: &str =
        r#"{"error":{"code":"timeout","message":"Too many open connections; retry shortly"}}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let answer = async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), answer).await;
}

/// Counts an open connection in the `provisio_http_connections_open` gauge while it lives.
struct Open;

impl Open {
    fn new() -> Self {
        crate::metrics::connections_open(1.0);
        Self
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        crate::metrics::connections_open(-1.0);
    }
}

/// The process's soft limit on open files, where the platform tells it (`/proc/self/limits`).
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

/// `max_connections`, lowered when the open-files limit could not hold that many connections
/// beside the database's files and the listener (`reserve`); the warning says what to raise.
pub fn fit_to_open_files(max_connections: usize, limit: Option<u64>) -> usize {
    const RESERVE: u64 = 64;
    let Some(limit) = limit else { return max_connections };
    let room = usize::try_from(limit.saturating_sub(RESERVE)).unwrap_or(usize::MAX).max(16);
    if room < max_connections {
        tracing::warn!(
            max_connections,
            open_files_limit = limit,
            using = room,
            "[limits] max_connections is more than the open-files limit allows; raise the limit (LimitNOFILE=, ulimit -n) to use it"
        );
        return room;
    }
    max_connections
}

#[cfg(test)]
mod tests {
    use super::fit_to_open_files;

    #[test]
    fn the_cap_fits_the_open_files_limit() {
        assert_eq!(fit_to_open_files(1024, None), 1024);
        assert_eq!(fit_to_open_files(1024, Some(65_536)), 1024);
        assert_eq!(fit_to_open_files(1024, Some(1024)), 960);
        assert_eq!(fit_to_open_files(1024, Some(10)), 16);
    }

    #[test]
    fn reads_the_open_files_limit_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(super::open_files_limit().is_some_and(|n| n > 0));
        }
    }
}

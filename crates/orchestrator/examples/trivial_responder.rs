//! A provider that does nothing: every request gets a constant JSON body at once. `provisio bench`
//! against it shows how fast the load generator itself can go, i.e. that it is not the bottleneck
//! when it measures a real provider (docs/benchmarks.md).
//!
//! `cargo run --release -p provisio-orchestrator --example trivial_responder -- 127.0.0.1:18099`
#![allow(clippy::expect_used)]

use axum::{Router, http::header, response::IntoResponse};

async fn answer() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], r#"{"data":[]}"#)
}

#[tokio::main]
async fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18099".into());
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    println!("trivial responder on http://{addr}");
    axum::serve(listener, Router::new().fallback(answer)).await.expect("serve");
}

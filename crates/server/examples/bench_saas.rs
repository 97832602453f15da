//! A SaaS behind provisio that answers at once, for `scripts/bench-connector.sh`: the connector
//! tests' in-memory SaaS (Standard Webhooks verified on every call) on a loopback port, until killed.
//! Prints `bench SaaS listening on http://…`; the secrets are the tests' (`CONNECTOR_SECRET`,
//! `EVENTS_SECRET` in that file).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

#[path = "../tests/it/saas.rs"]
mod saas;

#[tokio::main]
async fn main() {
    let saas = saas::Saas::start().await;
    println!("bench SaaS listening on {}", saas.url);
    println!("connector secret: {}", saas::CONNECTOR_SECRET);
    println!("events secret: {}", saas::EVENTS_SECRET);
    std::future::pending::<()>().await;
}

//! End-to-end tests against the real `provisio` binary over real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod bad_input;
mod browser;
mod check_health;
mod conformance;
mod connector;
mod connector_check;
mod consent_browser;
mod crash;
mod erase_user;
mod help;
mod instances;
mod logs;
mod manifest;
// The SaaS behind provisio, as the server's connector tests run it.
#[allow(dead_code)]
#[path = "../../../server/tests/it/saas.rs"]
mod saas;
mod serve;
mod server;
// The SMTP receiver the server's consent tests send their sign-in emails to.
#[allow(dead_code)]
#[path = "../../../server/tests/it/smtp.rs"]
mod smtp;

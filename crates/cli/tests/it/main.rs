//! End-to-end tests against the real `provisio` binary over real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod bad_input;
mod browser;
mod crash;
mod instances;
mod serve;
mod server;

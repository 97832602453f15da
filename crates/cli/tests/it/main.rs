//! End-to-end tests against the real `provisio` binary over real sockets.

mod bad_input;
mod serve;
mod server;

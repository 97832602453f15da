//! Plays the orchestrator (Stripe) against any APP 0.1d provider: a signed client that the CLI, the
//! conformance suite and the load generator share.

pub mod bench;
pub mod callback;
pub mod client;
pub mod conformance;
mod connection;
pub mod pkce;
pub mod stamps;
pub mod state;

pub use client::{Auth, Client, ClientConfig, ClientError, Reply};
pub use reqwest::Method;

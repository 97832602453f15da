//! The provisio provider: an APP 0.1d provider a SaaS deploys instead of writing its own.
//!
//! `config` reads settings, `store` persists, `http` speaks the protocol; `serve` wires them up.

pub mod accept;
pub mod admin;
pub mod audit;
pub mod catalog;
pub mod client_addr;
pub mod clock;
pub mod config;
pub mod connector;
pub mod crypto;
pub mod domain;
pub mod duration;
pub mod email;
pub mod events;
/// Property checks for the fuzz targets and their corpus replay; not part of the server API.
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod metrics;
pub mod orchestrators;
pub mod rate_limit;
pub mod registration;
pub mod request_scope;
pub mod serve;
pub mod signing_secrets;
pub mod state;
pub mod store;
pub mod web;

pub use serve::{Startup, bind, prepare, run};
pub use state::AppState;

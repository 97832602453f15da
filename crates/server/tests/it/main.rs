//! Server integration tests, one binary (links are slow on two cores).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod accounts;
mod at_rest;
mod audit;
mod billing;
mod concurrency;
mod connector;
mod connector_resources;
mod consent;
mod dashboard;
mod dashboard_brand;
mod documented;
mod email;
mod fuzz_corpus;
mod idempotency;
mod inbound;
mod inbound_erase;
mod introspect;
mod metrics;
mod oauth;
mod openapi;
mod protocol_endpoints;
mod rate_limits;
mod registration;
mod replay;
mod resources;
// Shared with the cli's tests and the bench SaaS example, which each use a part of it.
#[allow(dead_code)]
mod saas;
mod signature_reuse;
mod signing_secrets;
mod slow_clients;
mod smtp;
mod startup;
mod store;
mod support;

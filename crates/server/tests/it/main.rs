//! Server integration tests, one binary (links are slow on two cores).

mod accounts;
mod at_rest;
mod concurrency;
mod oauth;
mod protocol_endpoints;
mod startup;
mod support;

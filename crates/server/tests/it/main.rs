//! Server integration tests, one binary (links are slow on two cores).

mod protocol_endpoints;
mod startup;
mod support;

//! What provisio decides: account linking, OAuth grants, bearer authentication. The domain never sees
//! HTTP; it takes validated input and answers with values or domain errors. Each decision runs as
//! one synchronous closure inside one store transaction.

pub mod accounts;
pub mod auth;
pub mod backend;
pub mod billing;
pub mod dashboard;
pub mod inbound;
pub mod introspection;
pub mod oauth;
pub mod resources;
pub mod tokens;

use crate::{crypto::RandomError, store::StoreError};

/// Failures that are not the caller's fault.
#[derive(Debug, thiserror::Error)]
pub enum Internal {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Random(#[from] RandomError),
}

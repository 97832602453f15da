//! What provisio decides: account linking, OAuth grants, bearer authentication. The domain never sees
//! HTTP; it takes validated input and answers with values or domain errors.

pub mod accounts;
pub mod auth;
pub mod oauth;
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

impl From<sqlx::Error> for Internal {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

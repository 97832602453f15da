//! Operator tasks that act on the store directly, outside the protocol.

pub mod accounts;
pub mod seed;

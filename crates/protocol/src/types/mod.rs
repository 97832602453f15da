//! Request and response bodies of every APP 0.1d endpoint (spec 5).
//!
//! Requests ignore unknown fields and treat an explicit `null` like an absent field; responses omit
//! absent optional fields rather than writing `null`.

pub mod catalog;
pub mod health;

pub use catalog::*;
pub use health::*;

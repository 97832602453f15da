//! Request and response bodies of every APP 0.1d endpoint (spec 5).
//!
//! Requests ignore unknown fields and treat an explicit `null` like an absent field; responses omit
//! absent optional fields rather than writing `null`.

pub mod account_request;
pub mod catalog;
pub mod deep_links;
pub mod health;
pub mod resources;
pub mod token;

pub use account_request::*;
pub use catalog::*;
pub use deep_links::*;
pub use health::*;
pub use resources::*;
pub use token::*;

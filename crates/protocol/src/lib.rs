//! The wire contract of the Agentic Provisioning Protocol (APP 0.1d), as provisio speaks it.
//!
//! Pure data and pure functions, no I/O: the server and the orchestrator kit both build on it, so the
//! two sides of every test agree on one definition of each body, envelope and signature.

pub mod envelope;
/// Property checks for the fuzz targets and their corpus replay; not part of the protocol API.
#[doc(hidden)]
pub mod fuzz_checks;
pub mod pkce;
pub mod signature;
pub mod types;
pub mod version;

pub use envelope::{FlatError, OAuthError, StatusError, TypedError};
pub use version::{API_VERSION, API_VERSION_HEADER};

/// The JSON Schema of a string whose values are `wire` (the wire enums and the error codes).
#[cfg(feature = "openapi")]
fn string_enum(wire: &[&str]) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(wire.iter().copied()))
        .into()
}

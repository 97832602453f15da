//! The `API-Version` header: every orchestrator call carries `API-Version: 0.1d`.

use crate::envelope::{FlatCode, FlatError};

/// The one protocol version provisio speaks.
pub const API_VERSION: &str = "0.1d";
/// Header that carries it.
pub const API_VERSION_HEADER: &str = "API-Version";

/// Checks a request's `API-Version` header value (`None` when absent).
///
/// Missing or any other value → 400 flat `invalid_api_version`.
pub fn check(value: Option<&[u8]>) -> Result<(), FlatError> {
    match value {
        Some(v) if v == API_VERSION.as_bytes() => Ok(()),
        _ => Err(FlatError::new(
            FlatCode::InvalidApiVersion,
            format!("Supported API-Versions: {API_VERSION}"),
        )),
    }
}

/// The token endpoint's variant: standard OAuth clients omit the header, so absence is fine, but a
/// present, wrong value is still refused (provisio choice, spec 3.3).
pub fn check_optional(value: Option<&[u8]>) -> Result<(), FlatError> {
    match value {
        None => Ok(()),
        some => check(some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_exact_version_only() {
        assert!(check(Some(b"0.1d")).is_ok());
        for bad in [&b""[..], b"0.1D", b"0.1c", b" 0.1d", b"0.1d "] {
            let err = check(Some(bad)).unwrap_err();
            assert_eq!(
                serde_json::to_string(&err).unwrap(),
                r#"{"error":{"code":"invalid_api_version","message":"Supported API-Versions: 0.1d"}}"#
            );
        }
        assert!(check(None).is_err());
    }

    #[test]
    fn optional_variant_allows_absence_but_not_a_wrong_value() {
        assert!(check_optional(None).is_ok());
        assert!(check_optional(Some(b"0.1d")).is_ok());
        assert!(check_optional(Some(b"2024-01-01")).is_err());
    }
}

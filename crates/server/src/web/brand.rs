//! `[dashboard]`: how the built-in dashboard presents the product — its name, a logo, an accent
//! colour, a link back to the SaaS. Read strictly and validated at start; every refusal names the
//! key. Nothing here can add a script: the accent is a checked hex colour, the URLs are escaped
//! attributes, and the logo's origin is the only source images may come from.

use reqwest::Url;
use serde::Deserialize;

use crate::connector::SetupError;

/// The product name when none is configured.
pub const DEFAULT_PRODUCT_NAME: &str = "provisio";
/// Longest product name shown.
const MAX_PRODUCT_NAME: usize = 80;
/// Longest URL accepted.
const MAX_URL: usize = 2048;
/// The pages' policy without a logo: nothing loads but inline styles.
pub const DEFAULT_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'";

/// `[dashboard]` as written in the file. Every key is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardSpec {
    /// Shown in the header and the page titles (default `provisio`).
    pub product_name: Option<String>,
    /// An https URL, or a path on provisio's own origin starting with `/`.
    pub logo_url: Option<String>,
    /// `#rgb` or `#rrggbb`: the header's rule, links and buttons.
    pub accent_color: Option<String>,
    /// Where "Back to …" leads: https, or http on a loopback host.
    pub home_url: Option<String>,
}

/// `[dashboard]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brand {
    pub product_name: String,
    pub logo_url: Option<String>,
    /// Lowercase `#rgb` or `#rrggbb`.
    pub accent_color: Option<String>,
    pub home_url: Option<String>,
    /// The pages' `Content-Security-Policy`: [`DEFAULT_CSP`], plus `img-src` for the logo's
    /// origin (`'self'` for a path) when there is a logo.
    pub content_security_policy: String,
}

impl Default for Brand {
    fn default() -> Self {
        Self {
            product_name: DEFAULT_PRODUCT_NAME.into(),
            logo_url: None,
            accent_color: None,
            home_url: None,
            content_security_policy: DEFAULT_CSP.into(),
        }
    }
}

impl Brand {
    /// Validates the section.
    pub fn new(spec: &DashboardSpec) -> Result<Self, SetupError> {
        let fail = |key, message: String| SetupError { section: "dashboard", key, message };
        let product_name = match &spec.product_name {
            None => DEFAULT_PRODUCT_NAME.to_string(),
            Some(raw) => product_name(raw).map_err(|m| fail("product_name", m))?,
        };
        let (logo_url, image_source) = match &spec.logo_url {
            None => (None, None),
            Some(raw) => {
                let (url, source) = logo_url(raw).map_err(|m| fail("logo_url", m))?;
                (Some(url), Some(source))
            }
        };
        let accent_color = spec
            .accent_color
            .as_deref()
            .map(accent_color)
            .transpose()
            .map_err(|m| fail("accent_color", m))?;
        let home_url =
            spec.home_url.as_deref().map(home_url).transpose().map_err(|m| fail("home_url", m))?;
        let content_security_policy = match &image_source {
            None => DEFAULT_CSP.to_string(),
            Some(source) => format!(
                "default-src 'none'; style-src 'unsafe-inline'; img-src {source}; form-action 'self'; frame-ancestors 'none'"
            ),
        };
        Ok(Self { product_name, logo_url, accent_color, home_url, content_security_policy })
    }
}

fn product_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_PRODUCT_NAME {
        return Err(format!("must be 1 to {MAX_PRODUCT_NAME} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(name.to_string())
}

/// The logo's URL as written, and the `img-src` source that allows it.
fn logo_url(raw: &str) -> Result<(String, String), String> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > MAX_URL {
        return Err(format!(
            "must be an https URL or a path starting with / (1 to {MAX_URL} bytes)"
        ));
    }
    if raw.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\') {
        return Err(format!("{raw:?} must not contain spaces, control characters or backslashes"));
    }
    if raw.starts_with('/') {
        // `//host/…` is a URL on another host in the scheme of the page, not a path.
        if raw.starts_with("//") {
            return Err(format!("{raw:?} is not a path: write https://host/… for another host"));
        }
        return Ok((raw.to_string(), "'self'".into()));
    }
    let url = Url::parse(raw).map_err(|_| {
        format!("{raw:?} must be an https URL or a path on this server starting with /")
    })?;
    if url.scheme() != "https" || url.host().is_none() {
        return Err(format!("{raw:?} must be https (or a path starting with /)"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{raw:?} must not carry credentials"));
    }
    let origin = crate::connector::config::origin_of(&url);
    // The origin goes into a response header: only what a host name, an address and a port are
    // made of.
    if !origin.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:/[]".contains(&b)) {
        return Err(format!("{raw:?} has a host that cannot be named in a security policy"));
    }
    Ok((url.to_string(), origin))
}

/// `#rgb` or `#rrggbb`, lowercased.
fn accent_color(raw: &str) -> Result<String, String> {
    let colour = raw.trim();
    let digits = colour.strip_prefix('#').unwrap_or_default();
    if (digits.len() == 3 || digits.len() == 6) && digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(colour.to_ascii_lowercase())
    } else {
        Err(format!("{raw:?} must be a colour written #rgb or #rrggbb"))
    }
}

/// https, or http to a loopback host (development).
fn home_url(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.len() > MAX_URL {
        return Err(format!("must be at most {MAX_URL} bytes"));
    }
    let url = Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{raw:?} must not carry credentials"));
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(url.to_string()),
        "http" if crate::connector::config::is_loopback(&url) => Ok(url.to_string()),
        _ => Err(format!("{raw:?} must be https (or http on a loopback host)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(key: &str, value: &str) -> DashboardSpec {
        let mut spec = DashboardSpec::default();
        let value = Some(value.to_string());
        match key {
            "product_name" => spec.product_name = value,
            "logo_url" => spec.logo_url = value,
            "accent_color" => spec.accent_color = value,
            _ => spec.home_url = value,
        }
        spec
    }

    fn refused(key: &'static str, value: &str) -> SetupError {
        let error = Brand::new(&spec(key, value)).unwrap_err();
        assert_eq!((error.section, error.key), ("dashboard", key), "{value:?}: {error}");
        error
    }

    #[test]
    fn nothing_configured_is_todays_look() {
        let brand = Brand::new(&DashboardSpec::default()).unwrap();
        assert_eq!(brand, Brand::default());
        assert_eq!(brand.product_name, "provisio");
        assert_eq!(brand.content_security_policy, DEFAULT_CSP);
    }

    #[test]
    fn good_values_are_kept() {
        let brand = Brand::new(&DashboardSpec {
            product_name: Some("  Acme Analytics ".into()),
            logo_url: Some("https://cdn.acme.example:8443/logo.svg".into()),
            accent_color: Some("#FF6600".into()),
            home_url: Some("https://app.acme.example/settings".into()),
        })
        .unwrap();
        assert_eq!(brand.product_name, "Acme Analytics");
        assert_eq!(brand.accent_color.as_deref(), Some("#ff6600"));
        assert_eq!(brand.home_url.as_deref(), Some("https://app.acme.example/settings"));
        assert!(
            brand.content_security_policy.contains("; img-src https://cdn.acme.example:8443; "),
            "{}",
            brand.content_security_policy
        );
        let local = Brand::new(&spec("logo_url", "/brand/logo.png")).unwrap();
        assert_eq!(local.logo_url.as_deref(), Some("/brand/logo.png"));
        assert!(local.content_security_policy.contains("img-src 'self';"));
        assert!(Brand::new(&spec("accent_color", "#0a3")).is_ok());
        assert!(Brand::new(&spec("home_url", "http://127.0.0.1:3000/")).is_ok());
        assert!(Brand::new(&spec("home_url", "http://localhost:3000/")).is_ok());
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        for bad in ["", "   ", "a\u{7}b", &"x".repeat(81)] {
            refused("product_name", bad);
        }
        for bad in [
            "http://cdn.example/logo.png",
            "//cdn.example/logo.png",
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
            "logo.png",
            "https://user:pw@cdn.example/logo.png",
            "https://cdn.example/a logo.png",
            "/a\\b",
            "",
        ] {
            refused("logo_url", bad);
        }
        for bad in ["red", "#12", "#1234", "#gggggg", "ff6600", "#ff6600;x", "#ff660000"] {
            refused("accent_color", bad);
        }
        for bad in ["http://app.example/", "ftp://app.example/", "/home", "javascript:alert(1)"] {
            refused("home_url", bad);
        }
        let error = refused("accent_color", "red");
        assert!(error.to_string().starts_with("[dashboard] accent_color: "), "{error}");
    }
}

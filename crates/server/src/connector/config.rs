//! `[connector]` and `[events]`: read strictly, validated at start. Every refusal names the key, so
//! an operator fixes the file from the message alone.

use std::{net::IpAddr, time::Duration};

use reqwest::Url;
use serde::Deserialize;

use super::webhook::{Signer, SignerError};

/// `[connector]` as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorSpec {
    /// Each operation is POSTed to `url + "/" + operation`.
    pub url: String,
    /// Environment variable holding the Standard Webhooks secret(s), space-separated while rotating.
    pub secret_env: String,
    /// One attempt.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Every connector call made for one orchestrator request, together.
    #[serde(default = "default_deadline_ms")]
    pub deadline_ms: u64,
    /// `dashboard.login` URLs must be on this origin.
    pub dashboard_origin: String,
    /// Allows `http://` to a host that is not loopback.
    #[serde(default)]
    pub allow_insecure_http: bool,
}

/// `[events]` as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsSpec {
    pub url: String,
    pub secret_env: String,
    /// An event older than this is given up on (it stays listed as failed).
    #[serde(default = "default_max_age_hours")]
    pub max_age_hours: u64,
    #[serde(default)]
    pub allow_insecure_http: bool,
}

fn default_timeout_ms() -> u64 {
    3000
}

fn default_deadline_ms() -> u64 {
    10_000
}

fn default_max_age_hours() -> u64 {
    72
}

/// A start refused: which key of which section, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[{section}] {key}: {message}")]
pub struct SetupError {
    pub section: &'static str,
    pub key: &'static str,
    pub message: String,
}

/// The connector as validated.
#[derive(Debug, Clone)]
pub struct ConnectorSettings {
    pub url: Url,
    pub signer: Signer,
    pub timeout: Duration,
    pub deadline: Duration,
    /// `scheme://host[:port]`, as the browser's origin is written.
    pub dashboard_origin: String,
}

/// The events receiver as validated.
#[derive(Debug, Clone)]
pub struct EventsSettings {
    pub url: Url,
    pub signer: Signer,
    pub max_age: Duration,
}

impl ConnectorSpec {
    /// Validates the section; `env` reads an environment variable (the process's, or a test's).
    pub fn validate(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ConnectorSettings, SetupError> {
        let fail = |key, message: String| SetupError { section: "connector", key, message };
        let url = endpoint_url(&self.url, self.allow_insecure_http).map_err(|m| fail("url", m))?;
        let signer = signer(&self.secret_env, env).map_err(|m| fail("secret_env", m))?;
        if self.timeout_ms == 0 {
            return Err(fail("timeout_ms", "must be positive".into()));
        }
        if self.deadline_ms < self.timeout_ms {
            return Err(fail(
                "deadline_ms",
                format!("must be at least timeout_ms ({})", self.timeout_ms),
            ));
        }
        let origin = endpoint_url(&self.dashboard_origin, self.allow_insecure_http)
            .map_err(|m| fail("dashboard_origin", m))?;
        if origin.path() != "/" || origin.query().is_some() || origin.fragment().is_some() {
            return Err(fail(
                "dashboard_origin",
                format!(
                    "{:?} is not an origin: write scheme://host[:port] without a path",
                    self.dashboard_origin
                ),
            ));
        }
        Ok(ConnectorSettings {
            url,
            signer,
            timeout: Duration::from_millis(self.timeout_ms),
            deadline: Duration::from_millis(self.deadline_ms),
            dashboard_origin: origin_of(&origin),
        })
    }
}

impl EventsSpec {
    pub fn validate(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<EventsSettings, SetupError> {
        let fail = |key, message: String| SetupError { section: "events", key, message };
        let url = endpoint_url(&self.url, self.allow_insecure_http).map_err(|m| fail("url", m))?;
        let signer = signer(&self.secret_env, env).map_err(|m| fail("secret_env", m))?;
        if self.max_age_hours == 0 {
            return Err(fail("max_age_hours", "must be positive".into()));
        }
        Ok(EventsSettings {
            url,
            signer,
            max_age: Duration::from_secs(self.max_age_hours.saturating_mul(3600)),
        })
    }
}

fn signer(var: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Signer, String> {
    if var.trim().is_empty() {
        return Err("must name an environment variable".into());
    }
    let value = env(var).ok_or_else(|| format!("environment variable {var} is not set"))?;
    Signer::from_secrets(&value).map_err(|e| match e {
        SignerError::Empty => format!("environment variable {var} is empty"),
        e => format!("environment variable {var}: {e}"),
    })
}

/// An absolute http(s) URL; plain http only to a loopback host unless explicitly allowed.
fn endpoint_url(raw: &str, allow_insecure_http: bool) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{raw:?} must not carry credentials"));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if allow_insecure_http || is_loopback(&url) => Ok(url),
        "http" => Err(format!(
            "{raw:?} is plain http to a host that is not loopback: use https, or set allow_insecure_http = true"
        )),
        other => Err(format!("{raw:?} has scheme {other:?}: use https")),
    }
}

/// Whether `url`'s host is `localhost` or a loopback address.
pub fn is_loopback(url: &Url) -> bool {
    match url.host_str() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// The origin of a URL as a browser writes it (default ports left out).
pub fn origin_of(url: &Url) -> String {
    url.origin().ascii_serialization()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn env(var: &str) -> Option<String> {
        (var == "SECRET").then(|| SECRET.to_string())
    }

    fn spec(url: &str) -> ConnectorSpec {
        ConnectorSpec {
            url: url.into(),
            secret_env: "SECRET".into(),
            timeout_ms: 3000,
            deadline_ms: 10_000,
            dashboard_origin: "https://app.example.com".into(),
            allow_insecure_http: false,
        }
    }

    #[test]
    fn https_and_loopback_http_are_accepted() {
        for url in [
            "https://saas.internal/provisio/v1",
            "http://127.0.0.1:9000/v1",
            "http://localhost/v1",
            "http://[::1]:80/v1",
        ] {
            spec(url).validate(&env).unwrap();
        }
    }

    #[test]
    fn refusals_name_the_key() {
        let err = spec("http://saas.internal/v1").validate(&env).unwrap_err();
        assert_eq!((err.section, err.key), ("connector", "url"));
        assert!(err.to_string().starts_with("[connector] url: "), "{err}");
        let insecure = ConnectorSpec { allow_insecure_http: true, ..spec("http://saas.internal") };
        insecure.validate(&env).unwrap();

        let err = ConnectorSpec { secret_env: "MISSING".into(), ..spec("https://a.example") }
            .validate(&env)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "[connector] secret_env: environment variable MISSING is not set"
        );

        let err = ConnectorSpec { deadline_ms: 100, ..spec("https://a.example") }
            .validate(&env)
            .unwrap_err();
        assert_eq!(err.key, "deadline_ms");

        let err = ConnectorSpec {
            dashboard_origin: "https://app.example.com/dashboard".into(),
            ..spec("https://a.example")
        }
        .validate(&env)
        .unwrap_err();
        assert_eq!(err.key, "dashboard_origin");

        let bad_secret = |var: &str| (var == "SECRET").then(|| "whsec_c2hvcnQ=".to_string());
        let err = spec("https://a.example").validate(&bad_secret).unwrap_err();
        assert_eq!(err.key, "secret_env");
        assert!(err.message.contains("24 to 64 bytes"), "{err}");
    }

    #[test]
    fn the_origin_is_normalized() {
        let settings = ConnectorSpec {
            dashboard_origin: "https://App.Example.com:443".into(),
            ..spec("https://a.example")
        }
        .validate(&env)
        .unwrap();
        assert_eq!(settings.dashboard_origin, "https://app.example.com");
    }
}

//! Configuration: flags and `PROVISIO_*` environment variables for the process, an optional TOML file
//! for what an operator curates (orchestrators, catalog, limits). Flags win over the file.

use std::{
    net::SocketAddr,
    num::{NonZeroU64, NonZeroUsize},
    path::PathBuf,
    time::Duration,
};

use serde::Deserialize;

use crate::{
    catalog::{Catalog, CatalogError, ServiceSpec},
    domain::billing::{BillingConfig, BillingSetupError},
    orchestrators::{LinkingPolicy, Orchestrator, ResponseMode, TokenSettings},
};

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default database: an SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://provisio.db";

/// `provisio serve` settings; each is a flag and an environment variable.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PROVISIO_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Orchestrator signing secret(s), comma-separated while rotating. Without one (and none in the
    /// config file) provisio generates a secret on first start and keeps it in the database.
    #[arg(long, env = "PROVISIO_SIGNING_SECRET", hide_env_values = true, value_delimiter = ',')]
    pub signing_secret: Option<Vec<String>>,
    /// Public base URL of this provider, used in `host` and in deep links.
    #[arg(long, env = "PROVISIO_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// TOML file with orchestrators, the catalog and limits.
    #[arg(long, env = "PROVISIO_CONFIG")]
    pub config: Option<PathBuf>,
    /// Operator token(s) for `POST /v1/keys/introspect`, comma-separated; none disables it.
    #[arg(
        long,
        env = "PROVISIO_INTROSPECTION_TOKEN",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub introspection_token: Vec<String>,
    /// Operator token(s) with which the SaaS calls `POST /v1/connector/…` (revoke a user, a project
    /// removed, erase a user), comma-separated while rotating; none: those endpoints do not exist.
    #[arg(long, env = "PROVISIO_OPERATOR_TOKEN", hide_env_values = true, value_delimiter = ',')]
    pub operator_token: Vec<String>,
    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(long, env = "PROVISIO_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}

/// Where the store is; shared by `serve`, `migrate` and `admin`.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// Database URL: `sqlite://path` (created if missing) or `postgres://user[:password]@host/db`
    /// (`?sslmode=disable|prefer|require|verify-full`, as libpq; `verify-full` checks the
    /// certificate against the Mozilla roots and `--database-ca-file`).
    #[arg(long, env = "PROVISIO_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// PostgreSQL connections this process keeps open, each on its own thread (default: twice
    /// this machine's cores plus two, the classic starting point; more mostly adds contention).
    #[arg(long, env = "PROVISIO_DATABASE_POOL_SIZE", default_value_t = default_pool_size())]
    pub database_pool_size: usize,
    /// PEM file of CA certificates trusted for PostgreSQL TLS besides the Mozilla roots.
    #[arg(long, env = "PROVISIO_DATABASE_CA_FILE")]
    pub database_ca_file: Option<PathBuf>,
}

fn default_pool_size() -> usize {
    std::thread::available_parallelism().map_or(4, |n| n.get()) * 2 + 2
}

impl DatabaseArgs {
    pub fn pool_options(&self) -> crate::store::PoolOptions {
        crate::store::PoolOptions {
            max_connections: self.database_pool_size.max(1),
            ca_file: self.database_ca_file.clone(),
        }
    }

    /// Opens the store and applies pending migrations.
    pub async fn open(&self) -> Result<crate::store::Store, crate::store::StoreError> {
        crate::store::Store::open_with(&self.database_url, &self.pool_options()).await
    }

    /// [`DatabaseArgs::open`] for a database that exists (admin commands): a missing SQLite file
    /// is an error saying where it was looked for.
    pub async fn open_existing(&self) -> Result<crate::store::Store, crate::store::StoreError> {
        crate::store::Store::open_existing_with(&self.database_url, &self.pool_options()).await
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The TOML file. Every section is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub orchestrators: Vec<OrchestratorSpec>,
    /// When present, replaces the built-in catalog wholesale.
    pub services: Option<Vec<ServiceSpec>>,
    /// How payment tokens are turned into paid plans (built-in mode; absent: `record`).
    pub billing: Option<BillingConfig>,
    #[serde(default)]
    pub rate_limits: crate::rate_limit::RateLimits,
    /// Present → connector mode: the SaaS behind provisio owns the accounts and resources.
    pub connector: Option<crate::connector::ConnectorSpec>,
    /// Present → events are written to the outbox and delivered to the SaaS.
    pub events: Option<crate::connector::EventsSpec>,
    /// How the consent leg sends sign-in links; absent: `.eml` files in an outbox folder.
    pub email: Option<crate::email::EmailSpec>,
    /// What account requests may carry (their `configuration`'s schema, the scopes granted).
    #[serde(default)]
    pub accounts: crate::registration::AccountsSpec,
    /// How the product presents itself to agents (`/llm-context.md`).
    #[serde(default)]
    pub provider: crate::registration::ProviderSpec,
    /// How the built-in dashboard presents the product (name, logo, accent, link home).
    #[serde(default)]
    pub dashboard: crate::web::DashboardSpec,
}

/// Protocol limits (spec 3.1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// How far a signature timestamp may be from now, either way.
    pub signature_tolerance_secs: u64,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// A request still running after this long is answered 503 flat `timeout`.
    pub request_timeout_secs: u64,
    /// How often the signing secrets kept in the database (`provisio admin signing-secret`) are
    /// reloaded: an added or retired secret takes effect on every instance within this long.
    pub signing_secrets_refresh_secs: u64,
    /// A connection that has not sent a whole request head this long after it opened (or after
    /// its previous answer) is closed.
    pub header_read_timeout_secs: NonZeroU64,
    /// Connections open at once; past it a new one is answered 503 and closed.
    pub max_connections: NonZeroUsize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            signature_tolerance_secs: provisio_protocol::signature::DEFAULT_TOLERANCE_SECS,
            max_body_bytes: 1024 * 1024,
            request_timeout_secs: 30,
            signing_secrets_refresh_secs: 5,
            header_read_timeout_secs: NonZeroU64::new(10).unwrap_or(NonZeroU64::MIN),
            max_connections: NonZeroUsize::new(1024).unwrap_or(NonZeroUsize::MIN),
        }
    }
}

impl Limits {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// The bounds of the accept loop; `max_connections` fitted to the open-files limit.
    pub fn connections(&self) -> crate::accept::ConnectionLimits {
        crate::accept::ConnectionLimits {
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs.get()),
            max_connections: crate::accept::fit_to_open_files(
                self.max_connections.get(),
                crate::accept::open_files_limit(),
            ),
        }
    }
}

/// One orchestrator allowed to call this provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrchestratorSpec {
    /// Short stable name, e.g. `stripe`.
    pub name: String,
    /// Human label, used in default organization names; defaults to the name.
    pub label: Option<String>,
    /// Signing secrets; several while rotating.
    #[serde(default)]
    pub signing_secrets: Vec<String>,
    /// Name of an environment variable holding comma-separated secrets, so the file holds none.
    pub signing_secrets_env: Option<String>,
    /// `link` (default) or `consent`.
    #[serde(default)]
    pub linking: LinkingPolicy,
    /// `oauth` (default) or `credentials`.
    #[serde(default)]
    pub response: ResponseMode,
    #[serde(default)]
    pub tokens: TokenSettings,
    /// Where the consent leg sends the browser back (required with `linking = "consent"`): https,
    /// or http on a loopback host for development.
    pub callback_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("orchestrator {name:?}: {message}")]
    Orchestrator { name: String, message: String },
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Billing(#[from] BillingSetupError),
    #[error(transparent)]
    Connector(#[from] crate::connector::SetupError),
}

impl FileConfig {
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.into(), source })?;
        Self::parse(&text).map_err(|message| ConfigError::Parse { path: path.into(), message })
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// The connector and the events receiver this file configures, validated against the process's
    /// environment (where their secrets are).
    pub fn integrations(
        &self,
    ) -> Result<
        (Option<crate::connector::Connector>, Option<crate::connector::EventsSettings>),
        ConfigError,
    > {
        let env = |var: &str| std::env::var(var).ok();
        let connector = match &self.connector {
            // In connector mode payment is the SaaS's: a billing backend would lead nowhere.
            Some(_) if self.billing.is_some() => {
                return Err(crate::connector::SetupError {
                    section: "billing",
                    key: "backend",
                    message: "payment tokens go to the SaaS in connector mode; remove [billing]"
                        .into(),
                }
                .into());
            }
            Some(spec) => {
                let settings = spec.validate(&env)?;
                Some(crate::connector::Connector::new(settings).map_err(|message| {
                    crate::connector::SetupError { section: "connector", key: "url", message }
                })?)
            }
            None => None,
        };
        let events = self.events.as_ref().map(|spec| spec.validate(&env)).transpose()?;
        Ok((connector, events))
    }

    /// `[accounts]`, validated.
    pub fn accounts(&self) -> Result<crate::registration::AccountSettings, ConfigError> {
        Ok(crate::registration::AccountSettings::new(&self.accounts)?)
    }

    /// `[dashboard]`, validated.
    pub fn dashboard(&self) -> Result<crate::web::Brand, ConfigError> {
        Ok(crate::web::Brand::new(&self.dashboard)?)
    }

    /// The catalog this file asks for: its own services, or the built-in default.
    pub fn catalog(&self) -> Result<Catalog, ConfigError> {
        Ok(match &self.services {
            Some(specs) => Catalog::from_specs(specs)?,
            None => Catalog::default_catalog(),
        })
    }
}

impl OrchestratorSpec {
    /// The secrets of this orchestrator, from the file and from its environment variable.
    pub fn resolve_secrets(&self) -> Result<Vec<String>, ConfigError> {
        let mut secrets: Vec<String> = self.signing_secrets.clone();
        if let Some(var) = &self.signing_secrets_env {
            let value = std::env::var(var).map_err(|_| ConfigError::Orchestrator {
                name: self.name.clone(),
                message: format!("signing_secrets_env: environment variable {var} is not set"),
            })?;
            secrets.extend(split_secrets(&value));
        }
        Ok(secrets)
    }

    /// The orchestrator this entry configures.
    pub fn build(&self) -> Result<Orchestrator, ConfigError> {
        let tokens = &self.tokens;
        for (field, prefix) in [
            ("access_token_prefix", &tokens.access_token_prefix),
            ("refresh_token_prefix", &tokens.refresh_token_prefix),
        ] {
            if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(ConfigError::Orchestrator {
                    name: self.name.clone(),
                    message: format!("tokens.{field} must be non-empty ASCII letters and digits"),
                });
            }
        }
        if tokens.access_token_ttl_secs == 0 {
            return Err(ConfigError::Orchestrator {
                name: self.name.clone(),
                message: "tokens.access_token_ttl_secs must be positive".into(),
            });
        }
        let callback_url = match (&self.callback_url, self.linking) {
            (None, LinkingPolicy::Consent) => {
                return Err(ConsentConfig::missing(&self.name));
            }
            (Some(url), _) => {
                Some(callback_url(url).map_err(|message| ConfigError::Orchestrator {
                    name: self.name.clone(),
                    message: format!("callback_url: {message}"),
                })?)
            }
            (None, LinkingPolicy::Link) => None,
        };
        let mut orchestrator =
            Orchestrator::new(&self.name, self.label.clone(), &self.resolve_secrets()?);
        orchestrator.callback_url = callback_url;
        orchestrator.linking = self.linking;
        orchestrator.response = self.response;
        orchestrator.tokens = self.tokens.clone();
        Ok(orchestrator)
    }
}

/// The consent leg's configuration errors.
struct ConsentConfig;

impl ConsentConfig {
    fn missing(name: &str) -> ConfigError {
        ConfigError::Orchestrator {
            name: name.into(),
            message:
                "callback_url is required with linking = \"consent\" (where the browser returns)"
                    .into(),
        }
    }
}

/// A callback URL: absolute https, or http to a loopback host (a CLI's listener in development).
fn callback_url(raw: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    let loopback = crate::connector::config::is_loopback(&url);
    match url.scheme() {
        "https" if url.host().is_some() => Ok(url.to_string()),
        "http" if loopback => Ok(url.to_string()),
        _ => Err(format!("{raw:?} must be https (or http on a loopback host)")),
    }
}

/// Splits a comma-separated secret list, dropping blanks.
pub fn split_secrets(value: &str) -> impl Iterator<Item = String> + '_ {
    value.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_all_defaults() {
        let cfg = FileConfig::parse("").unwrap();
        assert_eq!(cfg.limits.signature_tolerance_secs, 300);
        assert_eq!(cfg.limits.max_body_bytes, 1 << 20);
        assert!(cfg.orchestrators.is_empty());
        assert_eq!(cfg.catalog().unwrap().services().len(), 3);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = FileConfig::parse("[limits]\nsignature_tolerance = 5\n").unwrap_err();
        assert!(err.contains("signature_tolerance"), "{err}");
    }

    #[test]
    fn orchestrator_secrets_from_file_and_env() {
        let cfg = FileConfig::parse(
            "[[orchestrators]]\nname = \"stripe\"\nsigning_secrets = [\"a\"]\nsigning_secrets_env = \"PROVISIO_TEST_SECRETS_XYZ\"\n",
        )
        .unwrap();
        let err = cfg.orchestrators[0].resolve_secrets().unwrap_err();
        assert!(err.to_string().contains("PROVISIO_TEST_SECRETS_XYZ"));
    }
}

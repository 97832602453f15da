//! `provisio conformance`: the APP 0.1d checklist, run against any provider over HTTP.
//!
//! Each check makes the data it needs through the protocol (fresh emails under the configured
//! domain), sends its requests with every header set by hand, and judges the answer against the
//! spec. Where the spec allows more than one answer, a check accepts each of them; checks that test
//! the choice provisio made where the spec leaves one open (or is silent) are tagged
//! [`Scope::Provisio`] and can be skipped; so can the checks of provisio's built-in backend
//! ([`Tag::Builtin`]), which a provider in connector mode does not have.

mod expect;
mod fixtures;
mod groups;
mod report;
mod runner;
mod schemas;
mod wire;

pub use report::{CheckResult, Outcome, Report, Scope, Tag};

/// Where the provider is and how to run the suite against it.
#[derive(Debug, Clone)]
pub struct Config {
    pub base_url: String,
    pub signing_secret: String,
    /// Domain of the emails the suite signs up (never a real one).
    pub email_domain: String,
    /// Prefix the provider mounts the protocol under, e.g. `/api/agentic`; empty for none.
    pub path_prefix: String,
    /// Token endpoint; defaults to `<base_url>/oauth/token`.
    pub token_url: Option<String>,
    /// Run only these groups; empty runs all.
    pub only: Vec<Group>,
    /// Skip the checks of provisio's own choices.
    pub strict_protocol_only: bool,
    /// Skip the checks carrying any of these tags (reported as skipped).
    pub skip_tags: Vec<Tag>,
}

/// The default domain of the suite's emails.
pub const DEFAULT_EMAIL_DOMAIN: &str = "conformance.provisio.test";

impl Config {
    pub fn new(base_url: impl Into<String>, signing_secret: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            signing_secret: signing_secret.into(),
            email_domain: DEFAULT_EMAIL_DOMAIN.into(),
            path_prefix: String::new(),
            token_url: None,
            only: Vec::new(),
            strict_protocol_only: false,
            skip_tags: Vec::new(),
        }
    }
}

/// The check groups, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Health,
    Services,
    Signature,
    ApiVersion,
    Envelopes,
    CheckOrder,
    Accounts,
    OAuth,
    Resources,
    DeepLinks,
}

impl Group {
    pub const ALL: [Self; 10] = [
        Self::Health,
        Self::Services,
        Self::Signature,
        Self::ApiVersion,
        Self::Envelopes,
        Self::CheckOrder,
        Self::Accounts,
        Self::OAuth,
        Self::Resources,
        Self::DeepLinks,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Health => "health",
            Self::Services => "services",
            Self::Signature => "signature",
            Self::ApiVersion => "api_version",
            Self::Envelopes => "envelopes",
            Self::CheckOrder => "check_order",
            Self::Accounts => "accounts",
            Self::OAuth => "oauth",
            Self::Resources => "resources",
            Self::DeepLinks => "deep_links",
        }
    }

    pub fn parse(name: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|g| g.as_str() == name).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|g| g.as_str()).collect();
            format!("unknown group {name:?} (one of: {})", names.join(", "))
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConformanceError {
    #[error(transparent)]
    Client(crate::ClientError),
    #[error("a shipped JSON Schema does not compile: {0}")]
    Schema(String),
}

/// What the provider makes of the configured secret, asked once before a run: one correctly signed
/// `GET /provisioning/health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preflight {
    /// Any answer but a signature refusal: the suite can run (the checks judge the answer).
    Accepted,
    /// 401 `invalid_signature` to a request signed with the configured secret: the provider is not
    /// configured with it, and every check that signs would fail for that one reason. The answer, as
    /// `<status> <body>`.
    SecretRefused(String),
    /// No answer at all (connection refused, DNS, TLS, timeout): why.
    Unreachable(String),
}

/// Asks the provider's health endpoint once with the configured secret (see [`Preflight`]).
pub async fn preflight(config: &Config) -> Result<Preflight, ConformanceError> {
    let cx = wire::Ctx::new(config)?;
    let reply = match cx.get(wire::HEALTH).send().await {
        Ok(reply) => reply,
        Err(why) => return Ok(Preflight::Unreachable(why)),
    };
    let body = reply.json.as_ref();
    let code = body.and_then(|b| b["error"]["code"].as_str().or_else(|| b["error"].as_str()));
    Ok(if reply.status == 401 && code == Some("invalid_signature") {
        Preflight::SecretRefused(expect::summarize(&reply))
    } else {
        Preflight::Accepted
    })
}

/// Runs the selected groups one check after another and reports every result.
pub async fn run(config: &Config) -> Result<Report, ConformanceError> {
    let cx = wire::Ctx::new(config)?;
    let selection = runner::Selection {
        strict_protocol_only: config.strict_protocol_only,
        skip_tags: config.skip_tags.clone(),
    };
    let mut results = Vec::new();
    for group in Group::ALL {
        if !config.only.is_empty() && !config.only.contains(&group) {
            continue;
        }
        let mut recorder = runner::Recorder::new(group, &selection, &cx.schemas);
        groups::run(group, &cx, &mut recorder).await;
        results.extend(recorder.finish());
    }
    Ok(Report::new(&config.base_url, results))
}

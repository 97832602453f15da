//! `provisio serve`: resolve configuration, open the store, bind, answer until SIGTERM/SIGINT.

use std::{net::SocketAddr, time::Duration};

use tokio::net::TcpListener;

use crate::{
    catalog::CatalogError,
    clock::Clock,
    config::{ConfigError, FileConfig, ServeArgs, split_secrets},
    crypto,
    domain::billing::Billing,
    orchestrators::{Orchestrator, Orchestrators},
    state::{AppState, Parts},
    store::{Store, StoreError},
};

/// The orchestrator the `--signing-secret` flag configures.
pub const DEFAULT_ORCHESTRATOR: &str = "stripe";
const DEFAULT_ORCHESTRATOR_LABEL: &str = "Stripe";
const GENERATED_SECRET_KEY: &str = "generated_signing_secret";
/// Key material for sealing recorded responses, generated once per database.
const SERVER_SECRET_KEY: &str = "server_secret";

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Random(#[from] crypto::RandomError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
}

impl From<CatalogError> for ServeError {
    fn from(e: CatalogError) -> Self {
        Self::Config(e.into())
    }
}

/// Everything resolved before the socket opens.
pub struct Startup {
    pub state: AppState,
    /// Where the signing secret comes from, for the start banner.
    pub secret: SigningSecret,
    /// Held for the process's life on a SQLite database.
    _lock: Option<crate::store::ServeLock>,
}

/// Where the `stripe` orchestrator's signing secret comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigningSecret {
    /// Configured: `hint` is what to pass as `--signing-secret` to sign a call by hand.
    Configured { hint: String },
    /// Generated and kept in the database, for a first run; printed once, when generated (`new`).
    Generated { secret: String, new: bool },
}

/// Resolves configuration and opens the store; refuses to start on any invalid setting.
/// `listening` is the bound address: the default public URL is built from it, so that
/// `--listen 127.0.0.1:0` still hands out links with the real port.
pub async fn prepare(
    args: &ServeArgs,
    clock: Clock,
    listening: SocketAddr,
) -> Result<Startup, ServeError> {
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let catalog = file.catalog()?;
    let accounts = file.accounts()?;
    let dashboard = file.dashboard()?;
    // Everything the configuration and the environment can get wrong is checked before the
    // database is touched: a refused start leaves no database behind.
    let public_url = args.public_url.clone().unwrap_or_else(|| format!("http://{listening}"));
    let billing = Billing::from_config(&file.billing.clone().unwrap_or_default())
        .map_err(ConfigError::from)?;
    let (connector, events) = file.integrations()?;
    if connector.is_some() && args.introspection_token.iter().any(|t| !t.trim().is_empty()) {
        // provisio issues no keys in connector mode: there is nothing for it to introspect.
        return Err(ConfigError::from(crate::connector::SetupError {
            section: "connector",
            key: "--introspection-token",
            message: "keys are the SaaS's in connector mode, so introspection is too; unset it"
                .into(),
        })
        .into());
    }
    let configured = configured_orchestrators(args, &file)?;
    let mailer = match &configured {
        Some((orchestrators, _)) => mailer(&file, orchestrators, &args.database.database_url)?,
        None => mailer(&file, &Orchestrators::new(vec![]), &args.database.database_url)?,
    };
    // One `serve` per SQLite file: its idempotency claims, signature bindings and rate limits live
    // in this process's memory.
    let lock = crate::store::ServeLock::acquire(&args.database.database_url)?;
    let store = args.database.open().await?;
    let (orchestrators, secret) = match configured {
        Some((orchestrators, hint)) => (orchestrators, SigningSecret::Configured { hint }),
        None => generated_orchestrator(&store, &clock).await?,
    };
    let server_secret = server_secret(&store, clock.now()).await?;
    let state = AppState::new(Parts {
        store,
        orchestrators,
        catalog,
        limits: file.limits,
        public_url,
        clock,
        billing,
        introspection_tokens: args.introspection_token.clone(),
        operator_tokens: args.operator_token.clone(),
        server_secret: server_secret.into_bytes(),
        rate_limits: file.rate_limits,
        connector,
        events,
        mailer,
        accounts,
        provider: file.provider.clone(),
        dashboard,
    });
    Ok(Startup { state, secret, _lock: lock })
}

/// How the consent leg sends its sign-in links: `[email]`, or — when an orchestrator uses consent
/// and nothing is configured — `.eml` files in `outbox/` beside the database (development; `serve`
/// says so loudly). No consent orchestrator, no `[email]`: no mailer.
fn mailer(
    file: &FileConfig,
    orchestrators: &Orchestrators,
    database_url: &str,
) -> Result<Option<crate::email::Mailer>, ServeError> {
    if let Some(spec) = &file.email {
        let env = |var: &str| std::env::var(var).ok();
        return Ok(Some(spec.validate(&env).map_err(ConfigError::from)?));
    }
    let consent = orchestrators
        .all()
        .iter()
        .any(|o| o.linking == crate::orchestrators::LinkingPolicy::Consent);
    if !consent {
        return Ok(None);
    }
    let beside = database_url
        .strip_prefix("sqlite://")
        .map(|path| std::path::Path::new(path.split('?').next().unwrap_or(path)))
        .and_then(std::path::Path::parent)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map_or_else(|| std::path::PathBuf::from("."), std::path::Path::to_path_buf);
    Ok(Some(crate::email::Mailer::outbox(beside.join("outbox"))))
}

/// The database's server secret (key material for sealing recorded responses and the signing
/// secrets kept in the database), generated by whoever needs it first.
pub async fn server_secret(store: &Store, now: i64) -> Result<String, ServeError> {
    Ok(store.setting_or_insert(SERVER_SECRET_KEY, &crypto::random_secret()?, now).await?)
}

/// The orchestrators the flags and the file configure, with the hint for signing a call by hand:
/// flag secrets configure `stripe` (overriding the file's secrets for it); the file configures the
/// rest. `None`: nothing is configured, and a secret is generated once and kept in the database.
fn configured_orchestrators(
    args: &ServeArgs,
    file: &FileConfig,
) -> Result<Option<(Orchestrators, String)>, ServeError> {
    let mut list =
        file.orchestrators.iter().map(|spec| spec.build()).collect::<Result<Vec<_>, _>>()?;
    if let Some(flag) = &args.signing_secret {
        let secrets: Vec<String> = flag.iter().flat_map(|s| split_secrets(s)).collect();
        match list.iter_mut().find(|o| o.name == DEFAULT_ORCHESTRATOR) {
            Some(stripe) => *stripe = stripe.clone().with_secrets(&secrets),
            None => list.insert(
                0,
                Orchestrator::new(
                    DEFAULT_ORCHESTRATOR,
                    Some(DEFAULT_ORCHESTRATOR_LABEL.into()),
                    &secrets,
                ),
            ),
        }
        return Ok(Some((Orchestrators::new(list), "\"$PROVISIO_SIGNING_SECRET\"".into())));
    }
    if list.is_empty() {
        return Ok(None);
    }
    let first = file
        .orchestrators
        .iter()
        .find(|spec| spec.name == DEFAULT_ORCHESTRATOR)
        .or_else(|| file.orchestrators.first());
    let hint = match first.and_then(|spec| spec.signing_secrets_env.as_deref()) {
        Some(var) => format!("\"${var}\""),
        None => "<a secret of signing_secrets in the config file>".into(),
    };
    Ok(Some((Orchestrators::new(list), hint)))
}

/// The `stripe` orchestrator with the secret kept in the database, generated by the first start.
async fn generated_orchestrator(
    store: &Store,
    clock: &Clock,
) -> Result<(Orchestrators, SigningSecret), ServeError> {
    let candidate = crypto::random_token("whsec")?;
    let secret = store.setting_or_insert(GENERATED_SECRET_KEY, &candidate, clock.now()).await?;
    let orchestrator = Orchestrator::new(
        DEFAULT_ORCHESTRATOR,
        Some(DEFAULT_ORCHESTRATOR_LABEL.into()),
        std::slice::from_ref(&secret),
    );
    let new = secret == candidate;
    Ok((Orchestrators::new(vec![orchestrator]), SigningSecret::Generated { secret, new }))
}

/// Opens the listening socket.
pub async fn bind(args: &ServeArgs) -> Result<TcpListener, ServeError> {
    TcpListener::bind(args.listen)
        .await
        .map_err(|source| ServeError::Bind { addr: args.listen, source })
}

/// Serves until SIGTERM or SIGINT, then drains in-flight requests.
pub async fn run(listener: TcpListener, startup: Startup) -> Result<(), ServeError> {
    let addr = listener.local_addr()?;
    let shutdown = shutdown_signal();
    print_banner(addr, &startup);
    let store = startup.state.store.clone();
    tokio::spawn(housekeeping(store.clone(), startup.state.clock.clone()));
    start_integrations(&startup.state).await?;
    let connections = startup.state.limits.connections();
    crate::accept::serve(listener, crate::http::router(startup.state), connections, shutdown).await;
    if let Err(e) = store.close().await {
        tracing::error!(error = %e, "the store did not close cleanly");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Connector mode: the SaaS answers `health` (a failure is logged loudly; the start goes on).
/// Events: this instance's delivery worker.
async fn start_integrations(state: &AppState) -> Result<(), ServeError> {
    if let Some(connector) = state.connector.clone() {
        // In the background: a SaaS that is down must not hold up the start.
        tokio::spawn(async move {
            match connector.health(connector.deadline()).await {
                Ok(()) => {
                    tracing::info!("connector: the SaaS answers health (connector version 1)")
                }
                Err(e) => tracing::error!(
                    error = %e,
                    "connector: the SaaS does not answer health; account and resource calls will fail until it does"
                ),
            }
        });
    }
    if let Some(settings) = &state.events {
        let delivery = crate::events::delivery::Delivery::new(
            state.store.clone(),
            state.clock.clone(),
            settings.clone(),
        )
        .map_err(|message| {
            ConfigError::from(crate::connector::SetupError {
                section: "events",
                key: "url",
                message,
            })
        })?;
        tokio::spawn(std::sync::Arc::new(delivery).run());
        tracing::info!(url = %settings.url, "events: delivering the outbox");
    }
    Ok(())
}

/// Every minute, deletes expired rows; a failure is logged and tried again next time.
async fn housekeeping(store: crate::store::Store, clock: crate::clock::Clock) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match store.sweep(clock.now(), clock.now_ms()).await {
            Ok(0) => {}
            Ok(deleted) => tracing::debug!(deleted, "deleted expired rows"),
            Err(crate::store::StoreError::Closed) => return,
            Err(e) => tracing::warn!(error = %e, "housekeeping failed"),
        }
    }
}

fn print_banner(addr: SocketAddr, startup: &Startup) {
    let base = format!("http://{addr}");
    tracing::info!(%addr, public_url = %startup.state.public_url, "provisio listening");
    println!("provisio is serving the APP 0.1d provider at {base}");
    println!("  public URL: {}", startup.state.public_url);
    let exe = std::env::current_exe()
        .ok()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "provisio".into());
    match &startup.secret {
        SigningSecret::Generated { secret, new: true } => {
            println!(
                "  signing secret (generated now and kept in the database; printed only this once): {secret}"
            );
            println!(
                "  try it:  {exe} orchestrator health --base-url {base} --signing-secret {secret}"
            );
        }
        SigningSecret::Generated { new: false, .. } => {
            println!(
                "  signing secret: the one generated on first start, kept in the database (printed then; production sets PROVISIO_SIGNING_SECRET)"
            );
            println!(
                "  try it:  {exe} orchestrator health --base-url {base} --signing-secret <that secret>"
            );
        }
        SigningSecret::Configured { hint } => {
            println!("  signing secret: configured (not shown)");
            println!(
                "  try it:  {exe} orchestrator health --base-url {base} --signing-secret {hint}"
            );
        }
    }
    if let Some(mailer) = &startup.state.mailer {
        if let Some(dir) = mailer.outbox_dir() {
            tracing::warn!(outbox = %dir.display(), "consent emails are written to files, not sent: configure [email]");
            println!(
                "  CONSENT EMAILS ARE NOT SENT: each is written as an .eml file to {} (development mode; configure [email] to send them)",
                dir.display()
            );
        } else {
            println!("  consent emails: {}", mailer.describe());
        }
    }
}

/// Registers the SIGTERM/SIGINT handlers now (before anyone learns the address, so an early
/// signal is never the default kill) and returns the future that resolves on the first of them.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (signal(SignalKind::terminate()).ok(), signal(SignalKind::interrupt()).ok())
    };
    async move {
        #[cfg(unix)]
        {
            let (mut terminate, mut interrupt) = signals;
            tokio::select! {
                () = recv(terminate.as_mut()) => {},
                () = recv(interrupt.as_mut()) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown signal received; draining in-flight requests");
    }
}

/// The next delivery of a signal whose handler could be registered; never, otherwise.
#[cfg(unix)]
async fn recv(signal: Option<&mut tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

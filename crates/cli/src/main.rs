//! The `provisio` binary: argument parsing only; the work lives in the library crates.

mod admin;
mod bench;
mod check_health;
mod conformance;
mod connector_check;
mod manifest;
mod orchestrator;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use provisio_server::{
    clock::Clock,
    config::{DatabaseArgs, LogFormat, ServeArgs},
};

#[derive(Parser)]
#[command(
    name = "provisio",
    version,
    about = "An Agentic Provisioning Protocol (APP 0.1d) provider, and the tools to prove one"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the provider.
    Serve(ServeArgs),
    /// Play the orchestrator (Stripe): sign and send one protocol call, print the JSON.
    Orchestrator(orchestrator::OrchestratorArgs),
    /// Run the APP 0.1d conformance checklist against a provider.
    Conformance(conformance::ConformanceArgs),
    /// Print the provisioning block to register with Stripe, from the running configuration.
    Manifest(manifest::ManifestArgs),
    /// Check a SaaS's side of the connector contract before going live.
    ConnectorCheck(connector_check::ConnectorCheckArgs),
    /// Load-test a provider with whole protocol flows.
    Bench(bench::BenchArgs),
    /// Apply pending database migrations and exit (run it before rolling out a new version).
    Migrate(DatabaseArgs),
    /// Operator tasks on the store.
    Admin(admin::AdminArgs),
    /// Ask a provider's readiness endpoint; exit 0 only on a 2xx (a container HEALTHCHECK).
    CheckHealth(check_health::CheckHealthArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Orchestrator(args) => orchestrator::run(args).await,
            Command::Conformance(args) => conformance::run(args).await,
            Command::ConnectorCheck(args) => connector_check::run(args).await,
            Command::Manifest(args) => manifest::run(args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Migrate(args) => migrate(args).await,
            Command::Admin(args) => admin::run(args).await,
            Command::CheckHealth(args) => check_health::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_tracing(args.log_format);
    let listener = provisio_server::bind(&args).await?;
    let startup = provisio_server::prepare(&args, Clock::system(), listener.local_addr()?).await?;
    provisio_server::run(listener, startup).await?;
    Ok(ExitCode::SUCCESS)
}

async fn migrate(args: DatabaseArgs) -> anyhow::Result<ExitCode> {
    init_tracing(LogFormat::Text);
    let store = args.open().await?;
    let version = store.schema_version().await?;
    store.close().await?;
    println!(
        "{} is at schema version {version}",
        provisio_server::store::redact_url(&args.database_url)
    );
    Ok(ExitCode::SUCCESS)
}

/// The error and its causes, each said once: many errors already include their cause in their own
/// text (`cannot read X: No such file…`), and `{:#}` would repeat it.
fn describe(error: &anyhow::Error) -> String {
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only on a terminal: escape codes in a log file or journald are noise.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

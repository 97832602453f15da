//! `provisio orchestrator …`: one signed protocol call per subcommand, printing the provider's JSON.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use provisio_orchestrator::{Client, ClientConfig, Reply};

/// Default provider URL: where `provisio serve` listens by default.
const DEFAULT_BASE_URL: &str = "http://127.0.0.1:8080";

#[derive(Args)]
pub struct OrchestratorArgs {
    #[command(flatten)]
    target: Target,
    #[command(subcommand)]
    call: Call,
}

/// Which provider to call and how to sign.
#[derive(Args)]
pub struct Target {
    /// Provider base URL.
    #[arg(long, global = true, env = "PROVISIO_BASE_URL", default_value = DEFAULT_BASE_URL)]
    base_url: String,
    /// Signing secret(s), comma-separated to double-sign as during rotation.
    #[arg(
        long,
        global = true,
        env = "PROVISIO_SIGNING_SECRET",
        hide_env_values = true,
        value_delimiter = ','
    )]
    signing_secret: Vec<String>,
    /// `API-Version` header to send.
    #[arg(long, global = true, default_value = provisio_protocol::API_VERSION)]
    api_version: String,
    /// Prefix the provider mounts the protocol under, e.g. `/api/agentic`.
    #[arg(long, global = true, default_value = "")]
    path_prefix: String,
    /// Print only the response body as compact JSON (for scripts).
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Call {
    /// GET /provisioning/health
    Health,
    /// GET /provisioning/services
    Services,
}

pub async fn run(args: OrchestratorArgs) -> anyhow::Result<ExitCode> {
    let client = client(&args.target)?;
    let reply = match args.call {
        Call::Health => client.health().await?,
        Call::Services => client.services().await?,
    };
    Ok(print(&reply, args.target.json))
}

fn client(target: &Target) -> anyhow::Result<Client> {
    let mut config = ClientConfig::new(&target.base_url, target.signing_secret.clone());
    config.api_version = Some(target.api_version.clone()).filter(|v| !v.is_empty());
    config.path_prefix = target.path_prefix.clone();
    Ok(Client::new(config)?)
}

/// Prints the answer and turns its status into the exit code (non-2xx → 1).
fn print(reply: &Reply, json_only: bool) -> ExitCode {
    if json_only {
        println!(
            "{}",
            reply.json.as_ref().map_or_else(
                || String::from_utf8_lossy(&reply.raw).into_owned(),
                |v| v.to_string()
            )
        );
    } else {
        println!("HTTP {}", reply.status);
        println!("{}", reply.pretty());
    }
    if reply.is_success() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

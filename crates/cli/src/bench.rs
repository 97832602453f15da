//! `provisio bench`: a load generator for whole protocol flows.

use std::{process::ExitCode, time::Duration};

use clap::{Args, ValueEnum};
use provisio_orchestrator::{
    Client, ClientConfig,
    bench::{self, BenchConfig, Scenario, Stop},
};
use serde_json::Value;

#[derive(Args)]
pub struct BenchArgs {
    /// Provider base URL; several, comma-separated, spread the workers over instances.
    #[arg(
        long,
        env = "PROVISIO_BASE_URL",
        default_value = "http://127.0.0.1:8080",
        value_delimiter = ','
    )]
    base_url: Vec<String>,
    /// Signing secret(s).
    #[arg(long, env = "PROVISIO_SIGNING_SECRET", hide_env_values = true, value_delimiter = ',')]
    signing_secret: Vec<String>,
    /// Prefix the provider mounts the protocol under.
    #[arg(long, default_value = "")]
    path_prefix: String,
    /// The flow each worker repeats: `new-user-flow` (account request for a fresh email, then the
    /// code exchange), `existing-user-flow` (the same for prepared users), `services` (one signed
    /// catalog read), `resource-read` or `rotate` (one call on a resource prepared per worker).
    #[arg(long, value_enum, default_value = "new-user-flow")]
    scenario: ScenarioArg,
    /// Concurrent workers, each running one flow after another.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// How long to run, e.g. `500ms`, `10s`, `2m`, `1h` (default 10s unless --flows is given).
    #[arg(long, value_parser = provisio_server::duration::parse, conflicts_with = "flows")]
    duration: Option<Duration>,
    /// Run exactly this many flows instead.
    #[arg(long)]
    flows: Option<u64>,
    /// Domain of the generated emails.
    #[arg(long, default_value = "bench.provisio.test")]
    email_domain: String,
    /// Users prepared through the protocol for `existing-user-flow`.
    #[arg(long, default_value_t = 100)]
    existing_users: usize,
    /// New-user flows also provision a resource (account request → token → create).
    #[arg(long)]
    provision: bool,
    /// Link to these users instead (JSON from `provisio admin seed --out`).
    #[arg(long)]
    users_file: Option<std::path::PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum ScenarioArg {
    NewUserFlow,
    ExistingUserFlow,
    Services,
    ResourceRead,
    Rotate,
}

impl ScenarioArg {
    const fn scenario(self) -> Scenario {
        match self {
            Self::NewUserFlow => Scenario::NewUserFlow,
            Self::ExistingUserFlow => Scenario::ExistingUserFlow,
            Self::Services => Scenario::Services,
            Self::ResourceRead => Scenario::ResourceRead,
            Self::Rotate => Scenario::Rotate,
        }
    }
}

pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let clients = args
        .base_url
        .iter()
        .map(|base_url| {
            let mut config = ClientConfig::new(base_url, args.signing_secret.clone());
            config.path_prefix = args.path_prefix.clone();
            config.parse_json = false;
            Client::new(config)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let stop = match (args.flows, args.duration) {
        (Some(n), _) => Stop::Flows(n),
        (None, d) => Stop::After(d.unwrap_or(Duration::from_secs(10))),
    };
    let scenario = args.scenario.scenario();
    let users = match &args.users_file {
        Some(path) => serde_json::from_slice::<Vec<Value>>(&std::fs::read(path)?)?
            .iter()
            .filter_map(|u| Some((u["email"].as_str()?.to_string(), u["team_id"].as_i64())))
            .collect(),
        None => Vec::new(),
    };
    let report = bench::run(
        clients,
        BenchConfig {
            scenario,
            concurrency: args.concurrency,
            stop,
            email_domain: args.email_domain,
            existing_users: args.existing_users,
            users,
            provision: args.provision,
            progress: !args.json,
        },
    )
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(if report.flows_failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The report names the scenario as `--scenario` takes it.
    #[test]
    fn the_report_names_scenarios_as_the_flag_does() {
        for arg in ScenarioArg::value_variants() {
            let flag = arg.to_possible_value().map(|v| v.get_name().to_string());
            assert_eq!(flag.as_deref(), Some(arg.scenario().as_str()));
        }
        assert_eq!(ScenarioArg::value_variants().len(), Scenario::ALL.len());
    }
}

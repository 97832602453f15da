//! `provisio connector-check`: plays provisio against a SaaS's side of the connector contract
//! (`docs/connector.md`) and prints what holds and what does not, before real users arrive. It
//! signs up one test user under `--email-domain` and says so before it starts.

mod checks;
mod wire;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context;
use clap::Args;
use provisio_orchestrator::conformance::Report;
use provisio_server::connector::Signer;

#[derive(Args)]
pub struct ConnectorCheckArgs {
    /// The connector's base URL, as `[connector] url` would name it: each operation is POSTed to
    /// URL/<operation>.
    #[arg(long)]
    url: String,
    /// The environment variable holding the connector's Standard Webhooks secret (`whsec_…`;
    /// several space-separated while rotating), as `[connector] secret_env`.
    #[arg(long)]
    secret_env: String,
    /// Domain of the one test address the check signs up.
    #[arg(long, default_value = "connector-check.invalid")]
    email_domain: String,
    /// The service to provision: a free one (a paid one needs a payment token).
    #[arg(long, default_value = "analytics")]
    service_id: String,
    /// The events endpoint (`[events] url`), checked too when given.
    #[arg(long)]
    events_url: Option<String>,
    /// The environment variable holding the events secret (default: the one of --secret-env).
    #[arg(long)]
    events_secret_env: Option<String>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Also write the results as JUnit XML to this file (for CI test reports).
    #[arg(long)]
    junit: Option<PathBuf>,
    /// How long one call may take.
    #[arg(long, default_value_t = 10)]
    timeout_secs: u64,
}

pub async fn run(args: ConnectorCheckArgs) -> anyhow::Result<ExitCode> {
    for (flag, url) in [("--url", Some(&args.url)), ("--events-url", args.events_url.as_ref())] {
        if let Some(url) = url {
            let parsed = reqwest::Url::parse(url).with_context(|| format!("{flag} {url:?}"))?;
            anyhow::ensure!(
                matches!(parsed.scheme(), "http" | "https"),
                "{flag} {url:?}: an http or https URL"
            );
        }
    }
    let timeout = Duration::from_secs(args.timeout_secs);
    let run = run_id();
    let saas = wire::Saas::new(signer(&args.secret_env)?, &run, timeout)?;
    let events = match &args.events_url {
        Some(_) => Some(wire::Saas::new(
            signer(args.events_secret_env.as_deref().unwrap_or(&args.secret_env))?,
            &run,
            timeout,
        )?),
        None => None,
    };
    let plan = checks::Plan {
        url: args.url.clone(),
        events_url: args.events_url.clone(),
        email: format!("connector-check-{run}@{}", args.email_domain),
        service_id: args.service_id.clone(),
        run,
    };
    println!(
        "connector-check: signs up one test user, {}, in the SaaS at {} (with an organization, two \
         projects and a resource of service {}, removed at the end), and calls every operation once or twice.",
        plan.email, plan.url, plan.service_id
    );
    let results = checks::Checks::new(&saas, events.as_ref(), &plan).run().await;
    let report = Report::new(&args.url, results);
    let (calls, p50, p99) = saas.timing();
    if let Some(path) = &args.report {
        let mut json = serde_json::to_value(&report)?;
        json["timing"] = serde_json::json!({
            "calls": calls,
            "p50_ms": p50.as_secs_f64() * 1000.0,
            "p99_ms": p99.as_secs_f64() * 1000.0,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&json)?)
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, report.junit("provisio connector-check"))
            .with_context(|| format!("cannot write the JUnit report to {}", path.display()))?;
    }
    println!("{}", report.table());
    println!(
        "{} checks, {} skipped; the SaaS answered {calls} calls: p50 {:.1} ms, p99 {:.1} ms",
        report.checks.len(),
        report.skipped,
        p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0
    );
    println!("{}", report.summary());
    Ok(if report.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The signer for the secret(s) in environment variable `name`; the error names the variable,
/// never the value.
fn signer(name: &str) -> anyhow::Result<Signer> {
    let value =
        std::env::var(name).with_context(|| format!("environment variable {name} is not set"))?;
    Signer::from_secrets(&value).map_err(|e| anyhow::anyhow!("{name}: {e}"))
}

/// A short id of this run, for the test address and the resource id.
fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}", (nanos as u64) ^ (u64::from(std::process::id()) << 40))
}

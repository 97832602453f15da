//! `provisio conformance`: runs the APP 0.1d checklist against a provider and prints the verdict.

use std::{io::IsTerminal, path::PathBuf, process::ExitCode};

use anyhow::Context;
use clap::{Args, ValueEnum};
use provisio_orchestrator::conformance::{
    self, Config, DEFAULT_EMAIL_DOMAIN, Group, Outcome, Preflight, Scope, Tag,
};

#[derive(Args)]
pub struct ConformanceArgs {
    /// Provider base URL.
    #[arg(long, env = "PROVISIO_BASE_URL")]
    base_url: String,
    /// The orchestrator signing secret the provider is configured with.
    #[arg(long, env = "PROVISIO_SIGNING_SECRET", hide_env_values = true)]
    signing_secret: String,
    /// Domain of the emails the suite signs up (one fresh address per check that needs a user).
    #[arg(long, default_value = DEFAULT_EMAIL_DOMAIN)]
    email_domain: String,
    /// Run only these groups (comma-separated): health, services, signature, api_version,
    /// envelopes, check_order, accounts, oauth, resources, deep_links.
    #[arg(long, value_delimiter = ',', value_parser = Group::parse)]
    only: Vec<Group>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Also write the results as JUnit XML to this file, one test case per check (for CI test
    /// reports).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// How to print the results (default: `table` on a terminal, `compact` when the output is
    /// piped or redirected).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Skip the checks of provisio's own choices (tagged [provisio]); keep the protocol's.
    #[arg(long)]
    strict_protocol_only: bool,
    /// Skip the checks carrying these tags (comma-separated, or the flag repeated), reported as
    /// skipped: `builtin` = checks of provisio's built-in backend (its analytics keys, dashboard
    /// pages and billing backends), for a provider in connector mode.
    #[arg(long, value_delimiter = ',', value_parser = Tag::parse)]
    skip_tag: Vec<Tag>,
    /// Prefix the provider mounts the protocol under, e.g. `/api/agentic`.
    #[arg(long, default_value = "")]
    path_prefix: String,
    /// Token endpoint (default: `<base-url>/oauth/token`).
    #[arg(long)]
    token_url: Option<String>,
}

/// How the results are printed.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Every check, one row each: check, expected, got (clipped), result.
    Table,
    /// The failed checks in full, the passed ones counted by group.
    Compact,
}

pub async fn run(args: ConformanceArgs) -> anyhow::Result<ExitCode> {
    let format = args.format.unwrap_or(if std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Compact
    });
    let config = Config {
        email_domain: args.email_domain,
        path_prefix: args.path_prefix,
        token_url: args.token_url,
        only: args.only,
        strict_protocol_only: args.strict_protocol_only,
        skip_tags: args.skip_tag.iter().fold(Vec::new(), |mut tags, tag| {
            if !tags.contains(tag) {
                tags.push(*tag);
            }
            tags
        }),
        ..Config::new(args.base_url, args.signing_secret)
    };
    // A secret the provider does not know fails every check that signs, each for that one reason:
    // say it once instead, before anything is sent in the provider's name.
    match conformance::preflight(&config).await? {
        Preflight::Accepted => {}
        Preflight::SecretRefused(got) => anyhow::bail!(
            "the provider at {} refuses this signing secret: a signed GET /provisioning/health \
             answered {got}; check --signing-secret (PROVISIO_SIGNING_SECRET): it must be the \
             orchestrator secret the provider is configured with. No checks were run.",
            config.base_url
        ),
        Preflight::Unreachable(why) => anyhow::bail!(
            "cannot reach the provider at {}: GET /provisioning/health got {why}; check \
             --base-url (and --path-prefix). No checks were run.",
            config.base_url
        ),
    }
    let report = conformance::run(&config).await?;
    if let Some(path) = &args.report {
        let json = serde_json::to_vec_pretty(&report)?;
        std::fs::write(path, json)
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, report.junit("provisio conformance"))
            .with_context(|| format!("cannot write the JUnit report to {}", path.display()))?;
    }
    match format {
        Format::Table => println!("{}", report.table()),
        Format::Compact => print!("{}", report.compact()),
    }
    if report.skipped > 0 {
        println!(
            "{} checks, {} skipped ({})",
            report.checks.len(),
            report.skipped,
            why(&config, &report)
        );
    } else {
        println!("{} checks", report.checks.len());
    }
    println!("{}", report.summary());
    Ok(if report.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Why the checks `config` left out were skipped: `N provisio's own choices, M [builtin]`.
fn why(config: &Config, report: &conformance::Report) -> String {
    let skipped = || report.checks.iter().filter(|c| c.outcome == Outcome::Skip);
    let choice =
        |c: &&conformance::CheckResult| config.strict_protocol_only && c.scope == Scope::Provisio;
    let mut parts = Vec::new();
    let choices = skipped().filter(choice).count();
    if choices > 0 {
        parts.push(format!("{choices} provisio's own choices"));
    }
    for tag in &config.skip_tags {
        let tagged = skipped().filter(|c| !choice(c) && c.tags.contains(tag)).count();
        if tagged > 0 {
            parts.push(format!("{tagged} [{}]", tag.as_str()));
        }
    }
    parts.join(", ")
}

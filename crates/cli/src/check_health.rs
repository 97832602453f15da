//! `provisio check-health`: one GET of a provider's readiness endpoint, exit status 0 only on a
//! 2xx answer. For a container's `HEALTHCHECK`, whose slim image has no curl (`Dockerfile`).

use std::{process::ExitCode, time::Duration};

use anyhow::Context;
use clap::Args;

/// At most this much of an answer's body is printed.
const BODY_SHOWN: usize = 2000;

#[derive(Args)]
pub struct CheckHealthArgs {
    /// The URL to GET: `/readyz` (the database answers) or `/healthz` (the process answers).
    #[arg(long, default_value = "http://127.0.0.1:8080/readyz")]
    url: String,
    /// How long connecting and the whole answer may take, in seconds.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    timeout_secs: u64,
}

pub async fn run(args: CheckHealthArgs) -> anyhow::Result<ExitCode> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let timeout = Duration::from_secs(args.timeout_secs);
    // No proxy from the environment: the check asks the provider itself, usually on loopback.
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .timeout(timeout)
        .user_agent(concat!("provisio-check-health/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client")?;
    let url = &args.url;
    let response = client.get(url).send().await.with_context(|| format!("GET {url}"))?;
    let status = response.status();
    let body = response.text().await.with_context(|| format!("GET {url}: reading the answer"))?;
    let body = shown(&body);
    if status.is_success() {
        println!("{url}: {status} {body}");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("{url}: {status} {body}");
        Ok(ExitCode::FAILURE)
    }
}

/// The body on one line, cut at [`BODY_SHOWN`] characters.
fn shown(body: &str) -> String {
    let one_line = body.trim().replace(['\r', '\n'], " ");
    if one_line.chars().count() <= BODY_SHOWN {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(BODY_SHOWN).collect();
    cut.push('…');
    cut
}

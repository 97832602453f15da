//! `provisio manifest`: the provisioning block a SaaS registers with Stripe, from the same
//! configuration `serve` runs with (flags, environment, `--config`), as JSON ready to paste.

use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use provisio_server::{
    config::{FileConfig, ServeArgs},
    registration::Registration,
};

#[derive(Args)]
pub struct ManifestArgs {
    /// The same settings `provisio serve` runs with; `--public-url` (or `PROVISIO_PUBLIC_URL`) is
    /// required: it is the address Stripe will call.
    #[command(flatten)]
    serve: ServeArgs,
}

pub async fn run(args: ManifestArgs) -> anyhow::Result<ExitCode> {
    let public_url = args.serve.public_url.as_deref().filter(|u| !u.trim().is_empty()).context(
        "the manifest needs the public URL Stripe will call: --public-url or PROVISIO_PUBLIC_URL",
    )?;
    let file = match &args.serve.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let registration = Registration {
        public_url,
        catalog: &file.catalog()?,
        accounts: &file.accounts()?,
        provider: &file.provider,
        rate_limits: &file.rate_limits,
        connector: file.connector.is_some(),
    };
    println!("{}", serde_json::to_string_pretty(&registration.manifest())?);
    Ok(ExitCode::SUCCESS)
}

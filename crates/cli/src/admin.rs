//! `provisio admin …`: operator tasks on the store.

use std::{path::PathBuf, process::ExitCode};

use clap::{Args, Subcommand};
use provisio_server::{admin::seed, clock::Clock, config::DEFAULT_DATABASE_URL, store::Store};

#[derive(Args)]
pub struct AdminArgs {
    /// Database URL.
    #[arg(long, global = true, env = "PROVISIO_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    database_url: String,
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Bulk-load users, each with an organization and projects (for benchmarks).
    Seed {
        #[arg(long)]
        users: usize,
        /// Projects per user.
        #[arg(long, default_value_t = 1)]
        projects: usize,
        /// Write the seeded emails and team ids here (JSON), for `provisio bench --users-file`.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub async fn run(args: AdminArgs) -> anyhow::Result<ExitCode> {
    let store = Store::open(&args.database_url).await?;
    match args.task {
        Task::Seed { users, projects, out } => {
            let run =
                format!("{:x}", provisio_orchestrator::client::unix_now_nanos() % 0xffff_ffff);
            let started = std::time::Instant::now();
            let seeded = seed::seed(&store, &run, users, projects, Clock::system().now()).await?;
            eprintln!(
                "seeded {} users with {projects} project(s) each in {:.1} s",
                seeded.len(),
                started.elapsed().as_secs_f64()
            );
            if let Some(path) = out {
                std::fs::write(&path, serde_json::to_vec(&seeded)?)?;
                eprintln!("wrote {}", path.display());
            }
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

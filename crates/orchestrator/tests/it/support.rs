//! The real provisio provider in-process on a loopback port, and running the suite against it.

use std::net::SocketAddr;

use clap::Parser;
use provisio_orchestrator::conformance::{self, Config, Report};
use provisio_server::{clock::Clock, config::ServeArgs};

pub const SECRET: &str = "whsec_conformance_suite_test";

/// `provisio serve`'s flags, parsed as the binary parses them.
#[derive(Parser)]
struct Serve {
    #[command(flatten)]
    args: ServeArgs,
}

/// A provider on a fresh SQLite file; stops when dropped.
pub struct RealServer {
    pub base_url: String,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl RealServer {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database = format!("sqlite://{}", dir.path().join("provisio.db").display());
        let Serve { args } = Serve::parse_from([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &database,
            "--signing-secret",
            SECRET,
        ]);
        let listener = provisio_server::bind(&args).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let startup = provisio_server::prepare(&args, Clock::system(), addr).await.unwrap();
        let app = provisio_server::http::router(startup.state)
            .into_make_service_with_connect_info::<SocketAddr>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { base_url: format!("http://{addr}"), task, _dir: dir }
    }
}

impl Drop for RealServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The whole suite against `base_url` with the test secret.
pub async fn run(base_url: &str) -> Report {
    run_with(Config::new(base_url, SECRET)).await
}

pub async fn run_with(config: Config) -> Report {
    conformance::run(&config).await.unwrap()
}

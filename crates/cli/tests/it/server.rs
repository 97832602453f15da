//! A `provisio serve` child process on a random port and a fresh SQLite file (or a given database).

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

pub struct Server {
    pub child: Child,
    pub base_url: String,
    pub banner: Vec<String>,
    pub dir: Option<tempfile::TempDir>,
}

/// Writes `toml` to `provisio.toml` in `dir`; the path, for `--config`.
pub fn config_file(dir: &std::path::Path, toml: &str) -> String {
    let path = dir.join("provisio.toml");
    std::fs::write(&path, toml).unwrap();
    path.display().to_string()
}

impl Server {
    /// Starts the binary with these extra arguments and waits for its banner.
    pub fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, extra)
    }

    pub fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> Self {
        Self::start_in_with_env(dir, extra, &[])
    }

    /// [`Server::start_in`] with environment variables set for the child only.
    pub fn start_in_with_env(dir: tempfile::TempDir, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let db = format!("sqlite://{}", dir.path().join("provisio.db").display());
        Self::spawn(&db, Some(dir), extra, env)
    }

    /// A server on a database someone else owns (a PostgreSQL schema).
    pub fn start_on(database_url: &str, extra: &[&str]) -> Self {
        Self::spawn(database_url, None, extra, &[])
    }

    fn spawn(
        db: &str,
        dir: Option<tempfile::TempDir>,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_provisio"))
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url", db])
            .args(extra)
            .env_remove("PROVISIO_SIGNING_SECRET")
            .env_remove("PROVISIO_CONFIG")
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut banner = Vec::new();
        let mut base_url = None;
        while banner.len() < 4 {
            let line = rx.recv_timeout(Duration::from_secs(60)).expect("server printed its banner");
            if let Some(rest) = line.strip_prefix("provisio is serving the APP 0.1d provider at ") {
                base_url = Some(rest.trim().to_string());
            }
            banner.push(line);
        }
        Self { child, base_url: base_url.expect("banner names the address"), banner, dir }
    }

    pub fn addr(&self) -> String {
        self.base_url.trim_start_matches("http://").to_string()
    }

    /// SIGTERM, then the exit status of a graceful shutdown.
    pub fn terminate(mut self) -> (std::process::ExitStatus, tempfile::TempDir) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        (status, self.dir.take().unwrap())
    }
}

impl Server {
    /// SIGKILL: no shutdown, no flush, as a power cut or OOM kill would do.
    pub fn kill_hard(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.dir.take().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

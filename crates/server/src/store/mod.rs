//! Persistence. One `Store` the domain talks to; SQL lives here and nowhere else.
//!
//! Work reaches the database as a closure that runs synchronously on a database thread: `write`
//! wraps it in one transaction (committed when it returns `Ok`, rolled back on `Err`), `read` runs it
//! on a read connection. Queries are written once, with `$N` placeholders, against [`sql::Conn`].

pub mod accounts;
pub mod admin;
pub mod audit;
pub mod connector;
pub mod consent;
pub mod dashboard;
pub mod events;
pub mod housekeeping;
pub mod idempotency;
pub mod inbound;
mod migrate;
pub mod oauth;
mod postgres;
pub mod rate_limits;
pub mod resources;
pub mod signature_uses;
pub mod signing_secrets;
pub mod sql;
mod sqlite;
mod tx;
pub mod wal;

use std::sync::Arc;

pub use migrate::{Migration, migrations};
pub use sql::{Conn, Param, Query, Row, Value};
use tx::Mode;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://USER@HOST/DATABASE")]
    UnsupportedUrl(String),
    #[error(
        "database schema is at version {found}, newer than this provisio knows ({known}); upgrade provisio"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database error: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("the transaction kept conflicting with concurrent ones: {0}")]
    Conflict(String),
    #[error("the transaction was rolled back: a statement in it failed: {0}")]
    Aborted(String),
    #[error("cannot set up TLS to the database: {0}")]
    Tls(String),
    #[error("the query returned no row")]
    NoRow,
    #[error("column {column} is not {expected}")]
    Decode { column: usize, expected: &'static str },
    #[error("cannot start a database thread: {0}")]
    Thread(String),
    #[error("the store is closed")]
    Closed,
    #[error(
        "no database at {path}: this command opens an existing database only; pass --database-url (or PROVISIO_DATABASE_URL) naming the one provisio serve uses"
    )]
    NoDatabase { path: String },
    #[error(
        "{path} is already served by another provisio serve (process {pid}): one process per SQLite database, as its idempotency claims, signature bindings and rate limits live in that process's memory; stop it, or use PostgreSQL for several instances"
    )]
    InUse { path: String, pid: String },
    #[error("{path}: {error}")]
    File { path: String, error: std::io::Error },
}

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The file of a `sqlite://PATH` (or `sqlite:PATH`) URL, without its query.
fn sqlite_path(url: &str) -> Option<&str> {
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    Some(path.split('?').next().unwrap_or(path))
}

/// Held by `provisio serve` for its life on a SQLite database (`PATH.lock`, with the holder's
/// process id): a second `serve` on the same file is refused, naming the first. PostgreSQL needs
/// none — instances share their state there.
pub struct ServeLock {
    _file: std::fs::File,
}

impl ServeLock {
    pub fn acquire(url: &str) -> Result<Option<Self>, StoreError> {
        use std::io::{Read, Seek, Write};
        let Some(path) = sqlite_path(url).filter(|p| !p.is_empty()) else { return Ok(None) };
        let lock_path = format!("{path}.lock");
        let file_error = |error| StoreError::File { path: lock_path.clone(), error };
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&lock_path).map_err(file_error)?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0).map_err(file_error)?;
                file.rewind().map_err(file_error)?;
                writeln!(file, "{}", std::process::id()).map_err(file_error)?;
                Ok(Some(Self { _file: file }))
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = Some(pid.trim().to_string()).filter(|p| !p.is_empty());
                Err(StoreError::InUse {
                    path: path.to_string(),
                    pid: pid.unwrap_or_else(|| "unknown".into()),
                })
            }
            Err(std::fs::TryLockError::Error(error)) => Err(file_error(error)),
        }
    }
}

#[derive(Clone)]
enum Engine {
    Sqlite(Arc<sqlite::Sqlite>),
    Postgres(Arc<postgres::Postgres>),
}

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    engine: Engine,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({:?})", self.backend())
    }
}

/// How a PostgreSQL store connects (SQLite needs nothing beyond its path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolOptions {
    /// Connections, each on its own thread.
    pub max_connections: usize,
    /// PEM file of extra CA certificates for TLS (managed databases with a private CA).
    pub ca_file: Option<std::path::PathBuf>,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self { max_connections: 6, ca_file: None }
    }
}

impl Store {
    /// Opens (creating if missing) the database at `url` and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, &PoolOptions::default()).await
    }

    /// [`Store::open`] with pool settings.
    pub async fn open_with(url: &str, options: &PoolOptions) -> Result<Self, StoreError> {
        let store = Self::connect_with(url, options).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens the database without migrating.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, &PoolOptions::default()).await
    }

    /// [`Store::open_with`] for an existing database only: a SQLite file that is not there is an
    /// error naming where it was looked for, not a new empty database (admin commands run in the
    /// wrong folder).
    pub async fn open_existing_with(url: &str, options: &PoolOptions) -> Result<Self, StoreError> {
        if let Some(path) = sqlite_path(url).filter(|p| !std::path::Path::new(p).exists()) {
            let absolute = std::path::absolute(path).unwrap_or_else(|_| path.into());
            return Err(StoreError::NoDatabase { path: absolute.display().to_string() });
        }
        Self::open_with(url, options).await
    }

    /// Opens the database without migrating, with pool settings.
    pub async fn connect_with(url: &str, options: &PoolOptions) -> Result<Self, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let (url, options) = (url.to_string(), options.clone());
            // Connecting blocks (TLS handshake, authentication): keep it off the async threads.
            let pg = tokio::task::spawn_blocking(move || postgres::Postgres::open(&url, &options))
                .await
                .map_err(|e| StoreError::Thread(e.to_string()))??;
            return Ok(Self { engine: Engine::Postgres(Arc::new(pg)) });
        }
        let path = sqlite_path(url).ok_or_else(|| StoreError::UnsupportedUrl(redact_url(url)))?;
        if path.is_empty() {
            return Err(StoreError::UnsupportedUrl(url.into()));
        }
        Ok(Self { engine: Engine::Sqlite(Arc::new(sqlite::Sqlite::open(path)?)) })
    }

    pub fn backend(&self) -> Backend {
        match self.engine {
            Engine::Sqlite(_) => Backend::Sqlite,
            Engine::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies pending migrations; refuses a schema newer than this binary knows.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let backend = self.backend();
        self.run(Mode::Atomic, move |conn| migrate::run(conn, backend)).await
    }

    /// The newest migration applied.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        self.read(|conn| migrate::current(conn)).await
    }

    /// Runs `work` in one write transaction: committed when it returns `Ok`, rolled back on `Err`.
    /// `work` may run more than once, rolled back each time but the last: on PostgreSQL after a
    /// conflict, on SQLite when another write committed with it failed (`sqlite::run_group`). So
    /// it must not act outside the database, and every check-then-write in it must rest on a
    /// unique constraint or a conditional `UPDATE` (see `tx.rs`).
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&mut dyn Conn) -> Result<T, E> + Send + 'static,
    {
        self.run(Mode::Write, work).await
    }

    /// Runs `work` in a transaction at READ COMMITTED, never again after a conflict: for
    /// statements that are atomic on their own (an upsert, a row locked and updated) and
    /// migrations. (On SQLite it may run again after a rollback, as any write: see `write`.)
    pub async fn write_atomic<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&mut dyn Conn) -> Result<T, E> + Send + 'static,
    {
        self.run(Mode::Atomic, work).await
    }

    /// Runs `work` with each statement committing on its own (on SQLite, one transaction on the
    /// writer): for a single upsert or independent deletes, saving PostgreSQL's BEGIN and COMMIT
    /// round trips. Never attempted again after a conflict (on SQLite, see `write`).
    pub async fn write_each<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&mut dyn Conn) -> Result<T, E> + Send + 'static,
    {
        self.run(Mode::EachStatement, work).await
    }

    /// Runs `work` on a read connection (SQLite: one snapshot; PostgreSQL: one per statement).
    /// `work` gets queries only ([`Query`]): a read cannot write.
    pub async fn read<T, E, F>(&self, mut work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&mut dyn Query) -> Result<T, E> + Send + 'static,
    {
        self.run(Mode::Read, move |conn: &mut dyn Conn| work(conn)).await
    }

    async fn run<T, E, F>(&self, mode: Mode, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&mut dyn Conn) -> Result<T, E> + Send + 'static,
    {
        let (job, rx) = tx::Job::new(work);
        let kind = if mode == Mode::Read { "read" } else { "write" };
        crate::metrics::db_in_flight(kind, 1.0);
        let submitted = match &self.engine {
            Engine::Sqlite(db) => db.submit(mode, Box::new(job)),
            Engine::Postgres(db) => db.submit(mode, Box::new(job)),
        };
        let answer = match submitted {
            Ok(()) => rx.await.unwrap_or_else(|_| Err(StoreError::Closed.into())),
            Err(e) => Err(e.into()),
        };
        crate::metrics::db_in_flight(kind, -1.0);
        answer
    }

    /// Readiness: the database answers a query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| conn.query_one("SELECT 1", &[]).map(|_| ())).await
    }

    /// The value stored under `key`, storing `candidate` first if there is none: whoever inserts
    /// first wins and everyone reads the winner's value.
    pub async fn setting_or_insert(
        &self,
        key: &str,
        candidate: &str,
        now: i64,
    ) -> Result<String, StoreError> {
        let (key, candidate) = (key.to_string(), candidate.to_string());
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO settings (key, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
                &[(&key).into(), (&candidate).into(), now.into()],
            )?;
            conn.query_one("SELECT value FROM settings WHERE key = $1", &[(&key).into()])?.text(0)
        })
        .await
    }

    /// Deletes expired rows (see [`housekeeping`]); run now and then by `serve`.
    pub async fn sweep(&self, now: i64, now_ms: i64) -> Result<u64, StoreError> {
        let backend = self.backend();
        self.write_each(move |conn| housekeeping::sweep(conn, backend, now, now_ms)).await
    }

    /// Stops the database threads once their queued work is done and waits for them to close
    /// their connections. An error says a thread did not exit cleanly.
    pub async fn close(&self) -> Result<(), StoreError> {
        let engine = self.engine.clone();
        let panicked = tokio::task::spawn_blocking(move || match &engine {
            Engine::Sqlite(db) => db.close(),
            Engine::Postgres(db) => db.close(),
        })
        .await
        .unwrap_or(1);
        match panicked {
            0 => Ok(()),
            n => Err(StoreError::Thread(format!("{n} database thread(s) panicked while closing"))),
        }
    }
}

/// `url` without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

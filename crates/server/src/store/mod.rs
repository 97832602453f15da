//! Persistence. One `Store` the domain talks to; SQL lives here and nowhere else.
//!
//! Work reaches the database as a closure that runs synchronously on a database thread: `write`
//! wraps it in one transaction (committed when it returns `Ok`, rolled back on `Err`), `read` runs it
//! on a read connection. Queries are written once, with `$N` placeholders, against [`sql::Conn`].

pub mod accounts;
pub mod audit;
pub mod dashboard;
pub mod idempotency;
mod migrate;
pub mod oauth;
pub mod resources;
pub mod sql;
mod sqlite;

use std::sync::Arc;

pub use migrate::{MIGRATIONS, Migration};
pub use sql::{Conn, Param, Row, Value};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {0:?}: use sqlite://PATH")]
    UnsupportedUrl(String),
    #[error(
        "database schema is at version {found}, newer than this provisio knows ({known}); upgrade provisio"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the query returned no row")]
    NoRow,
    #[error("column {column} is not {expected}")]
    Decode { column: usize, expected: &'static str },
    #[error("cannot start a database thread: {0}")]
    Thread(String),
    #[error("the store is closed")]
    Closed,
}

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Arc<sqlite::Sqlite>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store(sqlite)")
    }
}

impl Store {
    /// Opens (creating if missing) the database at `url` and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let store = Self::connect(url)?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens the database without migrating.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| StoreError::UnsupportedUrl(url.into()))?;
        let path = path.split('?').next().unwrap_or(path);
        if path.is_empty() {
            return Err(StoreError::UnsupportedUrl(url.into()));
        }
        Ok(Self { backend: Arc::new(sqlite::Sqlite::open(path)?) })
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.write(|conn| migrate::run(conn)).await
    }

    /// Runs `work` in one write transaction: committed when it returns `Ok`, rolled back on `Err`.
    /// Writers are serialized; keep `work` to database statements and cheap computation.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut dyn Conn) -> Result<T, E> + Send + 'static,
    {
        self.run(true, move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(StoreError::from)?;
            let value = work(&mut sqlite::SqliteConn(&tx))?;
            tx.commit().map_err(StoreError::from)?;
            Ok(value)
        })
        .await
    }

    /// Runs `work` on a read connection, in one snapshot.
    pub async fn read<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut dyn Conn) -> Result<T, E> + Send + 'static,
    {
        self.run(false, move |conn| {
            let tx = conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Deferred)
                .map_err(StoreError::from)?;
            work(&mut sqlite::SqliteConn(&tx))
        })
        .await
    }

    async fn run<T, E, F>(&self, write: bool, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&mut rusqlite::Connection) -> Result<T, E> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.backend.submit(
            write,
            Box::new(move |conn| {
                let _ = tx.send(work(conn));
            }),
        )?;
        rx.await.map_err(|_| StoreError::Closed)?
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

    /// Stops the database threads once their queued work is done.
    pub async fn close(&self) {
        self.backend.close();
    }
}

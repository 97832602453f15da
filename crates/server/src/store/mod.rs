//! Persistence. One `Store` the domain talks to; SQL lives here and nowhere else.
//!
//! SQLite is the embedded default: WAL so readers never wait for the writer, a busy timeout so
//! writers queue instead of failing, and write transactions opened with `BEGIN IMMEDIATE` so two
//! writers never deadlock upgrading a read lock.

pub mod accounts;
mod migrate;
pub mod oauth;

use std::time::Duration;

use sqlx::{
    Any, AnyPool, Executor, Transaction,
    any::{AnyPoolOptions, install_default_drivers},
};

pub use migrate::{MIGRATIONS, Migration};

/// A write transaction.
pub type Tx = Transaction<'static, Any>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {0:?}: use sqlite://PATH")]
    UnsupportedUrl(String),
    #[error(
        "database schema is at version {found}, newer than this provisio knows ({known}); upgrade provisio"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
}

/// A handle on the database; cheap to clone. SQL is written once with `$N` placeholders and runs
/// through sqlx's `Any` driver, so one statement serves every backend.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
}

impl Store {
    /// Opens (creating if missing) the database at `url` and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens the database without migrating.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        if !url.starts_with("sqlite:") {
            return Err(StoreError::UnsupportedUrl(url.into()));
        }
        install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .min_connections(1)
            .after_connect(|conn, _meta| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                    )
                    .await?;
                    Ok(())
                })
            })
            .acquire_timeout(Duration::from_secs(30))
            .connect(&sqlite_url_creating(url))
            .await?;
        Ok(Self { pool })
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrate::run(self).await
    }

    /// Readiness: the database answers a query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// A write transaction; on SQLite `BEGIN IMMEDIATE` takes the write lock up front, so two
    /// writers queue on the busy timeout instead of deadlocking on a lock upgrade.
    pub async fn write(&self) -> Result<Tx, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The value stored under `key`, storing `candidate` first if there is none. Safe under
    /// concurrency: whoever inserts first wins and everyone reads the winner's value.
    pub async fn setting_or_insert(
        &self,
        key: &str,
        candidate: &str,
        now: i64,
    ) -> Result<String, StoreError> {
        sqlx::query("INSERT INTO settings (key, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(candidate)
            .bind(now)
            .execute(&self.pool)
            .await?;
        let value: String = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(key)
            .fetch_one(&self.pool)
            .await?;
        Ok(value)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// SQLite opens read-write and creates the file unless the URL says otherwise.
fn sqlite_url_creating(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

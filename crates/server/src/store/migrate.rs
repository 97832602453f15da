//! Embedded, forward-only migrations. Each runs in its own transaction and is recorded in
//! `schema_migrations`; a database that records a version this binary does not know is refused, so an
//! old binary never writes into a newer schema.

use super::{Store, StoreError};

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every SQLite migration, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "settings",
        sql: include_str!("../../migrations/sqlite/0001_settings.sql"),
    },
    Migration {
        version: 2,
        name: "accounts",
        sql: include_str!("../../migrations/sqlite/0002_accounts.sql"),
    },
];

pub(super) async fn run(store: &Store) -> Result<(), StoreError> {
    let mut tx = store.write().await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )
    .execute(&mut *tx)
    .await?;
    let current: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            .fetch_one(&mut *tx)
            .await?;
    let now = crate::clock::Clock::system().now();
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if current > known {
        return Err(StoreError::SchemaTooNew { found: current, known });
    }
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(migration.sql)).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(migration.version)
        .bind(migration.name)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tracing::info!(version = migration.version, name = migration.name, "applied migration");
    }
    tx.commit().await?;
    Ok(())
}

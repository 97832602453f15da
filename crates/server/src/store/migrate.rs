//! Embedded, forward-only migrations. Each is recorded in `schema_migrations`; a database that
//! records a version this binary does not know is refused, so an old binary never writes into a newer
//! schema.

use super::{Conn, StoreError};

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
    Migration {
        version: 3,
        name: "resources",
        sql: include_str!("../../migrations/sqlite/0003_resources.sql"),
    },
    Migration {
        version: 4,
        name: "dashboard",
        sql: include_str!("../../migrations/sqlite/0004_dashboard.sql"),
    },
    Migration {
        version: 5,
        name: "idempotency",
        sql: include_str!("../../migrations/sqlite/0005_idempotency.sql"),
    },
    Migration {
        version: 6,
        name: "audit",
        sql: include_str!("../../migrations/sqlite/0006_audit.sql"),
    },
];

/// Applies the pending migrations (inside the caller's write transaction).
pub(super) fn run(conn: &mut dyn Conn) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )?;
    let current =
        conn.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])?.int(0)?;
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if current > known {
        return Err(StoreError::SchemaTooNew { found: current, known });
    }
    let now = crate::clock::Clock::system().now();
    for migration in MIGRATIONS.iter().filter(|m| m.version > current) {
        conn.execute_batch(migration.sql)?;
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[migration.version.into(), migration.name.into(), now.into()],
        )?;
        tracing::info!(version = migration.version, name = migration.name, "applied migration");
    }
    Ok(())
}

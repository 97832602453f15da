//! Embedded, forward-only migrations. Each is recorded in `schema_migrations`; a database that
//! records a version this binary does not know is refused, so an old binary never writes into a newer
//! schema.

use super::{Backend, Conn, Query, StoreError};

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every SQLite migration, in order.
const SQLITE: &[Migration] = &[
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
    Migration {
        version: 7,
        name: "signing_secrets",
        sql: include_str!("../../migrations/sqlite/0007_signing_secrets.sql"),
    },
    Migration {
        version: 8,
        name: "one_live_key",
        sql: include_str!("../../migrations/sqlite/0008_one_live_key.sql"),
    },
    Migration {
        version: 9,
        name: "connector",
        sql: include_str!("../../migrations/sqlite/0009_connector.sql"),
    },
    Migration {
        version: 10,
        name: "consent",
        sql: include_str!("../../migrations/sqlite/0010_consent.sql"),
    },
    Migration {
        version: 11,
        name: "account_configuration",
        sql: include_str!("../../migrations/sqlite/0011_account_configuration.sql"),
    },
    Migration {
        version: 12,
        name: "live_keys",
        sql: include_str!("../../migrations/sqlite/0012_live_keys.sql"),
    },
    Migration {
        version: 13,
        name: "expiry",
        sql: include_str!("../../migrations/sqlite/0013_expiry.sql"),
    },
    Migration {
        version: 14,
        name: "code_family",
        sql: include_str!("../../migrations/sqlite/0014_code_family.sql"),
    },
];

/// Every PostgreSQL migration, in order: SQLite's, plus the tables only several instances need
/// (SQLite keeps rate-limit buckets in memory), so the version numbers differ from 7 on.
const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "settings",
        sql: include_str!("../../migrations/postgres/0001_settings.sql"),
    },
    Migration {
        version: 2,
        name: "accounts",
        sql: include_str!("../../migrations/postgres/0002_accounts.sql"),
    },
    Migration {
        version: 3,
        name: "resources",
        sql: include_str!("../../migrations/postgres/0003_resources.sql"),
    },
    Migration {
        version: 4,
        name: "dashboard",
        sql: include_str!("../../migrations/postgres/0004_dashboard.sql"),
    },
    Migration {
        version: 5,
        name: "idempotency",
        sql: include_str!("../../migrations/postgres/0005_idempotency.sql"),
    },
    Migration {
        version: 6,
        name: "audit",
        sql: include_str!("../../migrations/postgres/0006_audit.sql"),
    },
    Migration {
        version: 7,
        name: "rate_limits",
        sql: include_str!("../../migrations/postgres/0007_rate_limits.sql"),
    },
    Migration {
        version: 8,
        name: "signing_secrets",
        sql: include_str!("../../migrations/postgres/0008_signing_secrets.sql"),
    },
    Migration {
        version: 9,
        name: "one_live_key",
        sql: include_str!("../../migrations/postgres/0009_one_live_key.sql"),
    },
    Migration {
        version: 10,
        name: "connector",
        sql: include_str!("../../migrations/postgres/0010_connector.sql"),
    },
    Migration {
        version: 11,
        name: "consent",
        sql: include_str!("../../migrations/postgres/0011_consent.sql"),
    },
    Migration {
        version: 12,
        name: "signature_uses",
        sql: include_str!("../../migrations/postgres/0012_signature_uses.sql"),
    },
    Migration {
        version: 13,
        name: "account_configuration",
        sql: include_str!("../../migrations/postgres/0013_account_configuration.sql"),
    },
    Migration {
        version: 14,
        name: "live_keys",
        sql: include_str!("../../migrations/postgres/0014_live_keys.sql"),
    },
    Migration {
        version: 15,
        name: "expiry",
        sql: include_str!("../../migrations/postgres/0015_expiry.sql"),
    },
    Migration {
        version: 16,
        name: "code_family",
        sql: include_str!("../../migrations/postgres/0016_code_family.sql"),
    },
];

/// The migrations of `backend`, in order.
pub fn migrations(backend: Backend) -> &'static [Migration] {
    match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    }
}

/// Serializes instances migrating one PostgreSQL database at once (an arbitrary constant).
const MIGRATION_LOCK: i64 = 0x7072_6f76_6973_696f;

/// Applies the pending migrations (inside the caller's write transaction).
/// On PostgreSQL, the caller's transaction is READ COMMITTED, so that after the lock each statement
/// sees what an instance that migrated first committed.
pub(super) fn run(conn: &mut dyn Conn, backend: Backend) -> Result<(), StoreError> {
    if backend == Backend::Postgres {
        conn.query("SELECT pg_advisory_xact_lock($1)", &[MIGRATION_LOCK.into()])?;
    }
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )?;
    let current = current(conn)?;
    let migrations = migrations(backend);
    let known = migrations.last().map_or(0, |m| m.version);
    if current > known {
        return Err(StoreError::SchemaTooNew { found: current, known });
    }
    let now = crate::clock::Clock::system().now();
    for migration in migrations.iter().filter(|m| m.version > current) {
        conn.execute_batch(migration.sql)?;
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[migration.version.into(), migration.name.into(), now.into()],
        )?;
        tracing::info!(version = migration.version, name = migration.name, "applied migration");
    }
    Ok(())
}

/// The newest version recorded.
pub(super) fn current(conn: &mut dyn Query) -> Result<i64, StoreError> {
    conn.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])?.int(0)
}

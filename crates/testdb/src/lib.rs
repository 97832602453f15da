//! PostgreSQL for tests: the database `TEST_DATABASE_URL` names (CI sets it; without it tests
//! that need PostgreSQL say so and pass), and a schema of a test's own, dropped when it ends.
//! Statements run on a connection of their own, on a plain thread: the synchronous client must not
//! run on a test's async runtime.
// Test support: a failure here should fail the test that called it, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};

/// `TEST_DATABASE_URL`, if set and not empty.
pub fn database_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())
}

/// A fresh schema in the test database; its connection URL puts it first on the search path.
pub struct Schema {
    admin_url: String,
    name: String,
}

impl Schema {
    /// A schema named after `prefix`, the process and a counter, so no two tests share one.
    pub fn create(admin_url: &str, prefix: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}_{}_{n}_{nanos}", std::process::id());
        batch(admin_url, &format!("CREATE SCHEMA {name}"));
        Self { admin_url: admin_url.to_string(), name }
    }

    pub fn url(&self) -> String {
        let sep = if self.admin_url.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-csearch_path%3D{}", self.admin_url, self.name)
    }

    /// The first column (a BIGINT) of the first row of `sql`, run in this schema.
    pub fn scalar(&self, sql: &str) -> i64 {
        let (url, sql) = (self.url(), sql.to_string());
        on_own_thread(move || connect(&url).query_one(&sql, &[]).unwrap().get::<_, i64>(0))
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        batch(&self.admin_url, &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
    }
}

/// Runs `sql` (one or more statements) on a connection of its own.
pub fn batch(url: &str, sql: &str) {
    let (url, sql) = (url.to_string(), sql.to_string());
    on_own_thread(move || connect(&url).batch_execute(&sql).unwrap());
}

fn connect(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("TEST_DATABASE_URL: cannot connect: {e}"))
}

fn on_own_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(work).join().unwrap()
}

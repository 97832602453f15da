//! `provisio admin seed`: bulk-loads users (each with an organization, an owner membership and some
//! projects) so benchmarks can measure linking against a populated database.

use crate::{
    crypto::{RandomError, ordered_token},
    store::{Store, StoreError, accounts as sql},
};

/// Emails of seeded users: `seed-<run>-<n>@<domain>`.
pub const SEED_DOMAIN: &str = "seed.provisio.test";

/// One seeded user, as a benchmark needs it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeededUser {
    pub email: String,
    /// The user's first project (a `team_id` that resolves).
    pub team_id: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// Users are written this many per transaction: large enough to be fast, small enough not to hold
/// the writer for long.
const BATCH: usize = 500;

/// Batches in flight at once: SQLite runs them one after another on its writer anyway; PostgreSQL
/// spreads them over its pool.
const IN_FLIGHT: usize = 8;

/// Creates `users` users with `projects` projects each and returns them.
pub async fn seed(
    store: &Store,
    run: &str,
    users: usize,
    projects: usize,
    now: i64,
) -> Result<Vec<SeededUser>, SeedError> {
    let mut seeded = Vec::with_capacity(users);
    let mut batches = tokio::task::JoinSet::new();
    let mut starts = (0..users).step_by(BATCH);
    loop {
        while batches.len() < IN_FLIGHT {
            let Some(start) = starts.next() else { break };
            let (store, run) = (store.clone(), run.to_string());
            let end = (start + BATCH).min(users);
            batches.spawn(
                async move { (start, batch(&store, &run, start..end, projects, now).await) },
            );
        }
        let Some(done) = batches.join_next().await else { break };
        let (start, batch) = done.map_err(|e| StoreError::Thread(e.to_string()))?;
        seeded.push((start, batch?));
    }
    seeded.sort_unstable_by_key(|(start, _)| *start);
    let seeded = seeded.into_iter().flat_map(|(_, batch)| batch).collect();
    Ok(seeded)
}

/// Users `range` in one transaction.
async fn batch(
    store: &Store,
    run: &str,
    range: std::ops::Range<usize>,
    projects: usize,
    now: i64,
) -> Result<Vec<SeededUser>, SeedError> {
    let run = run.to_string();
    store
        .write(move |conn| -> Result<Vec<SeededUser>, SeedError> {
            let mut out = Vec::with_capacity(range.len());
            for n in range.clone() {
                let email = format!("seed-{run}-{n}@{SEED_DOMAIN}");
                let (user_id, org_id) =
                    (format!("usr_seed_{run}_{n}"), format!("org_seed_{run}_{n}"));
                let user = sql::NewUser {
                    id: &user_id,
                    email: &email,
                    email_normalized: &email,
                    first_name: Some("Seed"),
                    name: Some("Seed User"),
                };
                sql::insert_user(conn, &user, now)?;
                sql::insert_organization(conn, &org_id, &format!("Seed org {n}"), now)?;
                sql::insert_membership(conn, &user_id, &org_id, "owner", now)?;
                let mut first = None;
                for p in 0..projects.max(1) {
                    let id = sql::insert_project(
                        conn,
                        &org_id,
                        &format!("Project {p}"),
                        false,
                        &ordered_token("pub")?,
                        now,
                    )?;
                    first.get_or_insert(id);
                }
                out.push(SeededUser { email, team_id: first.unwrap_or_default() });
            }
            Ok(out)
        })
        .await
}

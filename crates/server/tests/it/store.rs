//! The store's transactions as the domain sees them, on both backends: a deferred statement
//! (`Conn::defer`, sent with the next one on PostgreSQL) is part of its transaction like any other.

use provisio_server::store::{Backend, Conn, StoreError};
use provisio_testkit::backend_test;

use crate::support::TestApp;

const INSERT: &str = "INSERT INTO organizations (id, name, created_at) VALUES ($1, $2, 1)";

/// The store's write transaction; every attempt runs `work`.
async fn write<T: Send + 'static>(
    app: &TestApp,
    work: impl FnMut(&mut dyn Conn) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    app.state.store.write(work).await
}

async fn organizations(app: &TestApp) -> i64 {
    app.scalar_i64("SELECT COUNT(*) FROM organizations WHERE id LIKE 'org_deferred_%'").await
}

#[backend_test]
async fn deferred_statements_are_seen_by_the_next_statement_and_committed() {
    let app = TestApp::new().await;
    let seen = write(&app, |conn| {
        conn.defer(INSERT, &["org_deferred_1".into(), "one".into()])?;
        conn.defer(INSERT, &["org_deferred_2".into(), "two".into()])?;
        conn.query_one("SELECT COUNT(*) FROM organizations WHERE id LIKE 'org_deferred_%'", &[])?
            .int(0)
    })
    .await
    .unwrap();
    assert_eq!(seen, 2);
    assert_eq!(organizations(&app).await, 2);
}

#[backend_test]
async fn a_deferred_statement_that_fails_at_commit_fails_the_transaction_and_keeps_nothing() {
    let app = TestApp::new().await;
    let result = write(&app, |conn| {
        conn.defer(INSERT, &["org_deferred_ok".into(), "ok".into()])?;
        // NOT NULL violated: nothing after this statement waits for an answer but the commit.
        conn.defer(INSERT, &["org_deferred_bad".into(), None::<&str>.into()])
    })
    .await;
    // SQLite fails the statement itself; PostgreSQL the commit it travelled with.
    assert!(matches!(result, Err(StoreError::Sqlite(_) | StoreError::Aborted(_))), "{result:?}");
    assert_eq!(organizations(&app).await, 0);
}

/// A work that goes on past a failed statement and asks to commit: SQLite commits the statements
/// that succeeded; PostgreSQL cannot (the failure aborted its transaction), and says so rather than
/// answer the work's success after a silent rollback.
#[backend_test]
async fn a_failure_the_work_swallowed_is_not_reported_as_a_commit() {
    let app = TestApp::new().await;
    let result = write(&app, |conn| {
        conn.defer(INSERT, &["org_deferred_first".into(), "first".into()])?;
        let failed = conn.defer(INSERT, &["org_deferred_bad".into(), None::<&str>.into()]);
        // SQLite fails the statement at once; PostgreSQL with the statement that follows.
        let next = conn.query("SELECT 1", &[]);
        assert!(failed.is_err() != next.is_err(), "{failed:?} {next:?}");
        Ok(())
    })
    .await;
    match app.state.store.backend() {
        Backend::Sqlite => {
            assert!(result.is_ok());
            assert_eq!(organizations(&app).await, 1);
        }
        Backend::Postgres => {
            assert!(matches!(result, Err(StoreError::Aborted(_))), "{result:?}");
            assert_eq!(organizations(&app).await, 0);
        }
    }
}

#[backend_test]
async fn a_rolled_back_transaction_drops_what_it_deferred() {
    let app = TestApp::new().await;
    let result = write(&app, |conn| -> Result<(), StoreError> {
        conn.defer(INSERT, &["org_deferred_gone".into(), "gone".into()])?;
        Err(StoreError::NoRow)
    })
    .await;
    assert!(matches!(result, Err(StoreError::NoRow)));
    assert_eq!(organizations(&app).await, 0);
}

/// Closing finishes the queued work, lets every database thread exit (on PostgreSQL, after its
/// connection says goodbye) and turns later work away.
#[backend_test]
async fn closing_waits_for_the_threads_and_then_refuses_work() {
    let app = TestApp::new().await;
    write(&app, |conn| conn.defer(INSERT, &["org_deferred_closing".into(), "c".into()]))
        .await
        .unwrap();
    app.state.store.close().await.expect("every thread exits cleanly");
    let after = write(&app, |conn| conn.defer(INSERT, &["org_deferred_late".into(), "l".into()]));
    assert!(matches!(after.await, Err(StoreError::Closed)));
    // On SQLite the connections are closed by then: the last one folded the WAL into the
    // database file and removed it.
    if let Some(path) = app.database_url.strip_prefix("sqlite://") {
        assert!(!std::path::Path::new(&format!("{path}-wal")).exists(), "the WAL is checkpointed");
        assert!(std::path::Path::new(path).exists());
    }
}

/// An idempotency key is held by one request at a time: a second claim sees it in flight (and
/// whether its body matches), a released key can be claimed again, a recorded one answers its
/// record. On PostgreSQL a claim whose instance died ends with its lease.
#[backend_test]
async fn an_idempotency_key_is_claimed_by_one_request_at_a_time() {
    use provisio_server::store::idempotency::{Claim, Recorded};
    let app = TestApp::new().await;
    let store = &app.state.store;
    assert_eq!(store.claim_key("k1", "body-a", 100, 160).await.unwrap(), Claim::Won);
    let in_flight = |same_request| Claim::InFlight { same_request };
    assert_eq!(store.claim_key("k1", "body-a", 101, 161).await.unwrap(), in_flight(true));
    assert_eq!(store.claim_key("k1", "body-b", 101, 161).await.unwrap(), in_flight(false));

    store.release_key("k1").await.unwrap();
    assert_eq!(store.claim_key("k1", "body-b", 102, 162).await.unwrap(), Claim::Won);
    let recorded = Recorded {
        request_hash: "body-b".into(),
        status: 201,
        nonce: "n".into(),
        sealed_body: "s".into(),
    };
    store.complete_key("k1", recorded.clone(), 103, 200).await.unwrap();
    assert_eq!(store.claim_key("k1", "body-b", 104, 164).await.unwrap(), Claim::Recorded(recorded));
    assert_eq!(store.claim_key("k1", "body-b", 200, 260).await.unwrap(), Claim::Won, "expired");

    assert_eq!(store.claim_key("k2", "x", 100, 160).await.unwrap(), Claim::Won);
    let after_lease = store.claim_key("k2", "x", 160, 220).await.unwrap();
    match app.state.store.backend() {
        Backend::Postgres => assert_eq!(after_lease, Claim::Won, "the lease ended"),
        // One process: a claim lives exactly as long as its request.
        Backend::Sqlite => assert_eq!(after_lease, in_flight(true)),
    }
}

/// Writes that queue behind a busy writer keep their own outcomes: on SQLite they are committed as
/// one transaction, each in its own savepoint, so a write that fails or asks for a rollback is
/// undone alone and the others commit; of two writes inserting one key, one wins.
#[backend_test]
async fn writes_that_queue_together_keep_their_own_outcomes() {
    let app = TestApp::new().await;
    // The first write holds the writer until the others have queued behind it.
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let hold = std::sync::Mutex::new(hold);
    let store = app.state.store.clone();
    let first = tokio::spawn(async move {
        store
            .write(move |conn| {
                let _ = hold.lock().unwrap().recv_timeout(std::time::Duration::from_secs(5));
                conn.execute(INSERT, &["org_deferred_first".into(), "first".into()])
            })
            .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let store = app.state.store.clone();
            tokio::spawn(async move {
                store
                    .write(move |conn| {
                        let id = if i >= 28 {
                            "org_deferred_twin".into()
                        } else {
                            format!("org_deferred_{i}")
                        };
                        match i % 3 {
                            // Asks for a rollback after its insert.
                            0 if i < 28 => {
                                conn.execute(INSERT, &[(&id).into(), "x".into()])?;
                                Err(StoreError::NoRow)
                            }
                            // A statement that fails (NOT NULL).
                            1 if i < 28 => {
                                conn.execute(INSERT, &[(&id).into(), None::<&str>.into()])
                            }
                            _ => conn.execute(INSERT, &[(&id).into(), "x".into()]),
                        }
                    })
                    .await
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    release.send(()).unwrap();
    assert_eq!(first.await.unwrap().unwrap(), 1);
    let mut twins_won = 0;
    for (i, task) in tasks.into_iter().enumerate() {
        let result = task.await.unwrap();
        match (i, i % 3) {
            (28.., _) => twins_won += usize::from(result.is_ok()),
            (_, 0) => assert!(matches!(result, Err(StoreError::NoRow)), "{i}: {result:?}"),
            (_, 1) => assert!(result.is_err(), "{i}: {result:?}"),
            _ => assert_eq!(result.unwrap(), 1, "{i}"),
        }
    }
    assert_eq!(twins_won, 1, "one of two writes of one key wins");
    // first + the 9 successes among 0..28 (i % 3 == 2) + the twin.
    assert_eq!(organizations(&app).await, 1 + 9 + 1);
    let kept = app
        .scalar_i64("SELECT COUNT(*) FROM organizations WHERE id IN ('org_deferred_0', 'org_deferred_1', 'org_deferred_3')")
        .await;
    assert_eq!(kept, 0, "what failed or rolled back left nothing");
}

/// SQLite's WAL stays bounded under a steady stream of writes: the checkpointer copies it off the
/// writer and the writer starts it over once it holds `RESTART_AT` frames (store/wal.rs). Writes of
/// 2.5 times that, one transaction after another while readers read, leave a WAL file of at most
/// 1.5 times it.
#[backend_test]
async fn the_sqlite_wal_is_started_over_while_writes_go_on() {
    use provisio_server::store::wal::RESTART_AT;
    let app = TestApp::new().await;
    let Some(path) = app.database_url.strip_prefix("sqlite://").map(str::to_string) else {
        return; // PostgreSQL has no WAL of ours to keep
    };
    let limit = u64::try_from(RESTART_AT).unwrap() * 4096;
    let name = "x".repeat(100_000);
    let writes = limit * 5 / 2 / 100_000;
    // Readers keep reading all along: a restart waits for readers in the WAL, never for long.
    let reading = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (store, reading) = (app.state.store.clone(), reading.clone());
            tokio::spawn(async move {
                while reading.load(std::sync::atomic::Ordering::Relaxed) {
                    store
                        .read(|conn| {
                            conn.query_one("SELECT COUNT(*) FROM organizations", &[])?.int(0)
                        })
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for i in 0..writes {
        let name = name.clone();
        write(&app, move |conn| {
            conn.execute(INSERT, &[format!("org_deferred_wal_{i}").as_str().into(), (&name).into()])
        })
        .await
        .unwrap();
    }
    reading.store(false, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
    let wal = std::fs::metadata(format!("{path}-wal")).map(|m| m.len()).unwrap_or(0);
    assert!(wal <= limit * 3 / 2, "the WAL is {wal} bytes after {} MB of writes", writes / 10);
    assert_eq!(organizations(&app).await, i64::try_from(writes).unwrap());
}

/// A rotation revokes a project's live keys by the index on (project_id, revoked_at), reading only
/// the live ones: a project's revoked keys (one per rotation, forever) cost it nothing.
#[backend_test]
async fn housekeeping_finds_expired_requests_and_codes_through_their_indexes() {
    let app = TestApp::new().await;
    if app.state.store.backend() != Backend::Sqlite {
        return; // PostgreSQL plans by table size; the indexes are the same there
    }
    for (table, index) in [
        ("account_requests", "account_requests_expiry"),
        ("authorization_codes", "authorization_codes_expiry"),
    ] {
        let sql = format!("EXPLAIN QUERY PLAN DELETE FROM {table} WHERE expires_at <= ?1");
        let plan = app
            .state
            .store
            .read(move |conn| {
                let rows = conn.query(&sql, &[0.into()])?;
                rows.iter().map(|r| r.text(3)).collect::<Result<Vec<_>, _>>()
            })
            .await
            .unwrap()
            .join("\n");
        assert!(plan.contains(&format!("USING INDEX {index} (expires_at<?)")), "{plan}");
    }
}

#[backend_test]
async fn one_users_audit_events_are_found_through_their_index() {
    use provisio_server::store::audit::LIST_OF_USER;
    let app = TestApp::new().await;
    if app.state.store.backend() != Backend::Sqlite {
        return; // PostgreSQL plans by table size; the index is the same there
    }
    let sql = format!("EXPLAIN QUERY PLAN {}", LIST_OF_USER.replace('$', "?"));
    let plan = app
        .state
        .store
        .read(move |conn| {
            let rows = conn.query(&sql, &[0.into(), "usr_1".into(), 10.into()])?;
            rows.iter().map(|r| r.text(3)).collect::<Result<Vec<_>, _>>()
        })
        .await
        .unwrap()
        .join("\n");
    assert!(plan.contains("USING INDEX audit_events_user (user_id=? AND at>?)"), "{plan}");
}

#[backend_test]
async fn revoking_live_keys_reads_only_the_live_ones() {
    use provisio_server::store::resources::REVOKE_PERSONAL_KEYS;
    let app = TestApp::new().await;
    if app.state.store.backend() != Backend::Sqlite {
        return; // PostgreSQL plans by table size; the index exists there too (migration 0014)
    }
    let sql = format!("EXPLAIN QUERY PLAN {}", REVOKE_PERSONAL_KEYS.replace('$', "?"));
    let plan = app
        .state
        .store
        .read(move |conn| {
            let rows = conn.query(&sql, &[1.into(), 2.into(), None::<&str>.into()])?;
            rows.iter().map(|r| r.text(3)).collect::<Result<Vec<_>, _>>()
        })
        .await
        .unwrap()
        .join("\n");
    assert!(
        plan.contains("USING INDEX personal_keys_project (project_id=? AND revoked_at=?)"),
        "{plan}"
    );
}

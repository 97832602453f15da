//! The SQLite backend. Transactions run synchronously, start to finish, on one writer thread that
//! owns the only write connection: a transaction costs one hand-off between threads instead of one
//! per statement, and writers queue in arrival order instead of sleeping in SQLite's busy handler.
//! Writes that queue up while one commits are committed together (group commit, see
//! [`run_group`]). Reads run on a few reader threads with their own connections (WAL lets them
//! proceed while the writer writes).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, mpsc},
    thread,
    time::Duration,
};

use rusqlite::{Connection, OpenFlags, types::ValueRef};

use super::{
    StoreError,
    sql::{Conn, Param, Query, Row, Value},
    tx::{Mode, TxJob},
    wal,
};

/// Work for a database thread.
pub(super) type Job = Box<dyn TxJob>;

const READERS: usize = 2;

pub(super) struct Sqlite {
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    readers: Mutex<Option<mpsc::Sender<Job>>>,
    writer_thread: Mutex<Vec<thread::JoinHandle<()>>>,
    reader_threads: Mutex<Vec<thread::JoinHandle<()>>>,
    /// The WAL's length as the writer and the checkpointer see it.
    log: Arc<wal::Log>,
    checkpointer_thread: Mutex<Vec<thread::JoinHandle<()>>>,
    /// Idempotency keys claimed by requests in flight (key hash → request hash). A SQLite
    /// database has one provisio process, so the claim needs no write (`idempotency::Claim`).
    pub(super) in_flight: Mutex<HashMap<String, String>>,
    /// Which request each signature was first used for (`signature_uses`), in memory for the
    /// same reason.
    pub(super) signature_uses: Mutex<super::signature_uses::Bindings>,
}

impl Sqlite {
    /// Opens `path` (created if missing, readable by its owner only: it holds the server secret)
    /// with one writer and a few reader threads. SQLite gives the `-wal` and `-shm` files the
    /// database file's permissions.
    pub(super) fn open(path: &str) -> Result<Self, StoreError> {
        create_private(path)?;
        let mut writer = connect(path, WRITER_CACHE_KIB)?;
        let log = Arc::new(wal::Log::default());
        log.watch(&mut writer)?;
        writer.busy_handler(Some(wal::wait_briefly))?;
        // A WAL that a burst made longer is cut back to this size when it starts over.
        writer.pragma_update(None, "journal_size_limit", i64::from(wal::RESTART_AT) * 4096)?;
        let checkpointer_thread =
            vec![wal::spawn_checkpointer(connect(path, CHECKPOINTER_CACHE_KIB)?, log.clone())?];
        let (write_tx, write_rx) = mpsc::channel();
        let writer_thread = vec![spawn_writer(writer, write_rx, log.clone())?];
        let mut reader_threads = Vec::with_capacity(READERS);
        let (read_tx, read_rx) = mpsc::channel();
        let read_rx = Arc::new(Mutex::new(read_rx));
        for i in 0..READERS {
            reader_threads.push(spawn_reader(
                format!("provisio-db-reader-{i}"),
                connect(path, READER_CACHE_KIB)?,
                read_rx.clone(),
            )?);
        }
        Ok(Self {
            writer: Mutex::new(Some(write_tx)),
            readers: Mutex::new(Some(read_tx)),
            writer_thread: Mutex::new(writer_thread),
            reader_threads: Mutex::new(reader_threads),
            log,
            checkpointer_thread: Mutex::new(checkpointer_thread),
            in_flight: Mutex::default(),
            signature_uses: Mutex::default(),
        })
    }

    /// Queues `job`: writes (either mode) on the writer, reads on a reader.
    pub(super) fn submit(&self, mode: Mode, job: Job) -> Result<(), StoreError> {
        let slot = if mode == Mode::Read { &self.readers } else { &self.writer };
        let sender = slot.lock().map_err(|_| StoreError::Closed)?;
        sender.as_ref().ok_or(StoreError::Closed)?.send(job).map_err(|_| StoreError::Closed)
    }

    /// Stops accepting work and waits while the threads finish what they have and close their
    /// connections: the readers and the checkpointer first, then the writer, so that the writer's
    /// is the last connection and folds the WAL into the database file and removes it (two
    /// connections closing at once can each see the other and leave the WAL behind). Blocks.
    /// Says how many threads panicked instead of exiting.
    pub(super) fn close(&self) -> usize {
        let stop = |sender: &Mutex<Option<_>>| {
            if let Ok(mut sender) = sender.lock() {
                sender.take();
            }
        };
        stop(&self.readers);
        let mut panicked = super::tx::join_all(&self.reader_threads);
        self.log.stop();
        panicked += super::tx::join_all(&self.checkpointer_thread);
        stop(&self.writer);
        panicked + super::tx::join_all(&self.writer_thread)
    }
}

/// Runs `job` in one transaction: `BEGIN IMMEDIATE` for writes (the writer thread is the only
/// writer, so it never waits), a deferred one for reads.
fn run(conn: &mut Connection, mode: Mode, mut job: Job) {
    let begin = if mode == Mode::Read { "BEGIN" } else { "BEGIN IMMEDIATE" };
    if let Err(e) = exec(conn, begin) {
        return job.finish(Some(e));
    }
    let commit = job.attempt(&mut SqliteConn(conn));
    let outcome = if commit && mode != Mode::Read { exec(conn, "COMMIT") } else { Ok(()) };
    if !conn.is_autocommit() {
        let _ = exec(conn, "ROLLBACK");
    }
    job.finish(outcome.err().filter(|_| commit));
}

/// The most writes committed as one transaction: enough to take everything queued at the
/// concurrency provisio sees, few enough that one group's answers are not held up long.
const MAX_GROUP: usize = 64;

/// Runs `jobs` (writes, in arrival order) in one transaction. Every write is answered only after
/// the one commit, with its own result, so durability and every rule a write keeps are those of
/// a transaction of its own; what is saved is a commit per write (its WAL frames, the pages it
/// shares with the others written once) and a wake-up of the writer per write.
///
/// First all of them run plainly, which is what nearly always happens. If one fails or asks for a
/// rollback, that attempt is rolled back whole and they all run again, each in its own savepoint,
/// so that the failing one is rolled back alone and the others' effects are as if they had run
/// one after the other. (Savepoints from the start would cost a copy of every page each write
/// changes, 9% of the writer's time; a write's work may run more than once anyway, `Store::write`.)
fn run_group(conn: &mut Connection, mut jobs: Vec<Job>) {
    if jobs.len() > 1 && all_or_nothing(conn, &mut jobs) {
        for job in jobs {
            job.finish(None);
        }
        return;
    }
    while !jobs.is_empty() {
        if jobs.len() == 1 {
            return run(conn, Mode::Write, jobs.remove(0));
        }
        jobs = run_some(conn, jobs);
    }
}

/// Runs every job in one transaction and commits it when every one asked to; otherwise rolls it
/// all back. Whether it committed.
fn all_or_nothing(conn: &mut Connection, jobs: &mut [Job]) -> bool {
    if exec(conn, "BEGIN IMMEDIATE").is_err() {
        return false;
    }
    let all =
        jobs.iter_mut().all(|job| job.attempt(&mut SqliteConn(conn)) && !conn.is_autocommit());
    if all && exec(conn, "COMMIT").is_ok() {
        return true;
    }
    if !conn.is_autocommit() {
        let _ = exec(conn, "ROLLBACK");
    }
    false
}

/// One group transaction over as many of `jobs` as it can take; returns those it did not reach
/// (when SQLite ended the transaction itself, after an I/O or memory error).
fn run_some(conn: &mut Connection, jobs: Vec<Job>) -> Vec<Job> {
    if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
        for job in jobs {
            job.finish(Some(StoreError::Aborted(e.to_string())));
        }
        return Vec::new();
    }
    // The jobs run so far, each with whether it asked for a commit.
    let mut done: Vec<(Job, bool)> = Vec::with_capacity(jobs.len());
    let mut jobs = jobs.into_iter();
    for mut job in jobs.by_ref() {
        let outcome = exec(conn, "SAVEPOINT provisio_job").and_then(|()| {
            let commit = job.attempt(&mut SqliteConn(conn));
            if !commit {
                exec(conn, "ROLLBACK TO provisio_job")?;
            }
            exec(conn, "RELEASE provisio_job").map(|()| commit)
        });
        if conn.is_autocommit() {
            // SQLite rolled the whole transaction back: nothing done so far holds.
            let why =
                outcome.err().map_or("SQLite ended the transaction".into(), |e| e.to_string());
            for (job, _) in done.into_iter().chain([(job, true)]) {
                job.finish(Some(StoreError::Aborted(why.clone())));
            }
            return jobs.collect();
        }
        match outcome {
            Ok(commit) => done.push((job, commit)),
            Err(e) => {
                // The savepoint could not be set or ended: undo what this job did, answer it alone.
                let _ = exec(conn, "ROLLBACK TO provisio_job")
                    .and_then(|()| exec(conn, "RELEASE provisio_job"));
                job.finish(Some(e));
            }
        }
    }
    let failure = exec(conn, "COMMIT").err();
    if failure.is_some() && !conn.is_autocommit() {
        let _ = exec(conn, "ROLLBACK");
    }
    for (job, commit) in done {
        // A job that asked for a rollback is answered with its own result either way.
        job.finish(failure.as_ref().filter(|_| commit).map(|e| StoreError::Aborted(e.to_string())));
    }
    Vec::new()
}

/// Runs one statement of the group's own (prepared once per connection).
fn exec(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Creates the database file with mode 0600 when it does not exist yet (an existing file keeps its
/// mode: the operator's choice).
fn create_private(path: &str) -> Result<(), StoreError> {
    if path.starts_with(':') || path.starts_with("file:") || std::path::Path::new(path).exists() {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(StoreError::File { path: path.to_string(), error }),
    }
}

/// Page caches (KiB). The writer touches every table's growing end and the indexes it inserts into;
/// the readers' hot pages (the rows of live resources and tokens) are few, and what they miss the
/// operating system's page cache answers. Together they bound the server's memory under load.
///
/// The writer's is small on purpose. When SQLite splits a b-tree page into siblings out of order,
/// it swaps their numbers through the lock-byte page (number 262,145 at 4 KiB pages) as a
/// temporary key; the page cache then remembers that key as its largest, and at the `COMMIT` after
/// it (two commits in three, under the new-user flow) truncating the cache to the database's size
/// scans its whole hash table, in proportion to the cache's size, while the database is under
/// 1 GiB: 7.0% of the writer at 16 MB, 2.2% at 4 MB (perf), and 13% again at 4 MB once ordered
/// keys made the rest of each commit cheaper. At 2 MB the full flow runs 5% faster than at 4 MB,
/// and no faster at 1 MB. What the writer misses the operating system's page cache answers
/// (docs/benchmarks.md).
const WRITER_CACHE_KIB: i64 = 2_000;
const READER_CACHE_KIB: i64 = 4_000;
/// A checkpoint copies frames without the page cache.
const CHECKPOINTER_CACHE_KIB: i64 = 500;

fn connect(path: &str, cache_kib: i64) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // temp_store in memory: the group commit's savepoints journal the pages each write changes,
    // which SQLite otherwise spills to a temporary file past 64 KiB.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
         PRAGMA temp_store = MEMORY;",
    )?;
    conn.pragma_update(None, "cache_size", -cache_kib)?;
    // One plan per statement, whatever is bound: without it SQLite prepares a statement again
    // each time a parameter it looked at while planning gets a new value (~8% of the writer).
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(conn)
}

/// The writer: takes a write, and with it every write queued behind it (up to `MAX_GROUP`); after
/// answering them, restarts the WAL when it has grown long (`wal`).
fn spawn_writer(
    mut conn: Connection,
    jobs: mpsc::Receiver<Job>,
    log: Arc<wal::Log>,
) -> Result<thread::JoinHandle<()>, StoreError> {
    super::tx::spawn_thread("provisio-db-writer".into(), move || {
        while let Ok(first) = jobs.recv() {
            let mut group = vec![first];
            group.extend(jobs.try_iter().take(MAX_GROUP - 1));
            run_group(&mut conn, group);
            if log.restart_due() {
                wal::restart(&conn, &log);
            }
        }
    })
}

/// A reader: takes reads from the channel its siblings share.
fn spawn_reader(
    name: String,
    mut conn: Connection,
    jobs: Arc<Mutex<mpsc::Receiver<Job>>>,
) -> Result<thread::JoinHandle<()>, StoreError> {
    super::tx::spawn_thread(name, move || {
        loop {
            // Only one idle thread waits on the channel at a time; the others wait for the lock.
            let job = match jobs.lock() {
                Ok(rx) => rx.recv(),
                Err(_) => return,
            };
            match job {
                Ok(job) => run(&mut conn, Mode::Read, job),
                Err(_) => return,
            }
        }
    })
}

/// `$N` (the text every backend is written in) → SQLite's `?N`, which binds by number.
fn sqlite_placeholders(sql: &str) -> std::borrow::Cow<'_, str> {
    if !sql.contains('$') {
        return sql.into();
    }
    // Copied in spans between the `$`s (a character at a time cost 3% of the writer).
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let next_is_digit = rest.as_bytes().get(at + 1).is_some_and(u8::is_ascii_digit);
        out.push(if next_is_digit { '?' } else { '$' });
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
    out.into()
}

fn bind(stmt: &mut rusqlite::CachedStatement<'_>, params: &[Param<'_>]) -> Result<(), StoreError> {
    for (i, param) in params.iter().enumerate() {
        let index = i + 1;
        match *param {
            Param::Null => stmt.raw_bind_parameter(index, rusqlite::types::Null)?,
            Param::Int(v) => stmt.raw_bind_parameter(index, v)?,
            Param::Text(v) => stmt.raw_bind_parameter(index, v)?,
        }
    }
    Ok(())
}

fn value(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

/// A connection (or a transaction, through `Deref`) seen through the backend-neutral interface.
pub(super) struct SqliteConn<'a>(pub &'a Connection);

impl Query for SqliteConn<'_> {
    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self.0.prepare_cached(&sqlite_placeholders(sql))?;
        bind(&mut stmt, params)?;
        let columns = stmt.column_count();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(Row((0..columns)
                .map(|i| row.get_ref(i).map(value))
                .collect::<Result<_, _>>()?));
        }
        Ok(out)
    }
}

impl Conn for SqliteConn<'_> {
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, StoreError> {
        let mut stmt = self.0.prepare_cached(&sqlite_placeholders(sql))?;
        bind(&mut stmt, params)?;
        Ok(stmt.raw_execute()? as u64)
    }

    fn execute_batch(&mut self, sql: &str) -> Result<(), StoreError> {
        Ok(self.0.execute_batch(sql)?)
    }
}

#[cfg(test)]
mod tests {
    use super::sqlite_placeholders;

    #[test]
    fn placeholders_become_numbered_question_marks() {
        assert_eq!(
            sqlite_placeholders("SELECT $2, $1, $10 WHERE a = '$'"),
            "SELECT ?2, ?1, ?10 WHERE a = '$'"
        );
        assert_eq!(sqlite_placeholders("SELECT 1"), "SELECT 1");
        assert_eq!(sqlite_placeholders("SELECT 'é$', $$3$"), "SELECT 'é$', $?3$");
    }
}

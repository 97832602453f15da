//! The PostgreSQL backend: a pool of connections, each owned by its own thread, taking
//! transactions from one queue (the same shape as SQLite's readers, so the store's synchronous
//! closures run unchanged). Writes run at READ COMMITTED and are attempted again after a conflict
//! (see `tx.rs`); statements are prepared once per connection and cached. Inside a transaction,
//! BEGIN and the statements whose answers the work does not wait for (`Conn::defer`) travel with
//! the next statement that it does wait for, so a transaction costs a round trip per answer, not
//! per statement.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, mpsc},
    thread,
    time::{Duration, Instant},
};

use futures_util::future::{join, join_all};
use tokio_postgres::{
    Client, Config, Statement,
    config::SslMode,
    error::SqlState,
    types::{FromSql, IsNull, ToSql, Type, to_sql_checked},
};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{
    PoolOptions, StoreError,
    sql::{Conn, Param, Query, Row, Value},
    tx::{Mode, TxJob},
};

type Job = (Mode, Box<dyn TxJob>);

/// Attempts of one write transaction before the conflict is reported as an error.
const MAX_ATTEMPTS: u32 = 30;

pub(super) struct Postgres {
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    threads: Mutex<Vec<thread::JoinHandle<()>>>,
    /// The signature bindings this instance has written or read (`signature_uses`): a binding
    /// never changes while it lives, so a copy answers without a round trip.
    pub(super) signature_uses: Mutex<super::signature_uses::Bindings>,
}

impl Postgres {
    /// Connects `options.max_connections` clients (failing fast if the first cannot connect) and
    /// starts their threads.
    pub(super) fn open(url: &str, options: &PoolOptions) -> Result<Self, StoreError> {
        let (url, tls_mode) = split_sslmode(url)?;
        let mut config: Config = url.parse()?;
        config.ssl_mode(match tls_mode {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            TlsMode::Require | TlsMode::VerifyFull => SslMode::Require,
        });
        let tls = tls(tls_mode, options)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = Vec::new();
        for i in 0..options.max_connections.max(1) {
            let worker = Worker::connect(config.clone(), tls.clone())?;
            let rx = rx.clone();
            threads.push(super::tx::spawn_thread(format!("provisio-pg-{i}"), move || {
                worker.serve(&rx)
            })?);
        }
        Ok(Self {
            jobs: Mutex::new(Some(tx)),
            threads: Mutex::new(threads),
            signature_uses: Mutex::default(),
        })
    }

    pub(super) fn submit(&self, mode: Mode, job: Box<dyn TxJob>) -> Result<(), StoreError> {
        let sender = self.jobs.lock().map_err(|_| StoreError::Closed)?;
        sender.as_ref().ok_or(StoreError::Closed)?.send((mode, job)).map_err(|_| StoreError::Closed)
    }

    /// Stops accepting work and waits while the threads finish what they have, close their
    /// connections and exit, so none is cut off by the process ending. Blocks. Says how many
    /// threads panicked instead of exiting.
    pub(super) fn close(&self) -> usize {
        if let Ok(mut sender) = self.jobs.lock() {
            sender.take();
        }
        super::tx::join_all(&self.threads)
    }
}

/// libpq's `sslmode`, which tokio-postgres only knows in part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsMode {
    /// Plain connections.
    Disable,
    /// TLS when the server offers it, certificate not checked (libpq's default).
    Prefer,
    /// TLS or nothing, certificate not checked (as libpq's `require`).
    Require,
    /// TLS or nothing, certificate chain and host name verified: what a managed database wants.
    VerifyFull,
}

/// Takes `sslmode` out of the URL's query (tokio-postgres refuses `verify-full`).
fn split_sslmode(url: &str) -> Result<(String, TlsMode), StoreError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), TlsMode::Prefer));
    };
    let mut mode = TlsMode::Prefer;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        match pair.strip_prefix("sslmode=") {
            Some("disable") => mode = TlsMode::Disable,
            Some("allow" | "prefer") => mode = TlsMode::Prefer,
            Some("require") => mode = TlsMode::Require,
            Some("verify-full") => mode = TlsMode::VerifyFull,
            Some(other) => {
                return Err(StoreError::Tls(format!(
                    "sslmode={other} is not supported: use disable, prefer, require or verify-full"
                )));
            }
            None => kept.push(pair),
        }
    }
    let url = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
    Ok((url, mode))
}

/// The TLS set-up for `mode`: the Mozilla roots plus the operator's CA file when verifying.
fn tls(mode: TlsMode, options: &PoolOptions) -> Result<MakeRustlsConnect, StoreError> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let tls_error = |e: &dyn std::fmt::Display| StoreError::Tls(e.to_string());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(&e))?;
    let config = if mode == TlsMode::VerifyFull {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(path) = &options.ca_file {
            let in_file =
                |e: &dyn std::fmt::Display| tls_error(&format!("{}: {e}", path.display()));
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| in_file(&e))? {
                roots.add(cert.map_err(|e| in_file(&e))?).map_err(|e| in_file(&e))?;
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unverified(provider)))
            .with_no_client_auth()
    };
    Ok(MakeRustlsConnect::new(config))
}

/// `prefer` and `require`: encrypted against a passive listener, as libpq does, but any
/// certificate is taken. Signatures in the handshake are still checked.
#[derive(Debug)]
struct Unverified(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// How a write transaction begins. A statement outside a transaction (a replay record, a
/// housekeeping delete: `Mode::EachStatement`) commits without waiting for its WAL to reach disk,
/// which is the session's setting (`Session::open`); a transaction waits, as it carries the rules.
/// Losing the last fraction of a second of replay records in a crash costs only a retry that runs
/// again, which the domain's own idempotency absorbs (docs/decisions.md, "PostgreSQL").
const BEGIN: &str =
    "START TRANSACTION ISOLATION LEVEL READ COMMITTED; SET LOCAL synchronous_commit = on";

/// One connection, driven from its worker thread: a current-thread runtime runs tokio-postgres's
/// connection task whenever the thread waits for an answer.
struct Session {
    /// Declared first, so dropped first: with the client gone the connection task ends, and
    /// `driver` gives it a moment to do so before the runtime goes.
    client: Client,
    driver: Driver,
}

/// The runtime and the connection task it drives.
struct Driver {
    runtime: tokio::runtime::Runtime,
    connection: Option<tokio::task::JoinHandle<()>>,
}

impl Session {
    /// Connects and sets up the session (see `BEGIN`).
    fn open(config: &Config, tls: &MakeRustlsConnect) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Thread(e.to_string()))?;
        let (client, connection) = runtime.block_on(async {
            let (client, connection) = config.connect(tls.clone()).await?;
            // Its error, if any, shows as `Client::is_closed` and fails the statement in flight.
            let connection = tokio::spawn(async move { drop(connection.await) });
            client.batch_execute("SET synchronous_commit = off").await?;
            Ok::<_, tokio_postgres::Error>((client, connection))
        })?;
        Ok(Self { client, driver: Driver { runtime, connection: Some(connection) } })
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.driver.runtime.block_on(future)
    }

    fn batch_execute(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
        self.block_on(self.client.batch_execute(sql))
    }
}

impl Drop for Driver {
    /// Lets the connection task finish (at most 2 s) rather than cancelling it mid-write.
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            // The timer is made inside the runtime: this runs on a plain thread with no context.
            self.runtime.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(2), connection).await;
            });
        }
    }
}

/// One connection and its prepared statements.
struct Worker {
    config: Config,
    tls: MakeRustlsConnect,
    session: Session,
    statements: HashMap<String, Statement>,
    replan: Replan,
}

/// When a connection has PostgreSQL forget its cached plans (`DISCARD PLANS`). PostgreSQL keeps
/// the generic plan a statement settles on, and its foreign-key checks' plans, until the table is
/// analyzed again; a plan made while a table was nearly empty (a fresh database, or one analyzed
/// while young) scans that table whole on every call, thousands of rows per flow, until an
/// auto-analyze happens to come. So plans are dropped after 1 s, 2 s, 4 s … and then every
/// 5 minutes: a young database's plans follow its growth, and an old one replans a few dozen
/// statements every few minutes.
struct Replan {
    since: Instant,
    lifetime: Duration,
}

impl Replan {
    const FIRST: Duration = Duration::from_secs(1);
    const LONGEST: Duration = Duration::from_secs(300);

    fn new(now: Instant) -> Self {
        Self { since: now, lifetime: Self::FIRST }
    }

    /// Whether the plans are due to be dropped; the next lifetime is then twice as long.
    fn due(&mut self, now: Instant) -> bool {
        let due = now.duration_since(self.since) >= self.lifetime;
        if due {
            self.since = now;
            self.lifetime = (self.lifetime * 2).min(Self::LONGEST);
        }
        due
    }
}

impl Worker {
    fn connect(config: Config, tls: MakeRustlsConnect) -> Result<Self, StoreError> {
        let session = Session::open(&config, &tls)?;
        let (statements, replan) = (HashMap::new(), Replan::new(Instant::now()));
        Ok(Self { config, tls, session, statements, replan })
    }

    fn serve(mut self, jobs: &Mutex<mpsc::Receiver<Job>>) {
        loop {
            // Only one idle thread waits on the channel at a time; the others wait for the lock.
            let job = match jobs.lock() {
                Ok(rx) => rx.recv(),
                Err(_) => return,
            };
            let Ok((mode, job)) = job else { return };
            if self.session.client.is_closed()
                && let Err(e) = self.reconnect()
            {
                job.finish(Some(e));
                continue;
            }
            if self.replan.due(Instant::now())
                && let Err(e) = self.session.batch_execute("DISCARD PLANS")
            {
                tracing::warn!(error = %e, "DISCARD PLANS failed");
            }
            self.run(mode, job);
        }
    }

    /// A connection the server dropped (restart, failover, idle timeout) is replaced before the
    /// next transaction rather than failing every transaction sent to this thread.
    fn reconnect(&mut self) -> Result<(), StoreError> {
        self.session = Session::open(&self.config, &self.tls)?;
        self.statements.clear();
        tracing::warn!("reconnected to PostgreSQL");
        Ok(())
    }

    fn run(&mut self, mode: Mode, mut job: Box<dyn TxJob>) {
        let mut attempt = 1;
        loop {
            match self.attempt(mode, job.as_mut()) {
                Ok(()) => return job.finish(None),
                Err(Failure::Conflict(_)) if mode.retried() && attempt < MAX_ATTEMPTS => {
                    crate::metrics::db_conflict();
                    // Conflicting transactions retried in lockstep would conflict again: spread
                    // them out a little, more with each attempt.
                    let jitter = u64::from(rand_u8()) % 4 + 1;
                    thread::sleep(Duration::from_micros(jitter * 250 * u64::from(attempt.min(8))));
                    attempt += 1;
                }
                Err(Failure::Conflict(e) | Failure::Other(e)) => return job.finish(Some(e)),
            }
        }
    }

    /// One attempt: begin, run the work, commit or roll back.
    fn attempt(&mut self, mode: Mode, job: &mut dyn TxJob) -> Result<(), Failure> {
        if matches!(mode, Mode::Read | Mode::EachStatement) {
            // Reads (and each-statement writes) run outside a transaction, each statement on its
            // own: it saves the BEGIN and COMMIT round trips, and no read decides anything another
            // statement's snapshot could contradict (decisions are made inside write transactions).
            // Its errors, if any, are in its own answer.
            job.attempt(&mut PgConn::new(&self.session, &mut self.statements, None));
            return Ok(());
        }
        let queued = Some(vec![Queued::Begin]);
        let mut conn = PgConn::new(&self.session, &mut self.statements, queued);
        let asked = job.attempt(&mut conn);
        // A transaction in which a statement failed cannot commit (PostgreSQL would answer the
        // COMMIT with a silent rollback), whatever the work answered: a conflict is attempted
        // again, any other failure is the answer even if the work went on past it.
        let commit = asked && conn.conflict.is_none() && conn.failed.is_none();
        let ended = conn.end(commit);
        match (conn.conflict.take(), conn.failed.take()) {
            (Some(e), _) => Err(Failure::Conflict(e)),
            (None, Some(reason)) if asked => Err(Failure::Other(StoreError::Aborted(reason))),
            _ => ended.map_err(Failure::Other),
        }
    }
}

/// Why an attempt failed.
enum Failure {
    /// A unique violation from a concurrent insert, a deadlock, a serialization failure or a
    /// compare-and-set that lost: attempted again, the work sees the winner's rows.
    Conflict(StoreError),
    Other(StoreError),
}

fn is_conflict(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|code| {
        *code == SqlState::T_R_SERIALIZATION_FAILURE
            || *code == SqlState::T_R_DEADLOCK_DETECTED
            || *code == SqlState::UNIQUE_VIOLATION
    })
}

fn rand_u8() -> u8 {
    let mut b = [0u8];
    let _ = getrandom::fill(&mut b);
    b[0]
}

/// A transaction (or the bare connection, for reads) seen through the backend-neutral interface.
struct PgConn<'a> {
    session: &'a Session,
    statements: &'a mut HashMap<String, Statement>,
    /// Inside a transaction, what goes to the server together with the next statement whose
    /// answer the work waits for: BEGIN, then the statements it deferred. `None` outside one,
    /// where nothing waits.
    queued: Option<Vec<Queued>>,
    /// The first conflict a statement hit; the attempt is repeated whatever the work did with it.
    conflict: Option<StoreError>,
    /// The first other failure of a statement: the transaction is aborted from then on.
    failed: Option<String>,
}

/// A request sent ahead of the next answer the work waits for.
enum Queued {
    Begin,
    Statement(Statement, Vec<PgParam>),
}

impl Queued {
    async fn send(&self, client: &Client) -> Result<(), tokio_postgres::Error> {
        match self {
            Self::Begin => client.batch_execute(BEGIN).await,
            Self::Statement(statement, params) => {
                client.execute(statement, &refs(params)).await.map(drop)
            }
        }
    }
}

impl<'a> PgConn<'a> {
    fn new(
        session: &'a Session,
        statements: &'a mut HashMap<String, Statement>,
        queued: Option<Vec<Queued>>,
    ) -> Self {
        Self { session, statements, queued, conflict: None, failed: None }
    }

    fn statement(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let session = self.session;
        let statement = self.track(session.block_on(session.client.prepare(sql)))?;
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    /// Sends what is queued and then `last`, in one round trip, and answers `last`'s result, or
    /// the error of the first queued statement that failed (the rest of the transaction fails
    /// with it).
    fn send<T>(
        &mut self,
        last: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, StoreError> {
        let queued = self.queued.as_mut().map(std::mem::take).unwrap_or_default();
        let session = self.session;
        let result = session.block_on(async {
            let earlier = join_all(queued.iter().map(|q| q.send(&session.client)));
            let (earlier, last) = join(earlier, last).await;
            earlier.into_iter().find_map(Result::err).map_or(last, Err)
        });
        self.track(result)
    }

    /// Ends the transaction. A rollback drops what is still queued: none of it would last.
    fn end(&mut self, commit: bool) -> Result<(), StoreError> {
        if !commit && let Some(queued) = self.queued.as_mut() {
            // BEGIN still queued: nothing reached the server, so there is nothing to roll back.
            let unsent = matches!(queued.first(), Some(Queued::Begin));
            queued.clear();
            if unsent {
                return Ok(());
            }
        }
        let session = self.session;
        self.send(session.client.batch_execute(if commit { "COMMIT" } else { "ROLLBACK" }))
    }

    fn track<T>(&mut self, result: Result<T, tokio_postgres::Error>) -> Result<T, StoreError> {
        result.map_err(|e| {
            if is_conflict(&e) {
                self.conflict.get_or_insert_with(|| StoreError::Conflict(e.to_string()));
            } else {
                self.failed.get_or_insert_with(|| {
                    e.as_db_error().map_or_else(|| e.to_string(), ToString::to_string)
                });
            }
            e.into()
        })
    }
}

impl Query for PgConn<'_> {
    fn query(&mut self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, StoreError> {
        let (statement, params, session) = (self.statement(sql)?, owned(params), self.session);
        let rows =
            self.send(async move { session.client.query(&statement, &refs(&params)).await })?;
        rows.iter().map(row).collect()
    }
}

impl Conn for PgConn<'_> {
    fn execute(&mut self, sql: &str, params: &[Param<'_>]) -> Result<u64, StoreError> {
        let (statement, params, session) = (self.statement(sql)?, owned(params), self.session);
        self.send(async move { session.client.execute(&statement, &refs(&params)).await })
    }

    fn defer(&mut self, sql: &str, params: &[Param<'_>]) -> Result<(), StoreError> {
        if self.queued.is_none() {
            return self.execute(sql, params).map(drop);
        }
        let statement = self.statement(sql)?;
        if let Some(queued) = self.queued.as_mut() {
            queued.push(Queued::Statement(statement, owned(params)));
        }
        Ok(())
    }

    fn execute_batch(&mut self, sql: &str) -> Result<(), StoreError> {
        let session = self.session;
        self.send(session.client.batch_execute(sql))
    }

    fn conflict(&mut self, what: &str) -> StoreError {
        self.conflict.get_or_insert_with(|| StoreError::Conflict(what.to_string()));
        StoreError::Conflict(what.to_string())
    }
}

/// A parameter bound as whatever type PostgreSQL inferred for its placeholder, so one `Param::Int`
/// serves BIGINT, INTEGER and BOOLEAN columns alike. Owned, so a deferred statement keeps it.
#[derive(Debug)]
enum PgParam {
    Null,
    Int(i64),
    Text(String),
}

fn owned(params: &[Param<'_>]) -> Vec<PgParam> {
    params
        .iter()
        .map(|p| match *p {
            Param::Null => PgParam::Null,
            Param::Int(v) => PgParam::Int(v),
            Param::Text(v) => PgParam::Text(v.to_string()),
        })
        .collect()
}

fn refs(params: &[PgParam]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as _).collect()
}

impl ToSql for PgParam {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres_types::private::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Self::Null => Ok(IsNull::Yes),
            Self::Int(v) => match *ty {
                Type::INT8 => v.to_sql(ty, out),
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                Type::BOOL => (*v != 0).to_sql(ty, out),
                Type::FLOAT8 => (*v as f64).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => v.to_string().to_sql(ty, out),
                _ => Err(format!("cannot bind an integer as {ty}").into()),
            },
            Self::Text(v) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                    v.as_str().to_sql(ty, out)
                }
                _ => Err(format!("cannot bind text as {ty}").into()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn row(r: &tokio_postgres::Row) -> Result<Row, StoreError> {
    (0..r.len()).map(|i| column(r, i)).collect::<Result<_, _>>().map(Row)
}

fn column(r: &tokio_postgres::Row, i: usize) -> Result<Value, StoreError> {
    fn get<'a, T: FromSql<'a>>(
        r: &'a tokio_postgres::Row,
        i: usize,
    ) -> Result<Option<T>, StoreError> {
        Ok(r.try_get::<_, Option<T>>(i)?)
    }
    let ty = r.columns()[i].type_();
    Ok(match *ty {
        Type::INT8 => get::<i64>(r, i)?.map_or(Value::Null, Value::Int),
        Type::INT4 => get::<i32>(r, i)?.map_or(Value::Null, |v| Value::Int(v.into())),
        Type::INT2 => get::<i16>(r, i)?.map_or(Value::Null, |v| Value::Int(v.into())),
        Type::BOOL => get::<bool>(r, i)?.map_or(Value::Null, |v| Value::Int(v.into())),
        Type::FLOAT8 => get::<f64>(r, i)?.map_or(Value::Null, Value::Real),
        Type::FLOAT4 => get::<f32>(r, i)?.map_or(Value::Null, |v| Value::Real(v.into())),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
            get::<String>(r, i)?.map_or(Value::Null, Value::Text)
        }
        Type::BYTEA => get::<Vec<u8>>(r, i)?.map_or(Value::Null, Value::Blob),
        Type::VOID => Value::Null,
        _ => return Err(StoreError::Decode { column: i, expected: "a supported column type" }),
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{Replan, TlsMode, split_sslmode};

    #[test]
    fn plans_are_dropped_after_doubling_lifetimes_up_to_five_minutes() {
        let start = Instant::now();
        let mut replan = Replan::new(start);
        let due: Vec<u64> =
            (1..=1300).filter(|s| replan.due(start + Duration::from_secs(*s))).collect();
        // 1 s, then 2, 4 … 256 s apart, then every 300 s.
        assert_eq!(due, [1, 3, 7, 15, 31, 63, 127, 255, 511, 811, 1111]);
        assert_eq!(replan.lifetime, Duration::from_secs(300));
    }

    #[test]
    fn sslmode_is_taken_out_of_the_url() {
        let plain = split_sslmode("postgres://u@h/db").ok();
        assert_eq!(plain, Some(("postgres://u@h/db".into(), TlsMode::Prefer)));
        let full = split_sslmode("postgres://u@h/db?sslmode=verify-full&application_name=p").ok();
        assert_eq!(
            full,
            Some(("postgres://u@h/db?application_name=p".into(), TlsMode::VerifyFull))
        );
        let off = split_sslmode("postgres://u@h/db?sslmode=disable").ok();
        assert_eq!(off, Some(("postgres://u@h/db".into(), TlsMode::Disable)));
        assert!(split_sslmode("postgres://u@h/db?sslmode=verify-ca").is_err());
    }
}

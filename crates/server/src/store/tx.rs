//! A transaction's work as the backends see it: attempted one or more times, then finished once.
//!
//! SQLite runs every write on one thread, so an attempt never conflicts. PostgreSQL runs writes
//! concurrently at READ COMMITTED and attempts again when a statement reports a conflict (a unique
//! violation, a deadlock, or a compare-and-set the work itself saw fail): every rule the domain
//! keeps across requests rests on a unique constraint or a conditional `UPDATE`, so the attempt
//! after a conflict finds the winner's rows (docs/decisions.md, "PostgreSQL").

use std::{sync::Mutex, thread};

use tokio::sync::oneshot;

use super::{Conn, StoreError};

/// Starts a database thread named `name` running `work`.
pub(super) fn spawn_thread(
    name: String,
    work: impl FnOnce() + Send + 'static,
) -> Result<thread::JoinHandle<()>, StoreError> {
    thread::Builder::new().name(name).spawn(work).map_err(|e| StoreError::Thread(e.to_string()))
}

/// Waits for a backend's database threads to exit (once their job queue is closed); how many
/// panicked instead.
pub(super) fn join_all(threads: &Mutex<Vec<thread::JoinHandle<()>>>) -> usize {
    let threads = threads.lock().map(|mut t| std::mem::take(&mut *t)).unwrap_or_default();
    threads.into_iter().map(thread::JoinHandle::join).filter(Result::is_err).count()
}

/// How a transaction runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// A write transaction; on PostgreSQL attempted again after a conflict.
    Write,
    /// One attempt at READ COMMITTED (PostgreSQL): for work whose statements are atomic on their
    /// own (an upsert) or that takes its lock explicitly (migrations).
    Atomic,
    /// Each statement commits on its own (PostgreSQL: no BEGIN/COMMIT round trips): for work
    /// of one statement, or of statements that need not commit together.
    EachStatement,
    /// Read only.
    Read,
}

impl Mode {
    /// Whether a conflict is answered by attempting the work again.
    pub(super) fn retried(self) -> bool {
        self == Self::Write
    }
}

/// Work submitted to a database thread.
pub(super) trait TxJob: Send {
    /// Runs one attempt on `conn`; `true` asks for a commit, `false` for a rollback.
    fn attempt(&mut self, conn: &mut dyn Conn) -> bool;
    /// Answers the caller: the last attempt's result, or `failure` when the transaction itself
    /// failed (could not begin or commit, or ran out of attempts).
    fn finish(self: Box<Self>, failure: Option<StoreError>);
}

/// A closure and the channel its result goes back on.
pub(super) struct Job<T, E, F> {
    work: F,
    result: Option<Result<T, E>>,
    reply: oneshot::Sender<Result<T, E>>,
}

impl<T, E, F> Job<T, E, F> {
    pub(super) fn new(work: F) -> (Self, oneshot::Receiver<Result<T, E>>) {
        let (reply, rx) = oneshot::channel();
        (Self { work, result: None, reply }, rx)
    }
}

impl<T, E, F> TxJob for Job<T, E, F>
where
    T: Send,
    E: From<StoreError> + Send,
    F: FnMut(&mut dyn Conn) -> Result<T, E> + Send,
{
    fn attempt(&mut self, conn: &mut dyn Conn) -> bool {
        let result = (self.work)(conn);
        let commit = result.is_ok();
        self.result = Some(result);
        commit
    }

    fn finish(self: Box<Self>, failure: Option<StoreError>) {
        let answer = match (failure, self.result) {
            (Some(e), _) => Err(E::from(e)),
            (None, Some(result)) => result,
            (None, None) => Err(E::from(StoreError::Closed)),
        };
        let _ = self.reply.send(answer);
    }
}

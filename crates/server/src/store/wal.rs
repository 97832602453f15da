//! Keeping SQLite's write-ahead log short without making the writer copy it.
//!
//! SQLite's own automatic checkpoint runs inside the commit that crosses its threshold: the writer
//! (provisio's only one) copies the WAL into the database file and waits for two `fsync`s while
//! every queued write waits for it. Here automatic checkpoints are off. A checkpointer thread with
//! its own connection copies what the writer appended (a passive checkpoint: it never waits for
//! the writer or the readers, who go on meanwhile) each time `PASS_EVERY` frames have come, and
//! when the writer is idle. Copying alone never shortens the log, though: SQLite starts the WAL
//! over only when a write begins with every frame copied and no reader still in it, which under
//! a steady load never happens by chance. So once the WAL holds `RESTART_AT` frames the writer,
//! after answering its callers, asks for a restart checkpoint itself: it copies the few frames the
//! checkpointer has not reached yet, waits the moment the readers take to finish, and the next
//! write starts the WAL from its beginning. The WAL file stays near `RESTART_AT` pages (64 MiB).

use std::{
    sync::{Arc, Condvar, Mutex},
    thread,
    time::Duration,
};

use rusqlite::{Connection, wal::CheckpointMode};

use super::StoreError;

/// Frames appended since the last pass that wake the checkpointer (2 MiB at 4 KiB pages). Short
/// passes keep short what the writer's restart has left to copy and sync, the stall its callers
/// see (measured: 1,000 frames gave a p99 of 20 ms in the full flow, 500 gave 13 ms).
const PASS_EVERY: i32 = 500;
/// Frames in the WAL at which the writer restarts it (64 MiB). Each restart costs the writer a
/// copy of the frames since the last pass and two `fsync`s: at 4,000 frames they took 13% of its
/// time, at 16,000 a quarter of that (docs/benchmarks.md).
pub const RESTART_AT: i32 = 16_000;
/// How long the checkpointer sleeps without news before copying whatever is left.
const IDLE_PASS: Duration = Duration::from_secs(1);

/// What the writer and the checkpointer share.
#[derive(Default)]
pub(super) struct Log {
    state: Mutex<State>,
    wake: Condvar,
}

struct State {
    /// Frames in the WAL after the writer's last commit.
    frames: i32,
    /// Frames copied into the database file so far (0 after a restart).
    copied: i32,
    /// The WAL length that wakes the checkpointer for its next pass.
    next_pass: i32,
    stop: bool,
}

impl Default for State {
    fn default() -> Self {
        Self { frames: 0, copied: 0, next_pass: PASS_EVERY, stop: false }
    }
}

impl Log {
    /// Called by the writer's WAL hook after each commit with the frames now in the WAL.
    pub(super) fn committed(&self, frames: i32) {
        let Ok(mut state) = self.state.lock() else { return };
        if frames < state.frames {
            // The WAL started over.
            state.copied = 0;
            state.next_pass = PASS_EVERY;
        }
        state.frames = frames;
        if frames >= state.next_pass {
            self.wake.notify_one();
        }
    }

    /// Whether the writer should restart the WAL now.
    pub(super) fn restart_due(&self) -> bool {
        self.state.lock().is_ok_and(|state| state.frames >= RESTART_AT)
    }

    /// Installs the hook on the writer's connection (it replaces SQLite's automatic checkpoint).
    pub(super) fn watch(self: &Arc<Self>, writer: &mut Connection) -> Result<(), StoreError> {
        let log = self.clone();
        writer.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, frames| {
            log.committed(frames);
            Ok(())
        }))?;
        Ok(())
    }

    /// Asks the checkpointer to make its last pass and exit.
    pub(super) fn stop(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.stop = true;
        }
        self.wake.notify_one();
    }
}

/// The writer's restart: every frame copied, the readers out of the WAL, so that the next write
/// starts it over. Not done now is done after a later commit (the WAL only grows meanwhile):
/// while the checkpointer is in a pass, SQLite refuses a second checkpoint at once.
pub(super) fn restart(writer: &Connection, log: &Log) {
    match writer.wal_checkpoint_v2(None::<&str>, CheckpointMode::RESTART) {
        Ok(_) => {
            if let Ok(mut state) = log.state.lock() {
                state.copied = state.frames;
            }
        }
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {}
        Err(e) => tracing::warn!(error = %e, "could not restart the SQLite WAL"),
    }
}

/// The writer's busy handler: the restart waits for readers to leave the WAL, which takes them
/// well under a millisecond, so it looks again every 50 µs (SQLite's own handler sleeps 1 ms, then
/// longer) for up to 10 seconds, as long as a write waits for another process (an admin command).
pub(super) fn wait_briefly(attempts: i32) -> bool {
    const STEP: Duration = Duration::from_micros(50);
    if attempts >= 200_000 {
        return false;
    }
    thread::sleep(STEP);
    true
}

/// Starts the checkpointer on its own connection.
pub(super) fn spawn_checkpointer(
    conn: Connection,
    log: Arc<Log>,
) -> Result<thread::JoinHandle<()>, StoreError> {
    super::tx::spawn_thread("provisio-db-checkpointer".into(), move || {
        loop {
            let Ok(state) = log.state.lock() else { return };
            let (mut state, _) = log
                .wake
                .wait_timeout_while(state, IDLE_PASS, |s| !s.stop && s.frames < s.next_pass)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // At most one pass per PASS_EVERY frames, even when readers keep one from
            // copying everything.
            state.next_pass = state.frames + PASS_EVERY;
            // A restart due is the writer's: a pass now would only make it wait.
            let behind = state.frames > state.copied && state.frames < RESTART_AT;
            let stop = state.stop;
            drop(state);
            if stop {
                return;
            }
            if behind {
                pass(&conn, &log);
            }
        }
    })
}

/// One passive checkpoint: copies what no reader still needs, waits for nobody.
fn pass(conn: &Connection, log: &Log) {
    match conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE) {
        Ok((_, copied)) => {
            if let Ok(mut state) = log.state.lock() {
                state.copied = state.copied.max(copied);
            }
        }
        // Busy: the writer is restarting the WAL; nothing to do.
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {}
        Err(e) => tracing::warn!(error = %e, "SQLite checkpoint failed"),
    }
}

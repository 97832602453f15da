//! SQL for the events outbox. A delivery claims due events with one conditional `UPDATE` (on
//! PostgreSQL skipping rows another instance holds), so each event is in flight from one instance at
//! a time; the claim lapses after a lease, so an instance that dies gives its events back.

use super::{Backend, Conn, Query, Row, StoreError};

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutboxEvent {
    pub sequence: i64,
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Unix seconds.
    pub created_at: i64,
    /// The `data` object, as JSON text.
    pub data: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
}

const COLUMNS: &str = "sequence, id, type, created_at, data, state, attempts, next_attempt_ms, last_error, delivered_at";

impl OutboxEvent {
    fn from_row(r: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            sequence: r.int(0)?,
            id: r.text(1)?,
            kind: r.text(2)?,
            created_at: r.int(3)?,
            data: r.text(4)?,
            state: r.text(5)?,
            attempts: r.int(6)?,
            next_attempt_ms: r.int(7)?,
            last_error: r.opt_text(8)?,
            delivered_at: r.opt_int(9)?,
        })
    }
}

pub fn insert(
    conn: &mut dyn Conn,
    id: &str,
    kind: &str,
    data: &str,
    now: i64,
    due_ms: i64,
) -> Result<(), StoreError> {
    conn.defer(
        "INSERT INTO events (id, type, created_at, data, state, next_attempt_ms) VALUES ($1, $2, $3, $4, 'pending', $5)",
        &[id.into(), kind.into(), now.into(), data.into(), due_ms.into()],
    )
}

/// Whether any event is due (a read, so an idle poll writes nothing).
pub fn any_due(conn: &mut dyn Query, now_ms: i64) -> Result<bool, StoreError> {
    Ok(conn
        .query_opt(
            "SELECT 1 FROM events WHERE state = 'pending' AND next_attempt_ms <= $1 AND claimed_until_ms <= $1 LIMIT 1",
            &[now_ms.into()],
        )?
        .is_some())
}

/// Claims up to `limit` due events until `lease_until_ms`, oldest first. The outer conditions are
/// checked again on each row as it is locked, so two instances never claim one event.
pub fn claim_due(
    conn: &mut dyn Conn,
    backend: Backend,
    now_ms: i64,
    lease_until_ms: i64,
    limit: i64,
) -> Result<Vec<OutboxEvent>, StoreError> {
    let skip_locked = if backend == Backend::Postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
    let sql = format!(
        "UPDATE events SET claimed_until_ms = $2 WHERE sequence IN (\
         SELECT sequence FROM events WHERE state = 'pending' AND next_attempt_ms <= $1 \
         AND claimed_until_ms <= $1 ORDER BY sequence LIMIT $3{skip_locked}) \
         AND state = 'pending' AND claimed_until_ms <= $1 RETURNING {COLUMNS}"
    );
    let mut events = conn
        .query(&sql, &[now_ms.into(), lease_until_ms.into(), limit.into()])?
        .iter()
        .map(OutboxEvent::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    events.sort_by_key(|e| e.sequence);
    Ok(events)
}

pub fn mark_delivered(conn: &mut dyn Conn, sequence: i64, now: i64) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE events SET state = 'delivered', delivered_at = $2, attempts = attempts + 1, \
         claimed_until_ms = 0, last_error = NULL WHERE sequence = $1",
        &[sequence.into(), now.into()],
    )?;
    Ok(())
}

/// Records a failed attempt: due again at `next_attempt_ms`, or `failed` when the event was
/// created before `give_up_before` (seconds).
pub fn mark_attempt_failed(
    conn: &mut dyn Conn,
    sequence: i64,
    next_attempt_ms: i64,
    error: &str,
    give_up_before: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE events SET attempts = attempts + 1, next_attempt_ms = $2, claimed_until_ms = 0, last_error = $3, \
         state = CASE WHEN created_at < $4 THEN 'failed' ELSE 'pending' END WHERE sequence = $1",
        &[sequence.into(), next_attempt_ms.into(), error.into(), give_up_before.into()],
    )?;
    Ok(())
}

/// Events, newest first: every one, or only the failed.
pub fn list(
    conn: &mut dyn Query,
    failed_only: bool,
    limit: i64,
) -> Result<Vec<OutboxEvent>, StoreError> {
    let filter = if failed_only { "WHERE state = 'failed' " } else { "" };
    conn.query(
        &format!("SELECT {COLUMNS} FROM events {filter}ORDER BY sequence DESC LIMIT $1"),
        &[limit.into()],
    )?
    .iter()
    .map(OutboxEvent::from_row)
    .collect()
}

/// Makes an event (by id) or every failed event due now; how many.
pub fn retry(conn: &mut dyn Conn, id: Option<&str>, now_ms: i64) -> Result<u64, StoreError> {
    conn.execute(
        "UPDATE events SET state = 'pending', next_attempt_ms = $1, claimed_until_ms = 0, attempts = 0 \
         WHERE state <> 'delivered' AND (id = $2 OR ($2 IS NULL AND state = 'failed'))",
        &[now_ms.into(), id.into()],
    )
}

/// How many events are in each state.
pub fn counts(conn: &mut dyn Query) -> Result<Vec<(String, i64)>, StoreError> {
    conn.query("SELECT state, COUNT(*) FROM events GROUP BY state ORDER BY state", &[])?
        .iter()
        .map(|r| Ok((r.text(0)?, r.int(1)?)))
        .collect()
}

//! SQL for the record of state-changing calls to the SaaS (connector mode): each is recorded as
//! pending before it is made and as done, with the answer's non-secret part, once its outcome is
//! recorded — so a retry knows a call may have happened, and an operator sees calls in flight.

use super::{Conn, Query, StoreError};

/// What is known of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallState {
    Pending,
    /// Done, with the answer's non-secret part (JSON).
    Done(Option<String>),
}

/// Records the intent to make a call (nothing if it is already recorded).
pub fn record_intent(
    conn: &mut dyn Conn,
    webhook_id: &str,
    operation: &str,
    now: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO connector_calls (webhook_id, operation, state, created_at, updated_at) \
         VALUES ($1, $2, 'pending', $3, $3) ON CONFLICT (webhook_id) DO NOTHING",
        &[webhook_id.into(), operation.into(), now.into()],
    )?;
    Ok(())
}

/// Records a call as done (in the transaction that records its outcome).
pub fn record_done(
    conn: &mut dyn Conn,
    webhook_id: &str,
    operation: &str,
    result: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    conn.defer(
        "INSERT INTO connector_calls (webhook_id, operation, state, result, created_at, updated_at) \
         VALUES ($1, $2, 'done', $3, $4, $4) \
         ON CONFLICT (webhook_id) DO UPDATE SET state = 'done', result = $3, updated_at = $4",
        &[webhook_id.into(), operation.into(), result.into(), now.into()],
    )
}

pub fn state(conn: &mut dyn Query, webhook_id: &str) -> Result<Option<CallState>, StoreError> {
    conn.query_opt(
        "SELECT state, result FROM connector_calls WHERE webhook_id = $1",
        &[webhook_id.into()],
    )?
    .map(|r| {
        Ok(if r.text(0)? == "done" { CallState::Done(r.opt_text(1)?) } else { CallState::Pending })
    })
    .transpose()
}

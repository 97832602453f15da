//! SQL for the audit log.

use super::{Conn, Query, StoreError};

/// One audit event as stored and listed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AuditEvent {
    pub at: i64,
    pub event: String,
    pub orchestrator: Option<String>,
    pub user_id: Option<String>,
    pub organization_id: Option<String>,
    pub project_id: Option<i64>,
    pub request_id: Option<String>,
    pub detail: Option<String>,
}

pub fn insert(conn: &mut dyn Conn, e: &AuditEvent) -> Result<(), StoreError> {
    conn.defer(
        "INSERT INTO audit_events (at, event, orchestrator, user_id, organization_id, project_id, request_id, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            e.at.into(),
            (&e.event).into(),
            e.orchestrator.as_deref().into(),
            e.user_id.as_deref().into(),
            e.organization_id.as_deref().into(),
            e.project_id.into(),
            e.request_id.as_deref().into(),
            e.detail.as_deref().into(),
        ],
    )
}

/// One user's events since `$1`, oldest first, at most `$3` of them: found through
/// `audit_events_user` (a single statement with `$2 IS NULL OR user_id = $2` could use no index).
pub const LIST_OF_USER: &str = "SELECT at, event, orchestrator, user_id, organization_id, project_id, request_id, detail \
     FROM audit_events WHERE user_id = $2 AND at >= $1 ORDER BY id LIMIT $3";
/// Every event since `$1`, oldest first, at most `$2` of them.
const LIST_ALL: &str = "SELECT at, event, orchestrator, user_id, organization_id, project_id, request_id, detail \
     FROM audit_events WHERE at >= $1 ORDER BY id LIMIT $2";

/// Events since `since` (Unix seconds), optionally of one user, oldest first.
pub fn list(
    conn: &mut dyn Query,
    since: i64,
    user_id: Option<&str>,
    limit: i64,
) -> Result<Vec<AuditEvent>, StoreError> {
    let rows = match user_id {
        Some(user_id) => conn.query(LIST_OF_USER, &[since.into(), user_id.into(), limit.into()])?,
        None => conn.query(LIST_ALL, &[since.into(), limit.into()])?,
    };
    rows.iter()
        .map(|r| {
            Ok(AuditEvent {
                at: r.int(0)?,
                event: r.text(1)?,
                orchestrator: r.opt_text(2)?,
                user_id: r.opt_text(3)?,
                organization_id: r.opt_text(4)?,
                project_id: r.opt_int(5)?,
                request_id: r.opt_text(6)?,
                detail: r.opt_text(7)?,
            })
        })
        .collect()
}

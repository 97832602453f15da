//! The audit trail: who did what to which account, grant, resource or link, and under which request.
//! Events are written inside the transaction that makes the change, so the log and the data never
//! disagree. The request id comes from the HTTP layer through `request_scope`, so the domain needs
//! no HTTP types.

use crate::store::{
    Conn, StoreError,
    audit::{self as sql, AuditEvent},
    oauth::Grant,
};

/// Who an event is about; captured before a transaction starts (the database thread has no
/// task-local).
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub request_id: Option<String>,
    pub orchestrator: Option<String>,
    /// Whether changes are also written to the events outbox.
    pub emit_events: bool,
}

impl Actor {
    /// The current request's id, with the orchestrator acting.
    pub fn current(orchestrator: &str) -> Self {
        let request = crate::request_scope::request();
        Self {
            request_id: request.as_ref().map(|(id, _)| id.clone()),
            orchestrator: Some(orchestrator.to_string()).filter(|o| !o.is_empty()),
            emit_events: request.is_some_and(|(_, events)| events),
        }
    }

    /// Writes `event` to the outbox when events are on, in the caller's transaction.
    pub fn emit(
        &self,
        conn: &mut dyn Conn,
        event: &crate::events::Event<'_>,
        now: i64,
    ) -> Result<(), StoreError> {
        if self.emit_events { crate::events::write(conn, event, now) } else { Ok(()) }
    }

    /// Records `event` about what a grant is bound to (and by the grant's orchestrator).
    pub fn grant(
        &self,
        conn: &mut dyn Conn,
        event: &'static str,
        grant: &Grant,
        now: i64,
    ) -> Result<(), StoreError> {
        let actor = Self { orchestrator: Some(grant.orchestrator.clone()), ..self.clone() };
        actor.record(
            conn,
            event,
            Some(&grant.user_id),
            Some(&grant.organization_id),
            Some(grant.project_id),
            now,
        )
    }

    /// Records `event` about (user, organization, project).
    pub fn record(
        &self,
        conn: &mut dyn Conn,
        event: &'static str,
        user_id: Option<&str>,
        organization_id: Option<&str>,
        project_id: Option<i64>,
        now: i64,
    ) -> Result<(), StoreError> {
        crate::metrics::event(event);
        sql::insert(
            conn,
            &AuditEvent {
                at: now,
                event: event.to_string(),
                orchestrator: self.orchestrator.clone(),
                user_id: user_id.map(String::from),
                organization_id: organization_id.map(String::from),
                project_id,
                request_id: self.request_id.clone(),
                detail: None,
            },
        )
    }
}

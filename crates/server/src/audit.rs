//! The audit trail: who did what to which account, grant, resource or link, and under which request.
//! Events are written inside the transaction that makes the change, so the log and the data never
//! disagree. The request id comes from the HTTP layer through a task-local, so the domain needs no
//! HTTP types.

use crate::store::{
    Conn, StoreError,
    audit::{self as sql, AuditEvent},
    oauth::Grant,
};

tokio::task_local! {
    static REQUEST_ID: String;
}

/// Runs `work` with `request_id` as the current request's id.
pub async fn with_request_id<F: std::future::Future>(request_id: String, work: F) -> F::Output {
    REQUEST_ID.scope(request_id, work).await
}

/// Who an event is about; captured before a transaction starts (the database thread has no
/// task-local).
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub request_id: Option<String>,
    pub orchestrator: Option<String>,
}

impl Actor {
    /// The current request's id, with the orchestrator acting.
    pub fn current(orchestrator: &str) -> Self {
        Self {
            request_id: REQUEST_ID.try_with(Clone::clone).ok(),
            orchestrator: Some(orchestrator.to_string()).filter(|o| !o.is_empty()),
        }
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

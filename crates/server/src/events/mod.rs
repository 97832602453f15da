//! Events: what provisio tells the SaaS happened. Each event is written to the outbox in the
//! transaction of the change it reports (so an event exists exactly when its change committed) and
//! delivered at least once by [`delivery`]. Events carry ids and names, never a secret: no token,
//! key, code, link or payment token.

pub mod delivery;

use serde_json::{Value, json};

use crate::{
    crypto::random_token,
    store::{Conn, StoreError, events as sql},
};

/// One change worth telling the SaaS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    AccountCreated {
        user_id: &'a str,
        email: &'a str,
        organization_id: &'a str,
        project_id: i64,
        orchestrator: &'a str,
        request_id: &'a str,
    },
    AccountLinked {
        user_id: &'a str,
        organization_id: &'a str,
        project_id: i64,
        orchestrator: &'a str,
        request_id: &'a str,
    },
    Resource {
        kind: ResourceChange<'a>,
        resource_id: i64,
        project_id: i64,
        organization_id: &'a str,
        service_id: &'a str,
        /// The `webhook-id` of the SaaS call that did the work (connector mode).
        operation_id: Option<&'a str>,
    },
    TokensRevoked {
        user_id: &'a str,
        organization_id: &'a str,
        reason: RevokeReason,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceChange<'a> {
    Provisioned,
    ServiceUpdated { from_service_id: &'a str },
    CredentialsRotated,
    Removed,
}

/// Why a user's tokens were revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeReason {
    RefreshReuse,
    CodeReplay,
    Operator,
}

impl RevokeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RefreshReuse => "refresh_reuse",
            Self::CodeReplay => "code_replay",
            Self::Operator => "operator",
        }
    }
}

impl Event<'_> {
    /// The event's `type`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AccountCreated { .. } => "account.created",
            Self::AccountLinked { .. } => "account.linked",
            Self::Resource { kind: ResourceChange::Provisioned, .. } => "resource.provisioned",
            Self::Resource { kind: ResourceChange::ServiceUpdated { .. }, .. } => {
                "resource.service_updated"
            }
            Self::Resource { kind: ResourceChange::CredentialsRotated, .. } => {
                "resource.credentials_rotated"
            }
            Self::Resource { kind: ResourceChange::Removed, .. } => "resource.removed",
            Self::TokensRevoked { .. } => "tokens.revoked",
        }
    }

    /// The event's `data`.
    pub fn data(&self) -> Value {
        match *self {
            Self::AccountCreated {
                user_id,
                email,
                organization_id,
                project_id,
                orchestrator,
                request_id,
            } => json!({
                "user_id": user_id, "email": email, "organization_id": organization_id,
                "project_id": project_id, "orchestrator": orchestrator, "request_id": request_id,
            }),
            Self::AccountLinked {
                user_id,
                organization_id,
                project_id,
                orchestrator,
                request_id,
            } => {
                json!({
                    "user_id": user_id, "organization_id": organization_id,
                    "project_id": project_id, "orchestrator": orchestrator, "request_id": request_id,
                })
            }
            Self::Resource {
                kind,
                resource_id,
                project_id,
                organization_id,
                service_id,
                operation_id,
            } => {
                let mut data = json!({
                    "resource_id": resource_id.to_string(), "project_id": project_id,
                    "organization_id": organization_id, "service_id": service_id,
                });
                if let ResourceChange::ServiceUpdated { from_service_id } = kind {
                    data["from_service_id"] = from_service_id.into();
                }
                if let Some(operation_id) = operation_id {
                    data["operation_id"] = operation_id.into();
                }
                data
            }
            Self::TokensRevoked { user_id, organization_id, reason } => json!({
                "user_id": user_id, "organization_id": organization_id, "reason": reason.as_str(),
            }),
        }
    }
}

/// Writes `event` to the outbox, due at once (in the caller's transaction).
pub fn write(conn: &mut dyn Conn, event: &Event<'_>, now: i64) -> Result<(), StoreError> {
    let id = random_token("evt").map_err(|e| StoreError::Aborted(e.to_string()))?;
    crate::metrics::outbox_written(event.kind());
    sql::insert(conn, &id, event.kind(), &event.data().to_string(), now, now.saturating_mul(1000))
}

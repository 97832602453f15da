//! Resources in connector mode: the SaaS provisions, rotates and removes; provisio keeps the
//! protocol's bookkeeping (which project an orchestrator `project_id` names, the token's scope, the
//! service, the status and the non-secret access configuration).
//!
//! Each operation is a small saga and holds no transaction across a call: the call is recorded as
//! pending, made, and its outcome recorded in one transaction (with the audit entry and the event).
//! The call's `webhook-id` is derived from the resource and its `generation` (how many operations
//! were recorded on it), so the orchestrator's retry of an operation that was never recorded
//! carries the same id, and the next operation a new one.

use std::time::Instant;

use provisio_protocol::types::Service;
use serde_json::{Value, json};

use super::{
    ResourceError, ResourceView, Resources, UpdateInput, insert_resource, project_name,
    resource_event,
};
use crate::{
    audit::Actor,
    connector::{CallError, Connector, Credentials, ResourceRef, operation_id, payment},
    domain::auth::Principal,
    events::ResourceChange,
    store::{
        Conn, StoreError,
        connector::{self as calls, CallState},
        oauth as grants,
        resources::{self as sql, ResourceRow},
    },
};

/// The resource operations of one principal against the SaaS.
pub(super) struct Saas<'r, 'a> {
    resources: &'r Resources<'a>,
    saas: &'r Connector,
    principal: &'r Principal,
    deadline: Instant,
}

impl<'a> Resources<'a> {
    pub(super) fn saas<'r>(
        &'r self,
        saas: &'r Connector,
        principal: &'r Principal,
    ) -> Saas<'r, 'a> {
        Saas { resources: self, saas, principal, deadline: saas.deadline() }
    }
}

/// What a create found before calling `resources.provision`.
struct Target {
    project_id: i64,
    existing: Option<ResourceRow>,
}

impl Saas<'_, '_> {
    /// `POST /provisioning/resources`: the project (the orchestrator's `project_id` makes a new
    /// one in the SaaS, once), then `resources.provision`, then one transaction recording it.
    pub(super) async fn create(
        &self,
        service: Service,
        input: super::CreateInput,
        now: i64,
    ) -> Result<ResourceView, ResourceError> {
        let target = self.target(&input, now).await?;
        let id = target.project_id;
        let generation = target.existing.as_ref().map_or(0, |r| r.generation);
        let webhook_id = self.operation_id("resources.provision", id, generation, &[]);
        let body = json!({
            "resource_id": id.to_string(),
            "user_id": self.principal.user_id,
            "project_id": id,
            "organization_id": self.principal.organization_id,
            "service_id": service.id,
            "configuration": input.configuration.clone().unwrap_or_else(|| json!({})),
            "payment": payment(input.payment_token.as_deref()),
        });
        self.record_intent(&webhook_id, "resources.provision", now).await?;
        let credentials = match self.saas.provision(&webhook_id, &body, self.deadline).await {
            Ok(credentials) => credentials,
            Err(e) => return Err(self.refused(e, Some(id), now).await),
        };
        let (principal, existing) = (self.principal.clone(), target.existing);
        let public = serde_json::to_string(&credentials.public).unwrap_or_default();
        let actor = Actor::current(&principal.orchestrator);
        self.resources
            .store
            .write(move |conn| -> Result<(), ResourceError> {
                let event = match &existing {
                    None => {
                        insert_resource(conn, &principal, &service.id, &input, id, now)?;
                        "resource.created"
                    }
                    Some(row) if row.removed => "resource.reactivated",
                    Some(_) => "resource.reprovisioned",
                };
                sql::record_saas_outcome(conn, id, &service.id, Some(&public), now)?;
                if !principal.can_reach(id) {
                    grants::add_family_project(conn, &principal.family_id, id)?;
                }
                let outcome = Outcome {
                    audit: event,
                    change: ResourceChange::Provisioned,
                    id,
                    service: &service.id,
                    webhook_id: &webhook_id,
                    operation: "resources.provision",
                    result: Some(&public),
                };
                Ok(outcome.report(conn, &actor, &principal, now)?)
            })
            .await?;
        Ok(answer(id, credentials))
    }

    /// The project a create provisions into: an existing resource's, the token's primary project,
    /// or one `projects.create` makes for a new orchestrator `project_id` (recorded once made, so a
    /// retry reuses it even after the SaaS forgot the call).
    async fn target(&self, input: &super::CreateInput, now: i64) -> Result<Target, ResourceError> {
        let principal = self.principal;
        let (org, orchestrator) =
            (principal.organization_id.clone(), principal.orchestrator.clone());
        let (key, primary) = (input.project_id.clone(), principal.primary_project_id);
        let existing = self
            .resources
            .store
            .read(move |conn| match &key {
                Some(key) => sql::find_by_orchestrator_project(conn, &org, &orchestrator, key),
                None => sql::find_resource(conn, primary),
            })
            .await?;
        if let Some(row) = existing {
            return Ok(Target { project_id: row.project_id, existing: Some(row) });
        }
        let Some(key) = &input.project_id else {
            return Ok(Target { project_id: primary, existing: None });
        };
        let webhook_id = operation_id(&[
            &principal.orchestrator,
            &principal.orchestrator_account,
            "projects.create",
            &principal.organization_id,
            key,
        ]);
        let id = webhook_id.clone();
        let recorded = self.resources.store.read(move |conn| calls::state(conn, &id)).await?;
        if let Some(CallState::Done(Some(result))) = recorded
            && let Some(project_id) =
                serde_json::from_str::<Value>(&result).ok().and_then(|v| v["project_id"].as_i64())
        {
            return Ok(Target { project_id, existing: None });
        }
        self.record_intent(&webhook_id, "projects.create", now).await?;
        let name =
            project_name(input.configuration.as_ref()).unwrap_or_else(|| format!("Project {key}"));
        let project = self
            .saas
            .create_project(
                &webhook_id,
                &principal.user_id,
                &principal.organization_id,
                &name,
                self.deadline,
            )
            .await;
        let project_id = match project {
            Ok(project) => project.id.get(),
            Err(e) => return Err(self.refused(e, None, now).await),
        };
        let result = json!({ "project_id": project_id }).to_string();
        self.resources
            .store
            .write_each(move |conn| {
                calls::record_done(conn, &webhook_id, "projects.create", Some(&result), now)
            })
            .await?;
        Ok(Target { project_id, existing: None })
    }

    /// `update_service`: `resources.update_service`, then the new service recorded.
    pub(super) async fn update_service(
        &self,
        current: &ResourceRow,
        target: &Service,
        input: UpdateInput,
        now: i64,
    ) -> Result<ResourceView, ResourceError> {
        let id = current.project_id;
        let webhook_id =
            self.operation_id("resources.update_service", id, current.generation, &[&target.id]);
        let mut body = self.resource_body(current);
        body["from_service_id"] = current.service_id.clone().into();
        body["service_id"] = target.id.clone().into();
        body["configuration"] = input.configuration.clone().unwrap_or_else(|| json!({}));
        body["payment"] = payment(input.payment_token.as_deref());
        self.record_intent(&webhook_id, "resources.update_service", now).await?;
        if let Err(e) = self.saas.update_service(&webhook_id, &body, self.deadline).await {
            return Err(self.refused(e, Some(id), now).await);
        }
        let configuration = input.configuration.as_ref().map(Value::to_string);
        let (from, to) = (current.service_id.clone(), target.id.clone());
        let updated = self
            .record(move |conn, actor, principal| {
                sql::set_service(conn, id, &to, configuration.as_deref(), now)?;
                sql::bump_generation(conn, id, now)?;
                let outcome = Outcome {
                    audit: "resource.updated",
                    change: ResourceChange::ServiceUpdated { from_service_id: &from },
                    id,
                    service: &to,
                    webhook_id: &webhook_id,
                    operation: "resources.update_service",
                    result: None,
                };
                outcome.report(conn, actor, principal, now)?;
                Ok(sql::find_resource(conn, id)?)
            })
            .await?
            .ok_or(ResourceError::NotFound)?;
        Ok(self.resources.view(&updated))
    }

    /// `rotate_credentials`: `resources.rotate`; the SaaS kills every credential it issued for the
    /// resource through the connector before.
    pub(super) async fn rotate(
        &self,
        current: &ResourceRow,
        now: i64,
    ) -> Result<ResourceView, ResourceError> {
        let id = current.project_id;
        let webhook_id = self.operation_id("resources.rotate", id, current.generation, &[]);
        let mut body = self.resource_body(current);
        body["service_id"] = current.service_id.clone().into();
        self.record_intent(&webhook_id, "resources.rotate", now).await?;
        let credentials = match self.saas.rotate(&webhook_id, &body, self.deadline).await {
            Ok(credentials) => credentials,
            Err(e) => return Err(self.refused(e, Some(id), now).await),
        };
        let public = serde_json::to_string(&credentials.public).unwrap_or_default();
        let service = current.service_id.clone();
        self.record(move |conn, actor, principal| {
            sql::record_saas_outcome(conn, id, &service, Some(&public), now)?;
            let outcome = Outcome {
                audit: "resource.rotated",
                change: ResourceChange::CredentialsRotated,
                id,
                service: &service,
                webhook_id: &webhook_id,
                operation: "resources.rotate",
                result: Some(&public),
            };
            Ok(outcome.report(conn, actor, principal, now)?)
        })
        .await?;
        Ok(answer(id, credentials))
    }

    /// `remove`: `resources.remove`, then the resource marked removed. Removing twice calls nothing.
    pub(super) async fn remove(
        &self,
        current: &ResourceRow,
        now: i64,
    ) -> Result<ResourceView, ResourceError> {
        let id = current.project_id;
        if current.removed {
            return Ok(ResourceView::Removed { id });
        }
        let webhook_id = self.operation_id("resources.remove", id, current.generation, &[]);
        let mut body = self.resource_body(current);
        body["service_id"] = current.service_id.clone().into();
        self.record_intent(&webhook_id, "resources.remove", now).await?;
        match self.saas.remove(&webhook_id, &body, self.deadline).await {
            Ok(()) => {}
            // The project is gone: so is the resource; the refusal has marked it removed.
            Err(e) if e.refusal_code() == Some("project_gone") => {
                self.refused(e, Some(id), now).await;
                return Ok(ResourceView::Removed { id });
            }
            Err(e) => return Err(self.refused(e, Some(id), now).await),
        }
        let service = current.service_id.clone();
        self.record(move |conn, actor, principal| {
            let outcome = Outcome {
                audit: "resource.removed",
                change: ResourceChange::Removed,
                id,
                service: &service,
                webhook_id: &webhook_id,
                operation: "resources.remove",
                result: None,
            };
            if sql::mark_removed(conn, id, now)? {
                sql::bump_generation(conn, id, now)?;
                outcome.report(conn, actor, principal, now)?;
            } else {
                // Removed meanwhile (by the inbound API, say): the call is done all the same.
                calls::record_done(conn, &webhook_id, outcome.operation, None, now)?;
            }
            Ok(())
        })
        .await?;
        Ok(ResourceView::Removed { id })
    }

    /// Runs the transaction that records an operation's outcome.
    async fn record<T: Send + 'static>(
        &self,
        mut work: impl FnMut(&mut dyn Conn, &Actor, &Principal) -> Result<T, ResourceError>
        + Send
        + 'static,
    ) -> Result<T, ResourceError> {
        let principal = self.principal.clone();
        let actor = Actor::current(&principal.orchestrator);
        self.resources.store.write(move |conn| work(conn, &actor, &principal)).await
    }

    /// The fields every resource call carries.
    fn resource_body(&self, row: &ResourceRow) -> Value {
        serde_json::to_value(ResourceRef {
            resource_id: row.project_id.to_string(),
            user_id: &self.principal.user_id,
            project_id: row.project_id,
            organization_id: &self.principal.organization_id,
        })
        .unwrap_or_default()
    }

    /// The `webhook-id` of an operation on a resource: the orchestrator, its account, the operation,
    /// the resource and its generation, the `Idempotency-Key` when the request had one, and what
    /// else tells the operation apart (an update's target).
    fn operation_id(&self, operation: &str, id: i64, generation: i64, extra: &[&str]) -> String {
        let (id, generation) = (id.to_string(), generation.to_string());
        let key = self.resources.idempotency_key.unwrap_or_default();
        let mut parts = vec![
            self.principal.orchestrator.as_str(),
            self.principal.orchestrator_account.as_str(),
            operation,
            &id,
            &generation,
            key,
        ];
        parts.extend_from_slice(extra);
        operation_id(&parts)
    }

    async fn record_intent(
        &self,
        webhook_id: &str,
        operation: &'static str,
        now: i64,
    ) -> Result<(), StoreError> {
        let id = webhook_id.to_string();
        self.resources
            .store
            .write_each(move |conn| calls::record_intent(conn, &id, operation, now))
            .await
    }

    /// What a failed call means for the orchestrator. Two refusals change provisio's own state
    /// first: `not_a_member` (the user left the organization) revokes the token's family, and
    /// `project_gone` marks the resource removed.
    async fn refused(&self, e: CallError, id: Option<i64>, now: i64) -> ResourceError {
        let code = match e {
            CallError::Unavailable { retry_after_secs, .. } => {
                return ResourceError::Unavailable { retry_after_secs };
            }
            CallError::Refused { code, message, .. } => match code.as_str() {
                "not_a_member" => "not_a_member",
                "project_gone" => "project_gone",
                _ => return ResourceError::Refused { code, message },
            },
        };
        let principal = self.principal.clone();
        let actor = Actor::current(&principal.orchestrator);
        let recorded = self
            .resources
            .store
            .write(move |conn| -> Result<(), StoreError> {
                if code == "not_a_member" {
                    // The SaaS said so itself: no event tells it again.
                    grants::revoke_family(conn, &principal.family_id, "not_a_member", now)?;
                } else if let Some(id) = id
                    && sql::mark_removed(conn, id, now)?
                {
                    sql::bump_generation(conn, id, now)?;
                    let org = principal.organization_id.as_str();
                    actor.record(
                        conn,
                        "resource.removed",
                        Some(&principal.user_id),
                        Some(org),
                        Some(id),
                        now,
                    )?;
                }
                Ok(())
            })
            .await;
        if let Err(e) = recorded {
            return ResourceError::Internal(e.into());
        }
        if code == "not_a_member" { ResourceError::Forbidden } else { ResourceError::Removed }
    }
}

/// What one operation came to, as the transaction that records it reports it: the audit entry, the
/// event (with the call's id as `operation_id`) and the call's record, with the answer's non-secret
/// part.
struct Outcome<'o> {
    audit: &'static str,
    change: ResourceChange<'o>,
    id: i64,
    service: &'o str,
    webhook_id: &'o str,
    operation: &'static str,
    result: Option<&'o str>,
}

impl Outcome<'_> {
    fn report(
        &self,
        conn: &mut dyn Conn,
        actor: &Actor,
        principal: &Principal,
        now: i64,
    ) -> Result<(), StoreError> {
        let (id, org) = (self.id, principal.organization_id.as_str());
        actor.record(conn, self.audit, Some(&principal.user_id), Some(org), Some(id), now)?;
        let event = resource_event(self.change, id, org, self.service, Some(self.webhook_id));
        actor.emit(conn, &event, now)?;
        calls::record_done(conn, self.webhook_id, self.operation, self.result, now)
    }
}

/// A create's or a rotation's answer: the public keys and, this once, the secret ones.
fn answer(id: i64, credentials: Credentials) -> ResourceView {
    let mut access = credentials.public;
    access.extend(credentials.secret);
    ResourceView::Complete { id, access }
}

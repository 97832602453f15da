//! Resources (spec 5.5–5.9) with the built-in `analytics` backend: a resource is a project. Its
//! `access_configuration` is the project's public key, the provider's host, and a personal (secret)
//! key scoped to the project, shown only on create and rotate and stored hashed.
//!
//! Checks that need the network (billing) run before the one write transaction that provisions, so
//! a refused payment provisions nothing. In connector mode ([`saas`]) the SaaS owns what backs a
//! resource and its credentials; the checks before and the bookkeeping after are the same.

mod saas;

use std::{collections::BTreeMap, sync::Arc};

use provisio_protocol::types::{ComponentOption, Pricing, Service, ServiceKind};
use serde_json::Value;

use super::{
    Internal,
    auth::Principal,
    backend::{ResourceBackend, Target},
    billing::{Activation, Billing},
};
use crate::{
    audit::Actor,
    catalog::Catalog,
    connector::Connector,
    crypto::{RandomError, token_hash},
    events::{Event, ResourceChange},
    store::{
        Conn, Store, StoreError, oauth as grants,
        resources::{self as sql, NewResource, ResourceRow},
    },
};

/// The plan an organization is on before it ever pays.
pub const DEFAULT_PLAN: &str = "free";

#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error("Unknown service_id: {0}")]
    UnknownService(String),
    #[error("{0}")]
    InvalidConfiguration(String),
    #[error("{0}")]
    RequiresPayment(String),
    #[error("{0}")]
    BillingFailed(String),
    #[error("This token has no project to provision into")]
    NoTeam,
    #[error("service_id is required")]
    MissingServiceId,
    #[error("Cannot update from {from} to {to}")]
    UpdateNotAllowed { from: String, to: String },
    #[error("Resource not accessible with this token")]
    Forbidden,
    #[error("Resource not found")]
    NotFound,
    #[error("Resource has been removed")]
    Removed,
    /// Connector mode: the SaaS refused, with its code and message.
    #[error("{message}")]
    Refused { code: String, message: String },
    /// Connector mode: the SaaS did not answer in time; nothing was recorded.
    #[error("The provider's systems are unavailable; retry later")]
    Unavailable { retry_after_secs: u64 },
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl From<StoreError> for ResourceError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.into())
    }
}

impl From<RandomError> for ResourceError {
    fn from(e: RandomError) -> Self {
        Self::Internal(e.into())
    }
}

/// What the orchestrator asked to create.
#[derive(Debug, Clone, Default)]
pub struct CreateInput {
    pub service_id: Option<String>,
    pub configuration: Option<Value>,
    pub project_id: Option<String>,
    pub orchestrator_resource_id: Option<String>,
    pub environment: Option<String>,
    pub payment_token: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct UpdateInput {
    pub service_id: Option<String>,
    pub configuration: Option<Value>,
    pub payment_token: Option<String>,
}

/// A resource as answered: its id and flat `access_configuration`, or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceView {
    Complete { id: i64, access: BTreeMap<String, String> },
    Removed { id: i64 },
}

/// The resource operations, with what they need from configuration.
pub struct Resources<'a> {
    pub store: &'a Store,
    pub backend: &'a Arc<dyn ResourceBackend>,
    pub catalog: &'a Catalog,
    pub billing: &'a Billing,
    pub public_url: &'a str,
    pub orchestrator_label: &'a str,
    /// Connector mode: the SaaS backs resources; `None`: the built-in backend.
    pub connector: Option<&'a Connector>,
    /// The request's `Idempotency-Key`, part of the connector call's `webhook-id`.
    pub idempotency_key: Option<&'a str>,
}

impl<'a> Resources<'a> {
    /// The same operations for a request carrying this `Idempotency-Key`.
    pub fn keyed(self, idempotency_key: Option<&'a str>) -> Self {
        Self { idempotency_key, ..self }
    }

    /// The service a create asks for: the one named, or the catalog's default.
    fn service_for(&self, service_id: Option<&String>) -> Result<Service, ResourceError> {
        match service_id {
            Some(id) => {
                self.catalog.get(id).ok_or_else(|| ResourceError::UnknownService(id.clone()))
            }
            None => self
                .catalog
                .default_service()
                .ok_or_else(|| ResourceError::UnknownService(String::new())),
        }
        .cloned()
    }

    /// `POST /provisioning/resources`.
    pub async fn create(
        &self,
        principal: &Principal,
        input: CreateInput,
        now: i64,
    ) -> Result<ResourceView, ResourceError> {
        let service = self.service_for(input.service_id.as_ref())?;
        validate_configuration(self.catalog, &service, input.configuration.as_ref())?;
        if principal.project_ids.is_empty() {
            return Err(ResourceError::NoTeam);
        }
        if let Some(saas) = self.connector {
            return self.saas(saas, principal).create(service, input, now).await;
        }
        let plan = plan_of(principal);
        let activation = self
            .charge(
                &principal.organization_id,
                &service,
                &plan,
                self.paying_for(&plan),
                input.payment_token.as_deref(),
                ResourceError::RequiresPayment,
            )
            .await?;
        let (principal, host, label) =
            (principal.clone(), self.public_url.to_string(), self.orchestrator_label.to_string());
        let backend = self.backend.clone();
        let actor = Actor::current(&principal.orchestrator);
        self.store
            .write(move |conn| {
                provision(
                    conn,
                    &actor,
                    &*backend,
                    &principal,
                    &service,
                    &input,
                    activation.clone(),
                    &host,
                    &label,
                    now,
                )
            })
            .await
    }

    /// `GET /provisioning/resources/{id}`.
    pub async fn get(&self, principal: &Principal, id: i64) -> Result<ResourceView, ResourceError> {
        let found = self.reachable(principal, id).await?;
        Ok(self.view(&found))
    }

    /// `POST …/{id}/update_service`.
    pub async fn update_service(
        &self,
        principal: &Principal,
        id: i64,
        input: UpdateInput,
        now: i64,
    ) -> Result<ResourceView, ResourceError> {
        let target_id = input
            .service_id
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or(ResourceError::MissingServiceId)?;
        let target = self
            .catalog
            .get(&target_id)
            .ok_or_else(|| ResourceError::UnknownService(target_id.clone()))?
            .clone();
        validate_configuration(self.catalog, &target, input.configuration.as_ref())?;
        let current = self.reachable(principal, id).await?;
        if current.removed {
            return Err(ResourceError::Removed);
        }
        if current.service_id != target.id && !self.update_allowed(&current.service_id, &target.id)
        {
            return Err(ResourceError::UpdateNotAllowed {
                from: current.service_id,
                to: target.id,
            });
        }
        if let Some(saas) = self.connector {
            return self.saas(saas, principal).update_service(&current, &target, input, now).await;
        }
        let plan = plan_of(principal);
        let new_plan =
            if target.kind == Some(ServiceKind::Plan) { target.id.clone() } else { plan.clone() };
        // A move to another plan is a new commitment; a component under the plan the
        // organization already pays for is not.
        let paying = new_plan == plan && self.paying_for(&plan);
        let payment = self
            .charge(
                &principal.organization_id,
                &target,
                &new_plan,
                paying,
                input.payment_token.as_deref(),
                ResourceError::BillingFailed,
            )
            .await?;
        let configuration = input.configuration.as_ref().map(Value::to_string);
        let organization_id = principal.organization_id.clone();
        let changes_plan = new_plan != plan || payment.is_some();
        let (actor, user) = (Actor::current(&principal.orchestrator), principal.user_id.clone());
        let from = current.service_id;
        let updated = self
            .store
            .write(move |conn| -> Result<Option<ResourceRow>, ResourceError> {
                sql::set_service(conn, id, &target.id, configuration.as_deref(), now)?;
                actor.record(
                    conn,
                    "resource.updated",
                    Some(&user),
                    Some(&organization_id),
                    Some(id),
                    now,
                )?;
                let change = ResourceChange::ServiceUpdated { from_service_id: &from };
                actor.emit(
                    conn,
                    &resource_event(change, id, &organization_id, &target.id, None),
                    now,
                )?;
                if changes_plan {
                    let (hash, reference) = split(payment.clone());
                    sql::record_billing(
                        conn,
                        &organization_id,
                        &new_plan,
                        hash.as_deref(),
                        reference.as_deref(),
                        now,
                    )?;
                }
                Ok(sql::find_resource(conn, id)?)
            })
            .await?
            .ok_or(ResourceError::NotFound)?;
        Ok(self.view(&updated))
    }

    /// `POST …/{id}/rotate_credentials`: new project key and personal key; the old ones die now.
    pub async fn rotate(
        &self,
        principal: &Principal,
        id: i64,
        now: i64,
    ) -> Result<ResourceView, ResourceError> {
        let current = self.reachable(principal, id).await?;
        if current.removed {
            return Err(ResourceError::Removed);
        }
        if let Some(saas) = self.connector {
            return self.saas(saas, principal).rotate(&current, now).await;
        }
        let (label, host, backend) = (
            self.orchestrator_label.to_string(),
            self.public_url.to_string(),
            self.backend.clone(),
        );
        let (actor, user) = (Actor::current(&principal.orchestrator), principal.user_id.clone());
        self.store
            .write(move |conn| -> Result<ResourceView, ResourceError> {
                // Read again inside the transaction: a concurrent rotation may have replaced the
                // key `current` saw, and the one to retire is the one there now.
                let current = sql::find_resource(conn, id)?.ok_or(ResourceError::NotFound)?;
                if current.removed {
                    return Err(ResourceError::Removed);
                }
                backend.rotate(conn, &current, now)?;
                actor.record(
                    conn,
                    "resource.rotated",
                    Some(&user),
                    Some(&current.organization_id),
                    Some(id),
                    now,
                )?;
                let change = ResourceChange::CredentialsRotated;
                let (org, service) = (&current.organization_id, &current.service_id);
                actor.emit(conn, &resource_event(change, id, org, service, None), now)?;
                let row = sql::find_resource(conn, id)?.ok_or(ResourceError::NotFound)?;
                let mut access = backend.public_access(&row, &host);
                access.extend(backend.issue(conn, &row, &label, now)?);
                Ok(ResourceView::Complete { id, access })
            })
            .await
    }

    /// `POST …/{id}/remove`: revokes the credentials, keeps the data; removing twice is fine.
    pub async fn remove(
        &self,
        principal: &Principal,
        id: i64,
        now: i64,
    ) -> Result<ResourceView, ResourceError> {
        let current = self.reachable(principal, id).await?;
        if let Some(saas) = self.connector {
            return self.saas(saas, principal).remove(&current, now).await;
        }
        let backend = self.backend.clone();
        let (actor, user) = (Actor::current(&principal.orchestrator), principal.user_id.clone());
        self.store
            .write(move |conn| -> Result<(), ResourceError> {
                if sql::mark_removed(conn, id, now)? {
                    backend.revoke(conn, &current, now)?;
                    actor.record(
                        conn,
                        "resource.removed",
                        Some(&user),
                        Some(&current.organization_id),
                        Some(id),
                        now,
                    )?;
                    let (org, service) = (&current.organization_id, &current.service_id);
                    let event = resource_event(ResourceChange::Removed, id, org, service, None);
                    actor.emit(conn, &event, now)?;
                }
                Ok(())
            })
            .await?;
        Ok(ResourceView::Removed { id })
    }

    /// A resource the token may reach: 403 outside its scope, 404 when it does not exist.
    async fn reachable(
        &self,
        principal: &Principal,
        id: i64,
    ) -> Result<ResourceRow, ResourceError> {
        if !principal.can_reach(id) {
            return Err(ResourceError::Forbidden);
        }
        self.store
            .read(move |conn| sql::find_resource(conn, id))
            .await?
            .ok_or(ResourceError::NotFound)
    }

    /// Activates billing when `service` costs money on `plan`: a token that is sent is redeemed
    /// (refused by the backend → `refused(reason)`); without one, an organization already `paying`
    /// for `plan` owes nothing new, any other gets `requires_payment_credentials`. `None` when
    /// nothing was activated.
    async fn charge(
        &self,
        organization_id: &str,
        service: &Service,
        plan: &str,
        paying: bool,
        token: Option<&str>,
        refused: fn(String) -> ResourceError,
    ) -> Result<Option<(String, Activation)>, ResourceError> {
        if !price_is_paid(service, plan) {
            return Ok(None);
        }
        let token = match token {
            Some(token) => token,
            None if paying => return Ok(None),
            None => {
                return Err(ResourceError::RequiresPayment(format!(
                    "Service {} requires payment credentials",
                    service.id
                )));
            }
        };
        let activation = self
            .billing
            .activate(organization_id, &service.id, token)
            .await
            .map_err(|reason| refused(reason.0))?;
        Ok(Some((token_hash(token), activation)))
    }

    /// Whether an organization on `plan` already pays for it: the plan is a paid plan of the
    /// catalog, and an organization reaches one only with a payment the backend accepted.
    fn paying_for(&self, plan: &str) -> bool {
        self.catalog
            .get(plan)
            .is_some_and(|s| s.kind == Some(ServiceKind::Plan) && price_is_paid(s, plan))
    }

    fn update_allowed(&self, from: &str, to: &str) -> bool {
        // Every direction the catalog lists (any, up, down) permits the move it names.
        self.catalog.get(from).is_some_and(|s| s.allowed_updates.iter().any(|u| u.service == to))
    }

    /// The answer to reads and updates: never a secret.
    fn view(&self, row: &ResourceRow) -> ResourceView {
        if row.removed {
            return ResourceView::Removed { id: row.project_id };
        }
        let access = match &row.public_access {
            // Connector mode: what the SaaS answered, less its secrets.
            Some(json) => serde_json::from_str(json).unwrap_or_default(),
            None => self.backend.public_access(row, self.public_url),
        };
        ResourceView::Complete { id: row.project_id, access }
    }
}

fn split(payment: Option<(String, Activation)>) -> (Option<String>, Option<String>) {
    match payment {
        Some((hash, activation)) => (Some(hash), activation.reference),
        None => (None, None),
    }
}

/// The provisioning transaction: find or make the resource, (re)activate it, record any payment,
/// widen the token's scope, and hand out fresh credentials.
#[allow(clippy::too_many_arguments)]
fn provision(
    conn: &mut dyn Conn,
    actor: &Actor,
    backend: &dyn ResourceBackend,
    principal: &Principal,
    service: &Service,
    input: &CreateInput,
    payment: Option<(String, Activation)>,
    host: &str,
    label: &str,
    now: i64,
) -> Result<ResourceView, ResourceError> {
    let org = principal.organization_id.as_str();
    let existing = match &input.project_id {
        Some(key) => sql::find_by_orchestrator_project(conn, org, &principal.orchestrator, key)?,
        None => sql::find_resource(conn, principal.primary_project_id)?,
    };
    let (row, event) = match existing {
        Some(row) if row.removed => {
            sql::reactivate(conn, row.project_id, now)?;
            backend.reactivate(conn, &row, now)?;
            // Reactivation may have changed the project's key: read it back.
            let row = sql::find_resource(conn, row.project_id)?.ok_or(ResourceError::NotFound)?;
            (row, "resource.reactivated")
        }
        Some(row) => (row, "resource.reprovisioned"),
        None => {
            let name = match &input.project_id {
                Some(key) => project_name(input.configuration.as_ref())
                    .unwrap_or_else(|| format!("Project {key}")),
                None => String::new(),
            };
            let target = match input.project_id {
                Some(_) => Target::New { name: &name },
                None => Target::Primary(principal.primary_project_id),
            };
            let id = backend.create(conn, org, target, now)?;
            (insert_resource(conn, principal, &service.id, input, id, now)?, "resource.created")
        }
    };
    let id = row.project_id;
    // A family's projects only ever grow, so one it already reaches needs no row.
    if !principal.can_reach(id) {
        grants::add_family_project(conn, &principal.family_id, id)?;
    }
    actor.record(conn, event, Some(&principal.user_id), Some(org), Some(id), now)?;
    let provisioned = resource_event(ResourceChange::Provisioned, id, org, &service.id, None);
    actor.emit(conn, &provisioned, now)?;
    if let Some((hash, activation)) = payment {
        let plan = if service.kind == Some(ServiceKind::Plan) {
            service.id.clone()
        } else {
            sql::plan(conn, org)?.unwrap_or_else(|| DEFAULT_PLAN.into())
        };
        sql::record_billing(conn, org, &plan, Some(&hash), activation.reference.as_deref(), now)?;
    }
    let mut access = backend.public_access(&row, host);
    access.extend(backend.issue(conn, &row, label, now)?);
    Ok(ResourceView::Complete { id, access })
}

/// Records a new resource in project `id`, as the orchestrator's create described it.
fn insert_resource(
    conn: &mut dyn Conn,
    principal: &Principal,
    service_id: &str,
    input: &CreateInput,
    id: i64,
    now: i64,
) -> Result<ResourceRow, StoreError> {
    let configuration = input.configuration.as_ref().map(Value::to_string);
    sql::insert_resource(
        conn,
        &NewResource {
            project_id: id,
            organization_id: &principal.organization_id,
            service_id,
            orchestrator: &principal.orchestrator,
            orchestrator_project_id: input.project_id.as_deref(),
            orchestrator_resource_id: input.orchestrator_resource_id.as_deref(),
            environment: input.environment.as_deref(),
            configuration: configuration.as_deref(),
        },
        now,
    )
}

/// The event that reports a change to a resource.
fn resource_event<'e>(
    kind: ResourceChange<'e>,
    id: i64,
    organization_id: &'e str,
    service_id: &'e str,
    operation_id: Option<&'e str>,
) -> Event<'e> {
    Event::Resource {
        kind,
        resource_id: id,
        project_id: id,
        organization_id,
        service_id,
        operation_id,
    }
}

/// The organization's plan, read with the bearer (the catalog's free default if never set).
fn plan_of(principal: &Principal) -> String {
    principal.plan.clone().unwrap_or_else(|| DEFAULT_PLAN.into())
}

fn project_name(configuration: Option<&Value>) -> Option<String> {
    configuration?
        .get("project_name")?
        .as_str()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(String::from)
}

/// Whether provisioning `service` costs money for an organization on `plan`.
pub fn price_is_paid(service: &Service, plan: &str) -> bool {
    match &service.pricing {
        Pricing::Component { component } => component
            .options
            .iter()
            .find(|o| o.parent_service_ids().iter().any(|p| p == plan))
            .map_or_else(
                || service.pricing.is_paid(),
                |o| matches!(o, ComponentOption::Paid { .. }),
            ),
        pricing => pricing.is_paid(),
    }
}

/// Validates `configuration` against the service's JSON Schema (spec 5.5), compiled with the
/// catalog.
pub(crate) fn validate_configuration(
    catalog: &Catalog,
    service: &Service,
    configuration: Option<&Value>,
) -> Result<(), ResourceError> {
    let (Some(validator), Some(configuration)) =
        (catalog.configuration_schema(&service.id), configuration)
    else {
        return Ok(());
    };
    match validator.iter_errors(configuration).next() {
        None => Ok(()),
        Some(error) => {
            let path = error.instance_path().to_string();
            let at = if path.is_empty() { String::new() } else { format!(" at {path}") };
            Err(ResourceError::InvalidConfiguration(format!("configuration{at}: {error}")))
        }
    }
}

//! Connector accounts: the SaaS's users, as `users.lookup` reports them, under the same linking
//! rules. No transaction is held across a call: the calls are made first (a `users.create` or
//! `projects.create` recorded as pending before it is made), then one transaction records the
//! outcome — the request id's resolution, the code, the audit and the event. A crash or timeout
//! anywhere leaves nothing half-made: the orchestrator's retry runs again, and the SaaS sees the
//! same `webhook-id` for the same create, so it makes no second user or project.

use serde_json::json;

use super::{
    AccountError, AccountRequest, Outcome, Path, Resolved, answer, normalize_email,
    pending_consent, remember, resolve,
};
use crate::{
    audit::Actor,
    connector::{CallError, Connector, User, operation_id},
    crypto::random_secret,
    orchestrators::{LinkingPolicy, Orchestrator},
    store::{
        Store, StoreError,
        accounts::{self as sql, Membership, ProjectRef, Resolution, Team},
        connector::{self as calls, CallState},
    },
};

/// A create this request made, to be recorded as done with the outcome.
struct Made {
    webhook_id: String,
    operation: &'static str,
}

/// What the calls came to.
enum Found {
    /// The grant's user and project, how they were reached, and the user's teams.
    Grant { resolution: Resolution, path: Option<Path>, user: User, made: Option<Made> },
    /// The user must prove the email and confirm in a browser first.
    Consent,
}

pub(super) async fn request(
    store: &Store,
    saas: &Connector,
    orchestrator: &Orchestrator,
    request: AccountRequest,
    public_url: &str,
    now: i64,
) -> Result<Outcome, AccountError> {
    let email_normalized = normalize_email(&request.email);
    let retried = match request.request_id.as_str() {
        "" => None,
        id => {
            let (name, id) = (orchestrator.name.clone(), id.to_string());
            store.read(move |conn| sql::find_account_request(conn, &name, &id, now)).await?
        }
    };
    if retried.as_ref().is_some_and(|(email, _)| *email != email_normalized) {
        return Err(AccountError::RequestIdReused);
    }
    let found = Saga { store, saas, orchestrator, request: &request, now }
        .run(retried.map(|(_, resolution)| resolution))
        .await?;
    let (orchestrator, public_url) = (orchestrator.clone(), public_url.to_string());
    let actor = Actor::current(&orchestrator.name);
    store
        .write(move |conn| match &found {
            Found::Consent => {
                pending_consent(conn, &actor, &orchestrator, &request, None, &public_url, now)
            }
            Found::Grant { resolution, path, user, made } => {
                if let Some(made) = made {
                    calls::record_done(conn, &made.webhook_id, made.operation, None, now)?;
                }
                remember(conn, &orchestrator, &request, &email_normalized, resolution, now)?;
                let teams = serde_json::to_string(&teams_of(user, &resolution.project)).ok();
                answer(
                    conn,
                    &actor,
                    &orchestrator,
                    &request,
                    resolution,
                    *path,
                    teams.as_deref(),
                    now,
                )
            }
        })
        .await
}

/// The calls of one account request, inside one deadline.
struct Saga<'a> {
    store: &'a Store,
    saas: &'a Connector,
    orchestrator: &'a Orchestrator,
    request: &'a AccountRequest,
    now: i64,
}

impl Saga<'_> {
    async fn run(&self, retried: Option<Resolution>) -> Result<Found, AccountError> {
        if self.orchestrator.linking == LinkingPolicy::Consent {
            // Proof of the email first, whoever holds it in the SaaS: nothing is made or linked
            // before it.
            return Ok(Found::Consent);
        }
        let deadline = self.saas.deadline();
        let email = self.request.email.trim();
        let create_id = self.operation_id("users.create")?;
        let user =
            self.saas.lookup(email, deadline).await.map_err(|e| AccountError::from_call(&e))?;
        match (user, retried) {
            // The request id was answered before: same user, same project, nothing new.
            (Some(user), Some(resolution)) => {
                Ok(Found::Grant { resolution, path: None, user, made: None })
            }
            // A create of this request's may have reached the SaaS before provisio went down:
            // finish it as the create it was (the SaaS answers that id as it did).
            (Some(user), None) if self.create_pending(&create_id).await? => {
                self.create(&create_id, deadline, Some(user)).await
            }
            (Some(user), None) => self.link(user, deadline).await,
            (None, _) => self.create(&create_id, deadline, None).await,
        }
    }

    /// `users.create`; an email taken meanwhile (`user_exists`) is linked instead. `known` is the
    /// user a lookup already found, if any.
    async fn create(
        &self,
        webhook_id: &str,
        deadline: std::time::Instant,
        known: Option<User>,
    ) -> Result<Found, AccountError> {
        self.record_intent(webhook_id, "users.create").await?;
        let request = self.request;
        let email = request.email.trim();
        let body = json!({
            "email": email,
            "name": request.name,
            "organization_name": request.organization_name.clone()
                .unwrap_or_else(|| format!("{} ({email})", self.orchestrator.label)),
            "project_name": "Default project",
            "orchestrator": {"name": self.orchestrator.name, "account": request.orchestrator_account},
            "configuration": request.configuration,
        });
        match self.saas.create_user(webhook_id, &body, deadline).await {
            Ok(created) => {
                let project = ProjectRef {
                    id: created.project_id.get(),
                    organization_id: created.organization_id.as_str().to_string(),
                };
                let resolution =
                    Resolution { user_id: created.user.id.as_str().to_string(), project };
                let made = Made { webhook_id: webhook_id.to_string(), operation: "users.create" };
                Ok(Found::Grant {
                    resolution,
                    path: Some(Path::Created),
                    user: created.user,
                    made: Some(made),
                })
            }
            Err(e) if e.refusal_code() == Some("user_exists") => {
                let user = match known {
                    Some(user) => user,
                    None => self
                        .saas
                        .lookup(email, deadline)
                        .await
                        .map_err(|e| AccountError::from_call(&e))?
                        .ok_or(
                            // Taken, yet nobody has it: the SaaS contradicts itself.
                            AccountError::CreationRefused,
                        )?,
                };
                self.link(user, deadline).await
            }
            Err(CallError::Refused { .. }) => Err(AccountError::CreationRefused),
            Err(e) => Err(AccountError::from_call(&e)),
        }
    }

    /// The existing-email path: never silently for an address nobody proved, and through the
    /// browser when the orchestrator asks for consent.
    async fn link(
        &self,
        mut user: User,
        deadline: std::time::Instant,
    ) -> Result<Found, AccountError> {
        // Never silently for an address nobody proved (consent orchestrators never get here).
        if !user.email_verified {
            return Err(AccountError::TeamResolutionFailed);
        }
        if !user.within_limits() {
            return Err(AccountError::TeamResolutionFailed);
        }
        let user_id = user.id.as_str().to_string();
        let project = match resolve(&memberships(&user), self.request.team_id)? {
            Resolved::Existing(project) => project,
            Resolved::NewIn(organization_id) => {
                let webhook_id = self.operation_id("projects.create")?;
                self.record_intent(&webhook_id, "projects.create").await?;
                let name = format!("{} project", self.orchestrator.label);
                let project = self
                    .saas
                    .create_project(&webhook_id, &user_id, &organization_id, &name, deadline)
                    .await
                    .map_err(|e| AccountError::from_call(&e))?;
                let made = Made { webhook_id, operation: "projects.create" };
                let granted = ProjectRef { id: project.id.get(), organization_id };
                // The new project is one of the user's teams from now on.
                if let Some(o) =
                    user.organizations.iter_mut().find(|o| o.id.as_str() == granted.organization_id)
                {
                    o.projects.push(project);
                }
                let project = granted;
                let resolution = Resolution { user_id, project };
                return Ok(Found::Grant {
                    resolution,
                    path: Some(Path::Linked),
                    user,
                    made: Some(made),
                });
            }
        };
        Ok(Found::Grant {
            resolution: Resolution { user_id, project },
            path: Some(Path::Linked),
            user,
            made: None,
        })
    }

    /// The `webhook-id` of one create of this request: the orchestrator, its account, the
    /// operation and the request id. Without a request id retries cannot be recognised, so each
    /// request is an operation of its own.
    fn operation_id(&self, operation: &str) -> Result<String, AccountError> {
        let request_id = match self.request.request_id.as_str() {
            "" => format!("anonymous {}", random_secret()?),
            id => format!("request {id}"),
        };
        Ok(operation_id(&[
            &self.orchestrator.name,
            &self.request.orchestrator_account,
            operation,
            &request_id,
        ]))
    }

    async fn record_intent(
        &self,
        webhook_id: &str,
        operation: &'static str,
    ) -> Result<(), StoreError> {
        let (id, now) = (webhook_id.to_string(), self.now);
        self.store.write_each(move |conn| calls::record_intent(conn, &id, operation, now)).await
    }

    async fn create_pending(&self, webhook_id: &str) -> Result<bool, StoreError> {
        let id = webhook_id.to_string();
        let state = self.store.read(move |conn| calls::state(conn, &id)).await?;
        Ok(state == Some(CallState::Pending))
    }
}

/// The user's organizations as the rules read them: oldest membership first (ties by id).
pub(super) fn memberships(user: &User) -> Vec<Membership> {
    let mut organizations: Vec<_> = user.organizations.iter().collect();
    organizations.sort_by(|a, b| (a.joined_at, &a.id).cmp(&(b.joined_at, &b.id)));
    organizations
        .into_iter()
        .map(|o| Membership {
            organization_id: o.id.as_str().to_string(),
            projects: o.projects.iter().map(|p| (p.id.get(), p.demo)).collect(),
        })
        .collect()
}

/// `available_teams` as the SaaS reports them: every non-demo project of every organization, by
/// id — with the grant's project, which a `projects.create` may have just made.
pub(super) fn teams_of(user: &User, granted: &ProjectRef) -> Vec<Team> {
    let mut teams: Vec<Team> = user
        .organizations
        .iter()
        .flat_map(|o| {
            o.projects.iter().filter(|p| !p.demo).map(move |p| Team {
                id: p.id.get(),
                name: p.name.clone(),
                organization_id: o.id.as_str().to_string(),
                organization_name: o.name.clone(),
            })
        })
        .collect();
    if !teams.iter().any(|t| t.id == granted.id) {
        let organization =
            user.organizations.iter().find(|o| o.id.as_str() == granted.organization_id);
        teams.push(Team {
            id: granted.id,
            name: String::new(),
            organization_id: granted.organization_id.clone(),
            organization_name: organization.map(|o| o.name.clone()).unwrap_or_default(),
        });
    }
    teams.sort_by_key(|t| t.id);
    teams.dedup_by_key(|t| t.id);
    teams
}

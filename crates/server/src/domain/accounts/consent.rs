//! The consent leg of `linking = "consent"` (the browser half of `requires_auth`): the user sees
//! which orchestrator asks for which email, proves the address with a one-time emailed sign-in link,
//! picks a project (or a new one, or — for a new address — a new account), and the orchestrator's
//! `callback_url` receives a code bound to the request, or `error=access_denied`.
//!
//! Nothing is created or linked before the proof. The pending consent is single use (closed by one
//! conditional `UPDATE`), lives 30 minutes and is superseded by a newer request for the same email
//! and orchestrator. In connector mode the choices come from `users.lookup`, and a new project or
//! account from `projects.create` / `users.create`, called before the closing transaction.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::{
    AccountError, AccountRequest, Outcome, Path, answer, builtin, connector as saas_accounts,
    remember,
};
use crate::{
    audit::Actor,
    connector::{CallError, Connector, User, operation_id},
    crypto::{random_secret, token_hash},
    email::{Mailer, Message},
    orchestrators::{Orchestrator, Orchestrators, ResponseMode},
    store::{
        Conn, Store, StoreError,
        accounts::{self as accounts_sql, ProjectRef, Resolution},
        connector as calls,
        consent::{self as sql, ConsentRow},
    },
};

/// A sign-in link is good for this long, once.
pub const LINK_TTL_SECS: i64 = 900;

#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    #[error("unknown")]
    Unknown,
    #[error("expired")]
    Expired,
    /// Confirmed or declined already.
    #[error("used")]
    Used,
    /// A newer request for the same email replaced it.
    #[error("superseded")]
    Superseded,
    /// The sign-in link is unknown, used or expired.
    #[error("link")]
    Link,
    /// No proof of the email in this browser (or a forged form).
    #[error("forbidden")]
    Forbidden,
    /// The choice is not one of the user's (or the account changed meanwhile).
    #[error("choice")]
    Choice,
    #[error("the sign-in email could not be sent: {0}")]
    Mail(String),
    #[error("the account could not be completed: {0}")]
    Account(#[from] AccountError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the consent pages show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentPage {
    /// The consent's id in forms (the hash of its token; the token itself stays in the URL).
    pub consent: String,
    /// The forms' anti-forgery value.
    pub csrf: String,
    pub orchestrator_label: String,
    pub email_masked: String,
    pub scopes: Vec<String>,
    /// The origin of the orchestrator's `callback_url`, where the forms' answers redirect (the
    /// page's `form-action` must allow it).
    pub callback_origin: String,
}

/// One choice on the confirmation page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Project {
        id: i64,
        name: String,
        organization_id: String,
        organization_name: String,
    },
    /// A new project in the user's oldest organization.
    NewProject {
        organization_id: String,
        organization_name: String,
    },
    /// A new account (an address nobody holds yet).
    NewAccount,
}

impl Choice {
    /// The form value.
    pub fn value(&self) -> String {
        match self {
            Self::Project { id, .. } => format!("project:{id}"),
            Self::NewProject { .. } => "new_project".into(),
            Self::NewAccount => "new_account".into(),
        }
    }
}

/// The leg, with what it needs.
pub struct ConsentLeg<'a> {
    pub store: &'a Store,
    pub connector: Option<&'a Connector>,
    pub mailer: &'a Mailer,
    pub orchestrators: &'a Orchestrators,
    pub public_url: &'a str,
    pub server_secret: &'a [u8],
}

impl ConsentLeg<'_> {
    /// `GET /consent?token=…`.
    pub async fn open(&self, token: &str, now: i64) -> Result<ConsentPage, ConsentError> {
        let row = self.open_consent(&token_hash(token), now).await?;
        Ok(self.page(&row))
    }

    /// `POST /consent/link`: emails a one-time sign-in link to the consent's address. The caller
    /// has checked the form and the rate limits ([`ConsentLeg::address_of`]).
    pub async fn send_link(&self, consent: &str, now: i64) -> Result<(), ConsentError> {
        let row = self.open_consent(consent, now).await?;
        let link = random_secret().map_err(|e| StoreError::Aborted(e.to_string()))?;
        let (link_hash, consent_hash) = (token_hash(&link), row.token_hash.clone());
        self.store
            .write(move |conn| {
                sql::insert_link(conn, &link_hash, &consent_hash, now, now + LINK_TTL_SECS)
            })
            .await?;
        let label = self.label(&row);
        let url = format!("{}/consent/verify?token={link}", self.public_url);
        let text = format!(
            "{label} asked to connect to your account ({email}).\n\n\
             To confirm that this is your address and choose what {label} may reach, open this link \
             within 15 minutes:\n\n{url}\n\n\
             If you did not ask for this, ignore this message: nothing happens without this link.\n",
            email = row.email
        );
        let message = Message::new(&row.email, format!("Confirm your email for {label}"), text);
        self.mailer.send(&message).await.map_err(|e| ConsentError::Mail(e.to_string()))
    }

    /// The normalized address of an open consent, for the per-address limit.
    pub async fn address_of(&self, consent: &str, now: i64) -> Result<String, ConsentError> {
        Ok(self.open_consent(consent, now).await?.email_normalized)
    }

    /// `GET /consent/verify?token=…`: spends the sign-in link and proves the email in this
    /// browser; the consent's id and the proof (the cookie's value).
    pub async fn prove(&self, link: &str, now: i64) -> Result<(String, String), ConsentError> {
        let proof = random_secret().map_err(|e| StoreError::Aborted(e.to_string()))?;
        let (link_hash, proof_hash) = (token_hash(link), token_hash(&proof));
        let consent = self
            .store
            .write(move |conn| -> Result<Option<String>, StoreError> {
                let Some(consent) = sql::use_link(conn, &link_hash, now)? else {
                    return Ok(None);
                };
                // A consent closed since the link was sent stays closed; the page says why.
                sql::set_proof(conn, &consent, &proof_hash, now)?;
                Ok(Some(consent))
            })
            .await?
            .ok_or(ConsentError::Link)?;
        Ok((consent, proof))
    }

    /// `GET /consent/choose`: the page and the user's choices, for a browser with the proof.
    pub async fn choices(
        &self,
        consent: &str,
        proof: Option<&str>,
        now: i64,
    ) -> Result<(ConsentPage, Vec<Choice>), ConsentError> {
        let row = self.proved(consent, proof, now).await?;
        let choices = self.choices_for(&row).await?.0;
        Ok((self.page(&row), choices))
    }

    /// `POST /consent/confirm`: mints the code for the chosen project and answers the URL to
    /// redirect the browser to (`callback_url?code=…&state=…`).
    pub async fn confirm(
        &self,
        consent: &str,
        proof: Option<&str>,
        choice: &str,
        now: i64,
    ) -> Result<String, ConsentError> {
        let row = self.proved(consent, proof, now).await?;
        let (choices, user) = self.choices_for(&row).await?;
        let chosen =
            choices.into_iter().find(|c| c.value() == choice).ok_or(ConsentError::Choice)?;
        let orchestrator = self.orchestrator(&row)?;
        let made = match self.connector {
            Some(saas) => Some(self.make_in_saas(saas, &row, &chosen, user).await?),
            None => None,
        };
        let (proof_hash, actor) = (proof.map(token_hash), Actor::current(&orchestrator.name));
        let (redirect_to, state) = (orchestrator.clone(), row.state.clone());
        let code = self
            .store
            .write(move |conn| {
                complete(
                    conn,
                    &actor,
                    &orchestrator,
                    &row,
                    proof_hash.as_deref(),
                    &chosen,
                    made.as_ref(),
                    now,
                )
            })
            .await?;
        self.callback(&redirect_to, &[("code", &code)], state.as_deref())
    }

    /// `POST /consent/decline`: closes the consent and answers the URL to redirect the browser to
    /// (`callback_url?error=access_denied&state=…`).
    pub async fn decline(&self, consent: &str, now: i64) -> Result<String, ConsentError> {
        let row = self.open_consent(consent, now).await?;
        let orchestrator = self.orchestrator(&row)?;
        let hash = row.token_hash.clone();
        let actor = Actor::current(&orchestrator.name);
        let closed = self
            .store
            .write(move |conn| -> Result<bool, StoreError> {
                let closed = sql::close(conn, &hash, None, true, now)?;
                if closed {
                    actor.record(conn, "consent.declined", None, None, None, now)?;
                }
                Ok(closed)
            })
            .await?;
        if !closed {
            return Err(ConsentError::Used);
        }
        self.callback(&orchestrator, &[("error", "access_denied")], row.state.as_deref())
    }

    /// Whether a form's anti-forgery value belongs to the consent it names.
    pub fn form_is_genuine(&self, consent: &str, csrf: &str) -> bool {
        bool::from(self.csrf(consent).as_bytes().ct_eq(csrf.as_bytes()))
    }

    fn csrf(&self, consent: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.server_secret) else {
            return String::new();
        };
        mac.update(b"consent form\n");
        mac.update(consent.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn page(&self, row: &ConsentRow) -> ConsentPage {
        ConsentPage {
            consent: row.token_hash.clone(),
            csrf: self.csrf(&row.token_hash),
            orchestrator_label: self.label(row),
            email_masked: mask_email(&row.email),
            scopes: row.scopes.split_whitespace().map(String::from).collect(),
            callback_origin: self
                .orchestrators
                .get(&row.orchestrator)
                .and_then(|o| o.callback_url.as_deref())
                .and_then(|u| reqwest::Url::parse(u).ok())
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_default(),
        }
    }

    fn label(&self, row: &ConsentRow) -> String {
        self.orchestrators
            .get(&row.orchestrator)
            .map_or_else(|| row.orchestrator.clone(), |o| o.label.clone())
    }

    fn orchestrator(&self, row: &ConsentRow) -> Result<Orchestrator, ConsentError> {
        let mut orchestrator =
            self.orchestrators.get(&row.orchestrator).cloned().ok_or(ConsentError::Unknown)?;
        // The browser can only carry a code back.
        orchestrator.response = ResponseMode::Oauth;
        Ok(orchestrator)
    }

    async fn row(&self, consent: &str) -> Result<Option<ConsentRow>, StoreError> {
        let hash = consent.to_string();
        self.store.read(move |conn| sql::find(conn, &hash)).await
    }

    /// An open consent: unknown, used, superseded and expired ones are told apart.
    async fn open_consent(&self, consent: &str, now: i64) -> Result<ConsentRow, ConsentError> {
        let row = self.row(consent).await?.ok_or(ConsentError::Unknown)?;
        if row.completed {
            Err(ConsentError::Used)
        } else if row.superseded {
            Err(ConsentError::Superseded)
        } else if row.expires_at <= now {
            Err(ConsentError::Expired)
        } else {
            Ok(row)
        }
    }

    /// An open consent whose email this browser proved.
    async fn proved(
        &self,
        consent: &str,
        proof: Option<&str>,
        now: i64,
    ) -> Result<ConsentRow, ConsentError> {
        let row = self.open_consent(consent, now).await?;
        let proved = match (proof, &row.proof_hash) {
            (Some(proof), Some(expected)) => {
                bool::from(token_hash(proof).as_bytes().ct_eq(expected.as_bytes()))
            }
            _ => false,
        };
        if proved { Ok(row) } else { Err(ConsentError::Forbidden) }
    }

    /// The user's choices, fresh: provisio's own tables, or `users.lookup`.
    async fn choices_for(
        &self,
        row: &ConsentRow,
    ) -> Result<(Vec<Choice>, Option<User>), ConsentError> {
        match self.connector {
            Some(saas) => {
                let user = saas
                    .lookup(&row.email, saas.deadline())
                    .await
                    .map_err(|e| AccountError::from_call(&e))?;
                Ok((user.as_ref().map_or_else(|| vec![Choice::NewAccount], saas_choices), user))
            }
            None => {
                let email = row.email_normalized.clone();
                let choices = self
                    .store
                    .read(move |conn| -> Result<Vec<Choice>, StoreError> {
                        let Some(user) = accounts_sql::find_user_by_email(conn, &email)? else {
                            return Ok(vec![Choice::NewAccount]);
                        };
                        let mut choices: Vec<Choice> = accounts_sql::available_teams(conn, &user)?
                            .into_iter()
                            .map(|t| Choice::Project {
                                id: t.id,
                                name: t.name,
                                organization_id: t.organization_id,
                                organization_name: t.organization_name,
                            })
                            .collect();
                        if let Some(oldest) = accounts_sql::memberships(conn, &user)?.first() {
                            let organization_name =
                                accounts_sql::organization_name(conn, &oldest.organization_id)?;
                            choices.push(Choice::NewProject {
                                organization_id: oldest.organization_id.clone(),
                                organization_name,
                            });
                        }
                        Ok(choices)
                    })
                    .await?;
                Ok((choices, None))
            }
        }
    }

    /// Connector mode: the user, project or account the choice needs, made in the SaaS before the
    /// closing transaction (under ids derived from the consent, so a retry makes nothing twice).
    async fn make_in_saas(
        &self,
        saas: &Connector,
        row: &ConsentRow,
        chosen: &Choice,
        user: Option<User>,
    ) -> Result<Made, ConsentError> {
        let deadline = saas.deadline();
        let id = |operation: &str| {
            operation_id(&[
                &row.orchestrator,
                &row.orchestrator_account,
                operation,
                "consent",
                &row.token_hash,
            ])
        };
        let label = self.label(row);
        let made = match (chosen, user) {
            (Choice::Project { id: project, organization_id, .. }, Some(user)) => Made {
                user_id: user.id.as_str().to_string(),
                project: ProjectRef { id: *project, organization_id: organization_id.clone() },
                path: Path::Linked,
                call: None,
                teams: teams_json(&user, *project, organization_id),
            },
            (Choice::NewProject { organization_id, .. }, Some(mut user)) => {
                let webhook_id = id("projects.create");
                let name = format!("{label} project");
                let user_id = user.id.as_str().to_string();
                let project = saas
                    .create_project(&webhook_id, &user_id, organization_id, &name, deadline)
                    .await
                    .map_err(|e| AccountError::from_call(&e))?;
                let project_id = project.id.get();
                if let Some(o) =
                    user.organizations.iter_mut().find(|o| o.id.as_str() == organization_id)
                {
                    o.projects.push(project);
                }
                Made {
                    user_id,
                    project: ProjectRef {
                        id: project_id,
                        organization_id: organization_id.clone(),
                    },
                    path: Path::Linked,
                    call: Some((webhook_id, "projects.create")),
                    teams: teams_json(&user, project_id, organization_id),
                }
            }
            (Choice::NewAccount, None) => {
                let webhook_id = id("users.create");
                let body = serde_json::json!({
                    "email": row.email,
                    "name": row.name,
                    "organization_name": row.organization_name.clone()
                        .unwrap_or_else(|| format!("{label} ({})", row.email)),
                    "project_name": "Default project",
                    "orchestrator": {"name": row.orchestrator, "account": row.orchestrator_account},
                    "configuration": configuration_of(row),
                });
                let created = match saas.create_user(&webhook_id, &body, deadline).await {
                    Ok(created) => created,
                    // Someone took the address meanwhile: the choices have changed.
                    Err(e) if e.refusal_code() == Some("user_exists") => {
                        return Err(ConsentError::Choice);
                    }
                    Err(CallError::Refused { .. }) => {
                        return Err(AccountError::CreationRefused.into());
                    }
                    Err(e) => return Err(AccountError::from_call(&e).into()),
                };
                let organization_id = created.organization_id.as_str().to_string();
                let project_id = created.project_id.get();
                Made {
                    user_id: created.user.id.as_str().to_string(),
                    teams: teams_json(&created.user, project_id, &organization_id),
                    project: ProjectRef { id: project_id, organization_id },
                    path: Path::Created,
                    call: Some((webhook_id, "users.create")),
                }
            }
            _ => return Err(ConsentError::Choice),
        };
        Ok(made)
    }

    /// `callback_url` with `params` and `state`.
    fn callback(
        &self,
        orchestrator: &Orchestrator,
        params: &[(&str, &str)],
        state: Option<&str>,
    ) -> Result<String, ConsentError> {
        let base = orchestrator.callback_url.as_deref().ok_or(ConsentError::Unknown)?;
        let mut url = reqwest::Url::parse(base).map_err(|_| ConsentError::Unknown)?;
        {
            let mut query = url.query_pairs_mut();
            for (key, value) in params {
                query.append_pair(key, value);
            }
            if let Some(state) = state {
                query.append_pair("state", state);
            }
        }
        Ok(url.to_string())
    }
}

/// What connector mode made before the closing transaction.
struct Made {
    user_id: String,
    project: ProjectRef,
    path: Path,
    /// The create call to record as done.
    call: Option<(String, &'static str)>,
    teams: Option<String>,
}

fn saas_choices(user: &User) -> Vec<Choice> {
    let mut choices: Vec<Choice> = user
        .organizations
        .iter()
        .flat_map(|o| {
            o.projects.iter().filter(|p| !p.demo).map(move |p| Choice::Project {
                id: p.id.get(),
                name: p.name.clone(),
                organization_id: o.id.as_str().to_string(),
                organization_name: o.name.clone(),
            })
        })
        .collect();
    if let Some(oldest) = saas_accounts::memberships(user).first()
        && let Some(o) = user.organizations.iter().find(|o| o.id.as_str() == oldest.organization_id)
    {
        choices.push(Choice::NewProject {
            organization_id: o.id.as_str().to_string(),
            organization_name: o.name.clone(),
        });
    }
    choices
}

fn teams_json(user: &User, project: i64, organization_id: &str) -> Option<String> {
    let granted = ProjectRef { id: project, organization_id: organization_id.to_string() };
    serde_json::to_string(&saas_accounts::teams_of(user, &granted)).ok()
}

/// The closing transaction: the consent closed once (with the proof), the account or project made
/// (built-in), the request id remembered, the audit and the event written, the code minted.
#[allow(clippy::too_many_arguments)]
fn complete(
    conn: &mut dyn Conn,
    actor: &Actor,
    orchestrator: &Orchestrator,
    row: &ConsentRow,
    proof_hash: Option<&str>,
    chosen: &Choice,
    made: Option<&Made>,
    now: i64,
) -> Result<String, ConsentError> {
    if !sql::close(conn, &row.token_hash, proof_hash, false, now)? {
        return Err(ConsentError::Used);
    }
    let request = AccountRequest {
        request_id: row.request_id.clone(),
        email: row.email.clone(),
        name: row.name.clone(),
        organization_name: row.organization_name.clone(),
        team_id: None,
        scopes: row.scopes.split_whitespace().map(String::from).collect(),
        configuration: configuration_of(row),
        code_challenge: row.code_challenge.clone(),
        orchestrator_account: row.orchestrator_account.clone(),
        confirmation_secret: row.state.clone(),
    };
    let (resolution, path, teams) = match made {
        Some(made) => {
            if let Some((webhook_id, operation)) = &made.call {
                calls::record_done(conn, webhook_id, operation, None, now)?;
            }
            let resolution =
                Resolution { user_id: made.user_id.clone(), project: made.project.clone() };
            (resolution, made.path, made.teams.clone())
        }
        None => {
            builtin_resolution(conn, orchestrator, &request, &row.email_normalized, chosen, now)?
        }
    };
    remember(conn, orchestrator, &request, &row.email_normalized, &resolution, now)?;
    match answer(
        conn,
        actor,
        orchestrator,
        &request,
        &resolution,
        Some(path),
        teams.as_deref(),
        now,
    )? {
        Outcome::Code(code) => Ok(code),
        _ => Err(ConsentError::Choice),
    }
}

/// Built-in mode: the chosen project, or the project or account the choice makes.
fn builtin_resolution(
    conn: &mut dyn Conn,
    orchestrator: &Orchestrator,
    request: &AccountRequest,
    email_normalized: &str,
    chosen: &Choice,
    now: i64,
) -> Result<(Resolution, Path, Option<String>), ConsentError> {
    let user = accounts_sql::find_user_by_email(conn, email_normalized)?;
    let resolution = match (chosen, user) {
        (Choice::Project { id, organization_id, .. }, Some(user_id)) => Resolution {
            user_id,
            project: ProjectRef { id: *id, organization_id: organization_id.clone() },
        },
        (Choice::NewProject { organization_id, .. }, Some(user_id)) => {
            let name = format!("{} project", orchestrator.label);
            let project = builtin::new_project(conn, organization_id, &name, now)?;
            Resolution { user_id, project }
        }
        (Choice::NewAccount, None) => {
            let created = builtin::create_user(conn, orchestrator, request, email_normalized, now)?
                .ok_or(ConsentError::Choice)?;
            return Ok((created, Path::Created, None));
        }
        _ => return Err(ConsentError::Choice),
    };
    Ok((resolution, Path::Linked, None))
}

/// `ada@example.com` → `a***@example.com`: enough to recognise, not to harvest.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

/// The consent's checked `configuration`, as the account request carried it.
fn configuration_of(row: &ConsentRow) -> Option<serde_json::Value> {
    row.configuration.as_deref().and_then(|json| serde_json::from_str(json).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_masked() {
        assert_eq!(mask_email("ada@example.com"), "a***@example.com");
        assert_eq!(mask_email("é@x.org"), "é***@x.org");
        assert_eq!(mask_email("nope"), "***");
    }
}

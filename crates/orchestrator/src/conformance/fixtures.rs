//! Set-up through the protocol itself: accounts, codes and tokens a check needs, made fresh for it,
//! so the suite works against a provider it knows nothing about.

use serde_json::{Value, json};

use super::{
    expect::summarize,
    wire::{ACCOUNT_REQUESTS, Ctx, RESOURCES, SERVICES},
};
use crate::{Reply, client::account_request_body};

/// The answer of a set-up call that should have succeeded, as a failure of the check.
fn setup_failed(step: &str, reply: &Reply) -> String {
    format!("set-up failed: {step} answered {}", summarize(reply))
}

/// A valid account request for `email` under a fresh request id.
pub fn account_body(cx: &Ctx, email: &str) -> Value {
    account_request_body(&cx.request_id(), email, &cx.stripe_account)
}

/// Sends a signed account request and takes the authorization code out of its answer.
pub async fn code_for(cx: &Ctx, body: &Value) -> Result<String, String> {
    let reply = cx.post(ACCOUNT_REQUESTS, body).send().await?;
    match (reply.status, reply.json.as_ref().and_then(|j| j["oauth"]["code"].as_str())) {
        (200, Some(code)) => Ok(code.to_string()),
        _ => Err(setup_failed("the account request", &reply)),
    }
}

/// A code for a brand-new user, and the user's email.
pub async fn new_code(cx: &Ctx) -> Result<(String, String), String> {
    let email = cx.email();
    let code = code_for(cx, &account_body(cx, &email)).await?;
    Ok((email, code))
}

/// A signed code exchange that must succeed; the token answer.
pub async fn redeem(cx: &Ctx, code: &str) -> Result<Value, String> {
    tokens(cx, &[("grant_type", "authorization_code"), ("code", code)]).await
}

/// A signed token request that must succeed.
pub async fn tokens(cx: &Ctx, form: &[(&str, &str)]) -> Result<Value, String> {
    let reply = cx.token(form).send().await?;
    match reply.json {
        Some(json) if reply.status == 200 && json["access_token"].is_string() => Ok(json),
        _ => Err(setup_failed("the token request", &reply)),
    }
}

/// A user with tokens: what most `oauth` and linking checks start from.
pub struct Account {
    pub email: String,
    pub tokens: Value,
}

impl Account {
    pub fn organization_id(&self) -> &str {
        self.tokens["account"]["id"].as_str().unwrap_or_default()
    }

    pub fn refresh_token(&self) -> &str {
        self.tokens["refresh_token"].as_str().unwrap_or_default()
    }

    pub fn access_token(&self) -> &str {
        self.tokens["access_token"].as_str().unwrap_or_default()
    }

    /// The first of `available_teams`, the project a new user's account was created with.
    pub fn first_team(&self) -> Result<i64, String> {
        team_ids(&self.tokens)
            .first()
            .copied()
            .ok_or_else(|| format!("set-up failed: no available_teams in {}", self.tokens))
    }
}

/// A new user through the whole flow: account request, then the code exchange.
pub async fn new_account(cx: &Ctx) -> Result<Account, String> {
    let (email, code) = new_code(cx).await?;
    Ok(Account { email, tokens: redeem(cx, &code).await? })
}

/// Links `email` again (an existing user) and redeems the code.
pub async fn link_again(cx: &Ctx, email: &str) -> Result<Value, String> {
    let code = code_for(cx, &account_body(cx, email)).await?;
    redeem(cx, &code).await
}

/// The ids of `account.available_teams`, in the order given.
pub fn team_ids(tokens: &Value) -> Vec<i64> {
    tokens["account"]["available_teams"]
        .as_array()
        .map(|teams| teams.iter().filter_map(|t| t["id"].as_i64()).collect())
        .unwrap_or_default()
}

/// An account request body with `configuration` set.
pub fn with_configuration(cx: &Ctx, email: &str, configuration: Value) -> Value {
    let mut body = account_body(cx, email);
    body["configuration"] = configuration;
    body
}

/// A body with one member set.
pub fn patched(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

/// A body without `key`.
pub fn without(mut body: Value, key: &str) -> Value {
    if let Some(object) = body.as_object_mut() {
        object.remove(key);
    }
    body
}

/// A PKCE-bound account request for a new user: the body and the verifier.
pub fn pkce_body(cx: &Ctx) -> Result<(Value, String), String> {
    let (verifier, challenge) =
        crate::pkce::pair().map_err(|e| format!("set-up failed: no randomness: {e}"))?;
    let mut body = account_body(cx, &cx.email());
    body["code_challenge"] = json!(challenge);
    body["code_challenge_method"] = json!("S256");
    Ok((body, verifier))
}

/// The services the resource checks use, chosen from the provider's own catalog.
pub struct Catalog {
    services: Vec<Value>,
}

impl Catalog {
    /// Reads `GET /provisioning/services`.
    pub async fn fetch(cx: &Ctx) -> Result<Self, String> {
        let reply = cx.get(SERVICES).send().await?;
        match reply.json.as_ref().and_then(|j| j["data"].as_array()) {
            Some(services) if reply.status == 200 && !services.is_empty() => {
                Ok(Self { services: services.clone() })
            }
            _ => Err(setup_failed("the catalog", &reply)),
        }
    }

    fn get(&self, id: &str) -> Option<&Value> {
        self.services.iter().find(|s| s["id"] == id)
    }

    fn id(service: &Value) -> &str {
        service["id"].as_str().unwrap_or_default()
    }

    fn priced(service: &Value, kind: &str) -> bool {
        service["pricing"]["type"] == kind
    }

    /// Free, or a component with a free option: a new account provisions it without paying.
    fn costs_nothing(service: &Value) -> bool {
        Self::priced(service, "free")
            || service["pricing"]["component"]["options"]
                .as_array()
                .is_some_and(|options| options.iter().any(|o| o["type"] == "free"))
    }

    fn updates(service: &Value) -> impl Iterator<Item = &str> {
        service["allowed_updates"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u["service"].as_str())
    }

    /// The service the checks provision: a deployable one that costs nothing (the first that costs
    /// nothing, else the first).
    pub fn subject(&self) -> &str {
        let deployable = |s: &&Value| s["kind"] == "deployable" && Self::costs_nothing(s);
        self.services
            .iter()
            .find(deployable)
            .or_else(|| self.services.iter().find(|s| Self::costs_nothing(s)))
            .or_else(|| self.services.first())
            .map_or("", Self::id)
    }

    /// A free service the subject may be updated to; the subject itself when it lists none.
    pub fn update_target(&self) -> &str {
        let subject = self.subject();
        self.get(subject)
            .into_iter()
            .flat_map(Self::updates)
            .find(|t| *t != subject && self.get(t).is_some_and(|s| Self::priced(s, "free")))
            .unwrap_or(subject)
    }

    /// A paid service the subject may be updated to.
    pub fn paid_update(&self) -> Option<&str> {
        self.get(self.subject())
            .into_iter()
            .flat_map(Self::updates)
            .find(|t| self.get(t).is_some_and(|s| Self::priced(s, "paid")))
    }

    /// A paid service.
    pub fn paid(&self) -> Option<&str> {
        self.services.iter().find(|s| Self::priced(s, "paid")).map(Self::id)
    }

    /// A free service and another service its `allowed_updates` do not list.
    pub fn disallowed_update(&self) -> Option<(&str, &str)> {
        self.services.iter().filter(|s| Self::priced(s, "free")).find_map(|from| {
            let from_id = Self::id(from);
            self.services
                .iter()
                .map(Self::id)
                .find(|to| *to != from_id && !Self::updates(from).any(|u| u == *to))
                .map(|to| (from_id, to))
        })
    }

    /// A service that costs nothing and has a `configuration_schema`, with a configuration that
    /// breaks it: a declared property of the wrong type, else not an object at all.
    pub fn invalid_configuration(&self) -> Option<(&str, Value)> {
        let service = self
            .services
            .iter()
            .find(|s| Self::costs_nothing(s) && s["configuration_schema"].is_object())?;
        let properties = service["configuration_schema"]["properties"].as_object();
        let typed = properties.into_iter().flatten().find_map(|(name, schema)| {
            let wrong = match schema["type"].as_str()? {
                "string" => json!(42),
                _ => json!("conformance"),
            };
            Some(json!({ name: wrong }))
        });
        Some((Self::id(service), typed.unwrap_or_else(|| json!("conformance"))))
    }
}

/// A create body for `service` under a fresh orchestrator `project_id`.
pub fn create_body(cx: &Ctx, service: &str) -> Value {
    json!({"service_id": service, "project_id": cx.project_key()})
}

/// A body with a fresh unknown field: the same request, but not the same bytes.
pub fn distinct(cx: &Ctx, mut body: Value) -> Value {
    body["conformance_nonce"] = json!(cx.nonce());
    body
}

/// A provisioned resource: its id and the create's answer.
pub struct Resource {
    pub id: String,
    pub answer: Value,
}

impl Resource {
    pub fn access(&self) -> &Value {
        access(&self.answer)
    }
}

/// The `access_configuration` of a complete answer.
pub fn access(answer: &Value) -> &Value {
    &answer["complete"]["access_configuration"]
}

/// A signed resource call with `token` that must answer 200 `complete`.
pub async fn complete(cx: &Ctx, path: &str, body: &Value, token: &str) -> Result<Resource, String> {
    let reply = cx.post(path, body).bearer(token).send().await?;
    match reply.json.as_ref() {
        Some(json) if reply.status == 200 && json["status"] == "complete" => {
            match json["id"].as_str() {
                Some(id) => Ok(Resource { id: id.to_string(), answer: json.clone() }),
                None => Err(setup_failed(path, &reply)),
            }
        }
        _ => Err(setup_failed(path, &reply)),
    }
}

/// Creates a resource with `body` that must succeed.
pub async fn provision(cx: &Ctx, token: &str, body: &Value) -> Result<Resource, String> {
    complete(cx, RESOURCES, body, token).await
}

/// A new user with one resource of `service` under a fresh `project_id`.
pub async fn with_resource(cx: &Ctx, service: &str) -> Result<(Account, Resource), String> {
    let account = new_account(cx).await?;
    let resource = provision(cx, account.access_token(), &create_body(cx, service)).await?;
    Ok((account, resource))
}

/// A signed refresh that must succeed: the new token answer.
pub async fn refreshed(cx: &Ctx, account: &Account) -> Result<Value, String> {
    tokens(cx, &[("grant_type", "refresh_token"), ("refresh_token", account.refresh_token())]).await
}

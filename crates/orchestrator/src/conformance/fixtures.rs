//! Set-up through the protocol itself: accounts, codes and tokens a check needs, made fresh for it,
//! so the suite works against a provider it knows nothing about.

use serde_json::{Value, json};

use super::{
    expect::summarize,
    wire::{ACCOUNT_REQUESTS, Ctx},
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

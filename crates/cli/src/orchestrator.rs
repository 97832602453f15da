//! `provisio orchestrator …`: plays Stripe. One signed protocol call per subcommand, printing the
//! provider's JSON; a state file remembers codes and tokens so calls chain without copy-paste.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context;
use clap::{Args, Subcommand};
use provisio_orchestrator::{
    Client, ClientConfig, Reply,
    callback::{self, Callback, Outcome},
    client, pkce,
    state::{DEFAULT_STATE_FILE, State},
};
use serde_json::{Value, json};

/// Default provider URL: where `provisio serve` listens by default.
const DEFAULT_BASE_URL: &str = "http://127.0.0.1:8080";

#[derive(Args)]
pub struct OrchestratorArgs {
    #[command(flatten)]
    target: Target,
    #[command(subcommand)]
    call: Call,
}

/// Which provider to call and how to sign.
#[derive(Args)]
pub struct Target {
    /// Provider base URL.
    #[arg(long, global = true, env = "PROVISIO_BASE_URL", default_value = DEFAULT_BASE_URL)]
    base_url: String,
    /// Signing secret(s), comma-separated to double-sign as during rotation.
    #[arg(
        long,
        global = true,
        env = "PROVISIO_SIGNING_SECRET",
        hide_env_values = true,
        value_delimiter = ','
    )]
    signing_secret: Vec<String>,
    /// `API-Version` header to send (empty: none).
    #[arg(long, global = true, default_value = provisio_protocol::API_VERSION)]
    api_version: String,
    /// Prefix the provider mounts the protocol under, e.g. `/api/agentic`.
    #[arg(long, global = true, default_value = "")]
    path_prefix: String,
    /// Token endpoint (default: `<base-url>/oauth/token`).
    #[arg(long, global = true)]
    token_url: Option<String>,
    /// Where codes, tokens and resource ids are remembered between calls.
    #[arg(long, global = true, env = "PROVISIO_ORCHESTRATOR_STATE", default_value = DEFAULT_STATE_FILE)]
    state_file: PathBuf,
    /// Print only the response body as compact JSON (for scripts).
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Call {
    /// GET /provisioning/health
    Health,
    /// GET /provisioning/services
    Services,
    /// POST /provisioning/account_requests for an email the orchestrator vouches for.
    AccountRequest(AccountRequestArgs),
    /// Exchange an authorization code for tokens (default: the last code).
    Token {
        /// The authorization code to redeem (default: the one saved by the last account request).
        #[arg(long)]
        code: Option<String>,
        /// PKCE verifier (default: the one saved with the last code).
        #[arg(long)]
        code_verifier: Option<String>,
    },
    /// Rotate a refresh token (default: the saved one).
    Refresh {
        /// The refresh token to rotate (default: the one saved by the last token answer).
        #[arg(long)]
        refresh_token: Option<String>,
    },
    /// POST /provisioning/resources (default service, or --service-id).
    Provision {
        /// The catalog service to provision (default: the provider's default deployable one).
        #[arg(long)]
        service_id: Option<String>,
        /// The orchestrator's project id: the idempotency key.
        #[arg(long)]
        project_id: Option<String>,
        /// A Shared Payment Token for paid services.
        #[arg(long)]
        payment_token: Option<String>,
        /// `configuration.project_name` of a new project.
        #[arg(long)]
        project_name: Option<String>,
    },
    /// GET /provisioning/resources/{id} (default: the last resource).
    Get {
        /// The resource id (default: the last one provisioned).
        id: Option<String>,
    },
    /// POST …/{id}/update_service.
    UpdateService {
        /// The resource id (default: the last one provisioned).
        id: Option<String>,
        /// The service to move the resource to (one its `allowed_updates` lists).
        #[arg(long)]
        service_id: String,
        /// A Shared Payment Token, when the new service is paid.
        #[arg(long)]
        payment_token: Option<String>,
    },
    /// POST …/{id}/rotate_credentials.
    Rotate {
        /// The resource id (default: the last one provisioned).
        id: Option<String>,
    },
    /// POST …/{id}/remove.
    Remove {
        /// The resource id (default: the last one provisioned).
        id: Option<String>,
    },
    /// POST /provisioning/deep_links.
    DeepLink {
        /// What the link opens (the protocol defines `dashboard`).
        #[arg(long, default_value = "dashboard")]
        purpose: String,
        /// The resource the link is for (default: the token's primary resource).
        #[arg(long)]
        resource_id: Option<String>,
    },
    /// The whole lifecycle: health → services → account request → token → provision → get →
    /// rotate → deep link, printing each step.
    Flow(AccountRequestArgs),
}

#[derive(Args, Clone)]
struct AccountRequestArgs {
    /// The user's email, which the orchestrator vouches for.
    #[arg(long)]
    email: String,
    /// `configuration.team_id`: link to this project of an existing user.
    #[arg(long)]
    team_id: Option<String>,
    /// The user's name.
    #[arg(long)]
    name: Option<String>,
    /// `configuration.organization_name`: the name of a new user's organization.
    #[arg(long)]
    organization_name: Option<String>,
    /// The orchestrator's request id (default: a fresh one).
    #[arg(long)]
    id: Option<String>,
    /// The Stripe account the orchestrator acts for.
    #[arg(long, default_value = "acct_provisio_cli")]
    stripe_account: String,
    /// Bind the code to a PKCE challenge (the verifier is saved for `token`).
    #[arg(long)]
    pkce: bool,
    /// Consent linking: listen on this loopback address (e.g. 127.0.0.1:8765, where the
    /// orchestrator's registered callback_url points) for the browser's return from a
    /// `requires_auth` answer, then exchange its code. Sends a random confirmation_secret.
    #[arg(long, value_name = "ADDR")]
    callback_listen: Option<String>,
    /// How long to wait for the browser, in seconds.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = callback::DEFAULT_TIMEOUT.as_secs(),
        requires = "callback_listen"
    )]
    callback_timeout: u64,
}

pub async fn run(args: OrchestratorArgs) -> anyhow::Result<ExitCode> {
    let target = &args.target;
    let client = client(target)?;
    let reply = match args.call {
        // Calls that neither read nor change the state leave the file alone.
        Call::Health => client.health().await?,
        Call::Services => client.services().await?,
        Call::Flow(request) => {
            let mut state = State::load(&target.state_file)?;
            return flow(&client, &mut state, &request, target).await;
        }
        call => {
            let mut state = State::load(&target.state_file)?;
            let reply = stateful(&client, &mut state, call).await?;
            state.save(&target.state_file)?;
            reply
        }
    };
    Ok(print(&reply, target.json))
}

/// The calls that take defaults from the state file and remember what they get back.
async fn stateful(client: &Client, state: &mut State, call: Call) -> anyhow::Result<Reply> {
    Ok(match call {
        Call::AccountRequest(request) => match account_request(client, state, &request).await? {
            Outcome::Answered(reply) => reply,
            // The browser step happened: the token answer is what `token` would have printed.
            Outcome::Exchanged { token, .. } => token,
        },
        Call::Token { code, code_verifier } => {
            let code = code
                .or_else(|| state.code.clone())
                .context("no code: pass --code or run account-request first")?;
            let verifier = code_verifier.or_else(|| state.code_verifier.clone());
            let reply = client.redeem_code(&code, verifier.as_deref()).await?;
            state.remember_token_answer(&reply);
            reply
        }
        Call::Refresh { refresh_token } => {
            let token = refresh_token
                .or_else(|| state.refresh_token.clone())
                .context("no refresh token: pass --refresh-token or run token first")?;
            let reply = client.refresh(&token).await?;
            state.remember_token_answer(&reply);
            reply
        }
        Call::Provision { service_id, project_id, payment_token, project_name } => {
            let mut body = json!({});
            if let Some(service) = service_id {
                body["service_id"] = json!(service);
            }
            if let Some(project) = project_id {
                body["project_id"] = json!(project);
            }
            if let Some(name) = project_name {
                body["configuration"] = json!({"project_name": name});
            }
            if let Some(token) = payment_token {
                body["payment_credentials"] =
                    json!({"type": "stripe_payment_token", "stripe_payment_token": token});
            }
            let reply = client.provision(&body, &access_token(state)?).await?;
            remember_resource(state, &reply);
            reply
        }
        Call::Get { id } => {
            client.get_resource(&resource(state, id)?, &access_token(state)?).await?
        }
        Call::UpdateService { id, service_id, payment_token } => {
            let mut body = json!({"service_id": service_id});
            if let Some(token) = payment_token {
                body["payment_credentials"] =
                    json!({"type": "stripe_payment_token", "stripe_payment_token": token});
            }
            client
                .resource_action(
                    &resource(state, id)?,
                    "update_service",
                    &body,
                    &access_token(state)?,
                )
                .await?
        }
        Call::Rotate { id } => {
            client
                .resource_action(
                    &resource(state, id)?,
                    "rotate_credentials",
                    &json!({}),
                    &access_token(state)?,
                )
                .await?
        }
        Call::Remove { id } => {
            client
                .resource_action(&resource(state, id)?, "remove", &json!({}), &access_token(state)?)
                .await?
        }
        Call::DeepLink { purpose, resource_id } => {
            let mut body = json!({"purpose": purpose});
            if let Some(id) = resource_id {
                body["resource_id"] = json!(id);
            }
            client.deep_link(&body, &access_token(state)?).await?
        }
        Call::Health | Call::Services | Call::Flow(_) => anyhow::bail!("not a stateful call"),
    })
}

fn access_token(state: &State) -> anyhow::Result<String> {
    state.access_token.clone().context("no access token: run `token` (or `flow`) first")
}

/// The resource named, or the last one provisioned.
fn resource(state: &State, id: Option<String>) -> anyhow::Result<String> {
    id.or_else(|| state.resource_ids.last().cloned())
        .context("no resource: pass its id or run `provision` first")
}

fn remember_resource(state: &mut State, reply: &Reply) {
    if let Some(id) =
        reply.json.as_ref().and_then(|b| b["id"].as_str()).filter(|_| reply.is_success())
    {
        state.resource_ids.retain(|known| known != id);
        state.resource_ids.push(id.to_string());
    }
}

fn client(target: &Target) -> anyhow::Result<Client> {
    let mut config = ClientConfig::new(&target.base_url, target.signing_secret.clone());
    config.api_version = Some(target.api_version.clone()).filter(|v| !v.is_empty());
    config.path_prefix = target.path_prefix.clone();
    config.token_url = target.token_url.clone();
    Ok(Client::new(config)?)
}

/// Sends the account request; with `--callback-listen`, a `requires_auth` answer is followed
/// through the browser to tokens.
async fn account_request(
    client: &Client,
    state: &mut State,
    args: &AccountRequestArgs,
) -> anyhow::Result<Outcome> {
    let id = args.id.clone().unwrap_or_else(|| format!("ar_cli_{}", client::unix_now_nanos()));
    let mut body = client::account_request_body(&id, &args.email, &args.stripe_account);
    if let Some(name) = &args.name {
        body["name"] = json!(name);
    }
    let mut configuration = serde_json::Map::new();
    if let Some(team) = &args.team_id {
        // Send digits as a JSON integer, anything else as given, so the provider's check is exercised.
        configuration.insert(
            "team_id".into(),
            team.parse::<i64>().map_or_else(|_| json!(team), |n| json!(n)),
        );
    }
    if let Some(org) = &args.organization_name {
        configuration.insert("organization_name".into(), json!(org));
    }
    if !configuration.is_empty() {
        body["configuration"] = Value::Object(configuration);
    }
    let verifier = if args.pkce {
        let (verifier, challenge) =
            pkce::pair().map_err(|e| anyhow::anyhow!("random generator failed: {e}"))?;
        body["code_challenge"] = json!(challenge);
        body["code_challenge_method"] = json!("S256");
        Some(verifier)
    } else {
        None
    };
    let Some(listen) = &args.callback_listen else {
        let reply = client.account_request(&body).await?;
        state.remember_account_answer(&reply, verifier);
        return Ok(Outcome::Answered(reply));
    };
    // Listening before the request is sent: the browser can never arrive at a closed port.
    let callback = Callback::listen(listen).await?;
    let timeout = Duration::from_secs(args.callback_timeout);
    let open = |url: &str| eprintln!("Open this URL in your browser to continue: {url}");
    Ok(callback::account_request(client, state, body, verifier, callback, timeout, open).await?)
}

/// health → services → account request → token → provision → get → rotate → deep link; stops at
/// the first failing step.
async fn flow(
    client: &Client,
    state: &mut State,
    args: &AccountRequestArgs,
    target: &Target,
) -> anyhow::Result<ExitCode> {
    let mut steps = Vec::new();
    let mut step = |name: &str, reply: &Reply| {
        if target.json {
            steps.push(json!({"step": name, "status": reply.status, "body": reply.json}));
        } else {
            println!("== {name}");
            print(reply, false);
        }
        reply.is_success()
    };
    let mut ok =
        step("health", &client.health().await?) && step("services", &client.services().await?);
    if ok {
        ok = match account_request(client, state, args).await? {
            Outcome::Answered(reply) => step("account_request", &reply),
            Outcome::Exchanged { requested, token } => {
                step("account_request", &requested) && step("token", &token)
            }
        };
    }
    if let (true, Some(code)) = (ok, state.code.clone()) {
        let reply = client.redeem_code(&code, state.code_verifier.clone().as_deref()).await?;
        state.remember_token_answer(&reply);
        ok = step("token", &reply);
    }
    if let (true, Some(access)) = (ok, state.access_token.clone()) {
        let reply = client.provision(&json!({}), &access).await?;
        remember_resource(state, &reply);
        ok = step("provision", &reply);
        if let (true, Some(id)) = (ok, state.resource_ids.last().cloned()) {
            ok = step("get", &client.get_resource(&id, &access).await?)
                && step(
                    "rotate",
                    &client.resource_action(&id, "rotate_credentials", &json!({}), &access).await?,
                )
                && step(
                    "deep_link",
                    &client
                        .deep_link(&json!({"purpose": "dashboard", "resource_id": id}), &access)
                        .await?,
                );
        }
    }
    state.save(&target.state_file)?;
    if target.json {
        println!("{}", Value::Array(steps));
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Prints the answer and turns its status into the exit code (non-2xx → 1).
fn print(reply: &Reply, json_only: bool) -> ExitCode {
    if json_only {
        let body = reply
            .json
            .as_ref()
            .map_or_else(|| String::from_utf8_lossy(&reply.raw).into_owned(), Value::to_string);
        println!("{body}");
    } else {
        println!("HTTP {}", reply.status);
        println!("{}", reply.pretty());
    }
    if reply.is_success() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

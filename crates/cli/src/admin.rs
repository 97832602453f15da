//! `provisio admin …`: operator tasks on the store.

use std::{path::PathBuf, process::ExitCode};

use clap::{Args, Subcommand};
use provisio_server::{
    admin::{accounts as admin_accounts, seed},
    clock::Clock,
    config::DatabaseArgs,
    domain::accounts as accounts_domain,
    signing_secrets,
    store::{StoreError, accounts, audit, events},
};

#[derive(Args)]
pub struct AdminArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Bulk-load users, each with an organization and projects (for benchmarks).
    Seed {
        /// How many users to create.
        #[arg(long)]
        users: usize,
        /// Projects per user.
        #[arg(long, default_value_t = 1)]
        projects: usize,
        /// Write the seeded emails and team ids here (JSON), for `provisio bench --users-file`.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// List users (JSON lines), newest first.
    Users {
        /// Only emails containing this.
        #[arg(long, default_value = "")]
        email: String,
        /// At most this many users.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Show a user (id or email): organizations, projects, resources, live token families (JSON).
    User {
        /// The user's id or email.
        who: String,
    },
    /// Add a demo project to an organization (never linked to, never offered as a team).
    DemoProject {
        /// The organization's id.
        #[arg(long)]
        organization: String,
        /// The project's name.
        #[arg(long, default_value = "Demo project")]
        name: String,
    },
    /// Revoke every live token of a user (id or email); the orchestrator must link again.
    RevokeTokens {
        /// The user's id or email.
        who: String,
    },
    /// Erase a user (GDPR; built-in mode): revoke everything, remove the address and names, keep
    /// the audit under a pseudonym. Prints the pseudonym; by id it can be run again.
    #[command(override_usage = "provisio admin erase-user <ID|EMAIL>")]
    EraseUser {
        /// The user's id or email.
        who: String,
    },
    /// Manage orchestrator signing secrets kept in the database (valid beside the configured ones).
    #[command(subcommand)]
    SigningSecret(SigningSecretTask),
    /// Print the audit log as JSON lines, oldest first.
    Audit {
        /// Only events at or after this time: Unix seconds or RFC 3339.
        #[arg(long)]
        since: Option<String>,
        /// Only events of this user: a user id or an email.
        #[arg(long)]
        user: Option<String>,
        /// At most this many events.
        #[arg(long, default_value_t = 1000)]
        limit: i64,
    },
    /// The events outbox (what provisio tells the SaaS): list events, make failed ones due again.
    #[command(subcommand)]
    Events(EventsTask),
}

/// The operator's view of the events outbox. An event is `pending` until delivered, `delivered`, or
/// `failed` once it is older than `[events] max_age_hours` and still not delivered.
#[derive(Subcommand)]
enum EventsTask {
    /// Print events as JSON lines, newest first, with `data` as an object (an `email` in it masked,
    /// e.g. `a***@example.com`); the count of each state goes to stderr.
    List {
        /// Only the failed events (given up on).
        #[arg(long)]
        failed: bool,
        /// At most this many events.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..))]
        limit: i64,
    },
    /// Make one event, or every failed event, due now (attempts start again from zero); prints how
    /// many were made due. A delivered event is never sent again.
    #[command(override_usage = "provisio admin events retry <ID|--failed>")]
    Retry {
        /// The event's id (`evt_…`).
        #[arg(required_unless_present = "failed", conflicts_with = "failed")]
        id: Option<String>,
        /// Every failed event.
        #[arg(long)]
        failed: bool,
    },
}

/// Rotating a secret: `add` the new one, give it to the orchestrator, `retire` the old one with an
/// overlap window. Every server instance picks changes up within its refresh interval.
#[derive(Subcommand)]
enum SigningSecretTask {
    /// Add a secret (generated unless given) and print it, the only time it is shown.
    Add {
        /// The orchestrator it signs for, as configured (the zero-config server's is `stripe`).
        #[arg(long)]
        orchestrator: String,
        /// The secret to add; without it one is generated.
        #[arg(long)]
        secret: Option<String>,
        /// A note for `list`, e.g. who has it.
        #[arg(long)]
        label: Option<String>,
    },
    /// List the stored secrets as JSON lines (hint, created, retiring; never the secret).
    List {
        /// Only this orchestrator's.
        #[arg(long)]
        orchestrator: Option<String>,
    },
    /// Retire a secret, at once or after an overlap window during which it stays valid.
    Retire {
        /// The secret's id, as `list` prints it.
        #[arg(long)]
        id: i64,
        /// How long it stays valid: e.g. 90s, 15m, 24h, 7d (default: retire now).
        #[arg(long, default_value = "0", value_parser = signing_secrets::parse_duration)]
        after: i64,
    },
}

pub async fn run(args: AdminArgs) -> anyhow::Result<ExitCode> {
    // An existing database only: run in the wrong folder, an admin command says where it looked
    // instead of creating an empty database there.
    let store = args.database.open_existing().await?;
    match args.task {
        Task::Seed { users, projects, out } => {
            let run =
                format!("{:x}", provisio_orchestrator::client::unix_now_nanos() % 0xffff_ffff);
            let started = std::time::Instant::now();
            let seeded = seed::seed(&store, &run, users, projects, Clock::system().now()).await?;
            eprintln!(
                "seeded {} users with {projects} project(s) each in {:.1} s",
                seeded.len(),
                started.elapsed().as_secs_f64()
            );
            if let Some(path) = out {
                std::fs::write(&path, serde_json::to_vec(&seeded)?)?;
                eprintln!("wrote {}", path.display());
            }
        }
        Task::Users { email, limit } => {
            for user in admin_accounts::list_users(&store, &email, limit).await? {
                println!("{}", serde_json::to_string(&user)?);
            }
        }
        Task::User { who } => match admin_accounts::show_user(&store, &who).await? {
            Some(view) => println!("{}", serde_json::to_string_pretty(&view)?),
            None => {
                eprintln!("no such user: {who}");
                return Ok(ExitCode::FAILURE);
            }
        },
        Task::DemoProject { organization, name } => {
            let id = admin_accounts::create_demo_project(
                &store,
                &organization,
                &name,
                Clock::system().now(),
            )
            .await?;
            println!(
                "{}",
                serde_json::json!({"project_id": id, "organization_id": organization, "is_demo": true})
            );
        }
        Task::RevokeTokens { who } => {
            let revoked =
                admin_accounts::revoke_user_tokens(&store, &who, Clock::system().now()).await?;
            println!("{}", serde_json::json!({"user": who, "revoked_token_families": revoked}));
        }
        Task::EraseUser { who } => {
            match admin_accounts::erase_user(&store, &who, Clock::system().now()).await {
                Ok(erased) => println!("{}", serde_json::to_string(&erased)?),
                Err(e @ admin_accounts::AdminError::NotFound(_)) => {
                    eprintln!("{e}");
                    store.close().await?;
                    return Ok(ExitCode::FAILURE);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Task::SigningSecret(task) => return signing_secret(&store, task).await,
        Task::Events(task) => return events_task(&store, task).await,
        Task::Audit { since, user, limit } => {
            let since = match since.as_deref() {
                None => 0,
                Some(s) if s.bytes().all(|b| b.is_ascii_digit()) => s.parse()?,
                Some(s) => {
                    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)?
                        .unix_timestamp()
                }
            };
            let events = store
                .read(move |conn| -> Result<_, provisio_server::store::StoreError> {
                    let user_id = match user.clone() {
                        Some(u) if u.contains('@') => accounts::find_user_by_email(
                            conn,
                            &accounts_domain::normalize_email(&u),
                        )?
                        .unwrap_or_else(|| "-".into()),
                        other => other.unwrap_or_default(),
                    };
                    let filter = Some(user_id.as_str()).filter(|u| !u.is_empty());
                    audit::list(conn, since, filter, limit)
                })
                .await?;
            for event in events {
                println!("{}", serde_json::to_string(&event)?);
            }
        }
    }
    store.close().await?;
    Ok(ExitCode::SUCCESS)
}

async fn signing_secret(
    store: &provisio_server::store::Store,
    task: SigningSecretTask,
) -> anyhow::Result<ExitCode> {
    let now = Clock::system().now();
    match task {
        SigningSecretTask::Add { orchestrator, secret, label } => {
            let server_secret = provisio_server::serve::server_secret(store, now).await?;
            let added = signing_secrets::add(
                store,
                server_secret.as_bytes(),
                &orchestrator,
                secret,
                label,
                now,
            )
            .await?;
            let mut shown = serde_json::to_value(&added.info)?;
            shown["secret"] = added.secret.into();
            println!("{shown}");
            eprintln!(
                "signing secret {} added for {}: valid on every server within seconds; it is not shown again",
                added.info.id, added.info.orchestrator
            );
        }
        SigningSecretTask::List { orchestrator } => {
            for info in signing_secrets::list(store, orchestrator).await? {
                let mut shown = serde_json::to_value(&info)?;
                shown["status"] = info.status(now).into();
                println!("{shown}");
            }
        }
        SigningSecretTask::Retire { id, after } => {
            match signing_secrets::retire(store, id, after, now).await {
                Ok(info) => {
                    let mut shown = serde_json::to_value(&info)?;
                    shown["status"] = info.status(now).into();
                    println!("{shown}");
                }
                Err(
                    e @ (signing_secrets::SigningSecretError::NotFound(_)
                    | signing_secrets::SigningSecretError::AlreadyRetired(_)),
                ) => {
                    eprintln!("{e}");
                    store.close().await?;
                    return Ok(ExitCode::FAILURE);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    store.close().await?;
    Ok(ExitCode::SUCCESS)
}

async fn events_task(
    store: &provisio_server::store::Store,
    task: EventsTask,
) -> anyhow::Result<ExitCode> {
    let code = match task {
        EventsTask::List { failed, limit } => {
            let (listed, counts) = store
                .read(move |conn| -> Result<_, StoreError> {
                    Ok((events::list(conn, failed, limit)?, events::counts(conn)?))
                })
                .await?;
            for event in listed {
                println!("{}", serde_json::to_string(&shown_event(event))?);
            }
            let counts: Vec<String> =
                counts.iter().map(|(state, n)| format!("{n} {state}")).collect();
            eprintln!(
                "events: {}",
                if counts.is_empty() { "none".to_string() } else { counts.join(", ") }
            );
            ExitCode::SUCCESS
        }
        EventsTask::Retry { id, failed: _ } => {
            let now_ms = Clock::system().now_ms();
            let which = id.clone();
            let made_due =
                store.write(move |conn| events::retry(conn, which.as_deref(), now_ms)).await?;
            println!("{}", serde_json::json!({"made_due": made_due}));
            match id {
                Some(id) if made_due == 0 => {
                    eprintln!("no event {id} waiting for delivery: unknown, or already delivered");
                    ExitCode::FAILURE
                }
                _ => ExitCode::SUCCESS,
            }
        }
    };
    store.close().await?;
    Ok(code)
}

/// An event as `admin events list` prints it: `data` as an object, any `email` in it masked.
fn shown_event(event: events::OutboxEvent) -> serde_json::Value {
    let mut data = serde_json::from_str(&event.data)
        .unwrap_or_else(|_| serde_json::Value::String(event.data.clone()));
    mask_emails(&mut data);
    let mut shown = serde_json::to_value(&event).unwrap_or_default();
    shown["data"] = data;
    shown
}

/// `email`, or a name ending in `_email`.
fn is_email_key(key: &str) -> bool {
    key == "email" || key.ends_with("_email")
}

/// Replaces every string under an `email` (or `…_email`) key, at any depth, with [`mask_email`]'s
/// form.
fn mask_emails(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(members) => {
            for (key, member) in members.iter_mut() {
                match member {
                    serde_json::Value::String(email) if is_email_key(key) => {
                        *email = mask_email(email);
                    }
                    other => mask_emails(other),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(mask_emails),
        _ => {}
    }
}

/// `ada@example.com` → `a***@example.com`: enough to tell users apart in a list, not the address.
fn mask_email(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_masked_at_any_depth() {
        assert_eq!(mask_email("ada@example.com"), "a***@example.com");
        assert_eq!(mask_email("Émile@exemple.fr"), "É***@exemple.fr");
        assert_eq!(mask_email("@example.com"), "***@example.com");
        assert_eq!(mask_email("not an email"), "***");
        let mut data = serde_json::json!({
            "email": "ada@example.com", "user_id": "usr_1",
            "nested": [{"previous_email": "bob@example.org"}], "emails": "kept@example.com"
        });
        mask_emails(&mut data);
        assert_eq!(
            data,
            serde_json::json!({
                "email": "a***@example.com", "user_id": "usr_1",
                "nested": [{"previous_email": "b***@example.org"}], "emails": "kept@example.com"
            })
        );
    }
}

//! The resource endpoints (spec 5.5–5.9): create, read, `update_service`, `rotate_credentials` and
//! `remove` on the happy path, judged against the shipped schemas; bearer failures; `project_id` as
//! the idempotency key; scoping to the token; what rotation and removal do; the errors an
//! orchestrator can provoke, each in the status envelope; `Idempotency-Key`.
//!
//! Where the spec allows more than one answer, the protocol checks accept each: a status error's
//! `id` on a resource path is that resource's id or `""` (spec 4), a bearer failure may carry any
//! code. provisio's own pick among them (the path's id, `unauthorized` and its words) is checked
//! apart, `[provisio]`.
//!
//! The services come from the provider's own catalog ([`Catalog`]). Requests one check repeats for
//! the same token differ in an unknown field ([`distinct`]), so a replay cache cannot answer them.

use serde_json::{Value, json};

use super::super::{
    expect::{Expect, summarize},
    fixtures::{
        Account, Catalog, Resource, access, code_for, complete, create_body, distinct, new_account,
        provision, redeem, refreshed, team_ids, with_configuration, with_resource,
    },
    report::{
        Scope::{Protocol, Provisio},
        Tag::Builtin,
    },
    runner::{Recorder, Verdict, judge},
    schemas::Schema,
    wire::{Ctx, RESOURCES, action, resource},
};
use crate::{Reply, client::unix_now};

/// The spec's words for a resource outside the token's scope (5.6).
const NOT_ACCESSIBLE: &str = "Resource not accessible with this token";
/// The spec's words for an action on a removed resource (5.7).
const REMOVED: &str = "Resource has been removed";
/// A service no catalog has, and the spec's words for it (5.5).
const UNKNOWN_SERVICE: &str = "conformance_no_such_service";
const UNKNOWN_SERVICE_MESSAGE: &str = "Unknown service_id: conformance_no_such_service";
/// A well-formed resource id that this run's tokens never reach.
const UNKNOWN_ID: &str = "987654321987";
/// Not a token any provider issued.
const WRONG_BEARER: &str = "conformance-not-a-token";

type Known = Result<Catalog, String>;

/// An `update_service` body (`null`: malformed JSON) and the service to provision first (`None`:
/// the catalog's subject); `None` when the catalog offers no such case.
type UpdateCase = fn(&Catalog) -> Option<(Value, Option<&str>)>;

pub async fn run(cx: &Ctx, rec: &mut Recorder<'_>) {
    let catalog = Catalog::fetch(cx).await;
    happy_path(cx, &catalog, rec).await;
    bearer(cx, &catalog, rec).await;
    project_id(cx, &catalog, rec).await;
    scoping(cx, &catalog, rec).await;
    rotation(cx, &catalog, rec).await;
    removal(cx, &catalog, rec).await;
    errors(cx, &catalog, rec).await;
    idempotency_key(cx, &catalog, rec).await;
}

/// The catalog, or why the check cannot run.
fn ready(catalog: &Known) -> Result<&Catalog, String> {
    catalog.as_ref().map_err(Clone::clone)
}

fn complete_answer() -> Expect {
    Expect::schema(200, Schema::ResourceComplete)
}

fn removed_answer() -> Expect {
    Expect::schema(200, Schema::ResourceRemoved)
}

/// `expect`, and the answer names the resource `id`.
fn about(expect: Expect, id: &str) -> Expect {
    expect.field("/id", id)
}

fn with_created_id(expect: &Expect) -> String {
    format!("{}, /id = the created resource's id", expect.describe())
}

/// `update_service` to `service`.
fn update_body(service: &str) -> Value {
    json!({"service_id": service})
}

/// The `access_configuration` of a reply (`null` when there is none).
fn reply_access(reply: &Reply) -> Value {
    reply.json.as_ref().map(|j| access(j).clone()).unwrap_or_default()
}

/// Every value `read` shows is the one `answer` gave for that key.
fn shows_values_of(read: &Value, answer: &Value) -> bool {
    read.as_object().is_some_and(|values| {
        !values.is_empty() && values.iter().all(|(key, value)| answer.get(key) == Some(value))
    })
}

async fn happy_path(cx: &Ctx, catalog: &Known, rec: &mut Recorder<'_>) {
    rec.expect("create", Protocol, complete_answer(), async {
        let catalog = ready(catalog)?;
        let account = new_account(cx).await?;
        let body = create_body(cx, catalog.subject());
        cx.post(RESOURCES, &body).bearer(account.access_token()).send().await
    })
    .await;
    // Spec 5.5: without `service_id` the catalog's default deployable.
    rec.expect("create_default_service", Protocol, complete_answer(), async {
        let account = new_account(cx).await?;
        let body = json!({"project_id": cx.project_key()});
        cx.post(RESOURCES, &body).bearer(account.access_token()).send().await
    })
    .await;
    rec.check("get", Protocol, with_created_id(&complete_answer()), async {
        let (account, created) = with_resource(cx, ready(catalog)?.subject()).await?;
        let reply = cx.get(&resource(&created.id)).bearer(account.access_token()).send().await?;
        about(complete_answer(), &created.id).verify(&cx.schemas, &reply)
    })
    .await;
    rec.check_tagged(
        "get_public_values_only",
        Provisio,
        &[Builtin],
        "the read shows api_key and host as created, and no personal_api_key",
        async {
            let (account, created) = with_resource(cx, ready(catalog)?.subject()).await?;
            let reply =
                cx.get(&resource(&created.id)).bearer(account.access_token()).send().await?;
            public_values_only(&reply, created.access())
        },
    )
    .await;
    rec.check("update_service", Protocol, with_created_id(&complete_answer()), async {
        let catalog = ready(catalog)?;
        let (account, created) = with_resource(cx, catalog.subject()).await?;
        let body = update_body(catalog.update_target());
        let reply = cx
            .post(&action(&created.id, "update_service"), &body)
            .bearer(account.access_token())
            .send()
            .await?;
        about(complete_answer(), &created.id).verify(&cx.schemas, &reply)
    })
    .await;
    rec.check_tagged(
        "update_service_public_values_only",
        Provisio,
        &[Builtin],
        "the update answers api_key and host as created, and no personal_api_key",
        async {
            let catalog = ready(catalog)?;
            let (account, created) = with_resource(cx, catalog.subject()).await?;
            let body = update_body(catalog.update_target());
            let reply = cx
                .post(&action(&created.id, "update_service"), &body)
                .bearer(account.access_token())
                .send()
                .await?;
            public_values_only(&reply, created.access())
        },
    )
    .await;
    // decisions.md: updating to the current service is allowed.
    rec.check("update_service_to_current", Provisio, with_created_id(&complete_answer()), async {
        let subject = ready(catalog)?.subject();
        let (account, created) = with_resource(cx, subject).await?;
        let reply = cx
            .post(&action(&created.id, "update_service"), &update_body(subject))
            .bearer(account.access_token())
            .send()
            .await?;
        about(complete_answer(), &created.id).verify(&cx.schemas, &reply)
    })
    .await;
    rec.check("rotate_credentials", Protocol, with_created_id(&complete_answer()), async {
        let (account, created) = with_resource(cx, ready(catalog)?.subject()).await?;
        let reply = cx
            .post(&action(&created.id, "rotate_credentials"), &json!({}))
            .bearer(account.access_token())
            .send()
            .await?;
        about(complete_answer(), &created.id).verify(&cx.schemas, &reply)
    })
    .await;
    rec.check("remove", Protocol, with_created_id(&removed_answer()), async {
        let (account, created) = with_resource(cx, ready(catalog)?.subject()).await?;
        let reply = cx
            .post(&action(&created.id, "remove"), &json!({}))
            .bearer(account.access_token())
            .send()
            .await?;
        about(removed_answer(), &created.id).verify(&cx.schemas, &reply)
    })
    .await;
}

/// A read or update answer: complete, `api_key` and `host` as `created` gave them, no
/// `personal_api_key` (provisio's analytics backend; spec 5.6, 5.7).
fn public_values_only(reply: &Reply, created: &Value) -> Verdict {
    let got = summarize(reply);
    let values = reply_access(reply);
    if reply.status != 200 || !values.is_object() {
        return Err(format!("{got} — not a complete answer"));
    }
    if values.get("personal_api_key").is_some() {
        return Err(format!("{got} — shows personal_api_key"));
    }
    for key in ["api_key", "host"] {
        if values.get(key).is_none() || values.get(key) != created.get(key) {
            return Err(format!("{got} — {key} is not the created one"));
        }
    }
    Ok(got)
}

/// Bearer failures (spec 2, 3.4, 4): 401 in the status envelope. The spec names no code for them,
/// and the envelope's `id` is `"<resource id or \"\">"`: on a path that names a resource, its id or
/// `""`; on create, which names none, `""`. provisio's own choices — the code `unauthorized`, its
/// words, the path's id — are checked apart, `[provisio]`.
async fn bearer(cx: &Ctx, catalog: &Known, rec: &mut Recorder<'_>) {
    let refused = Expect::bearer_refused;
    let refused_on = |id: &str| Expect::bearer_refused().naming(id);

    rec.expect("create_missing_bearer", Protocol, refused(), async {
        cx.post(RESOURCES, &create_body(cx, ready(catalog)?.subject())).send().await
    })
    .await;
    let described = refused_on("").describe_with_id("the resource's id");
    for (name, path) in [
        ("get_missing_bearer", None),
        ("update_missing_bearer", Some("update_service")),
        ("rotate_missing_bearer", Some("rotate_credentials")),
        ("remove_missing_bearer", Some("remove")),
    ] {
        rec.check(name, Protocol, described.clone(), async {
            let catalog = ready(catalog)?;
            let (_, created) = with_resource(cx, catalog.subject()).await?;
            let reply = match path {
                None => cx.get(&resource(&created.id)).send().await?,
                Some(name) => {
                    let body = update_body(catalog.update_target());
                    cx.post(&action(&created.id, name), &body).send().await?
                }
            };
            refused_on(&created.id).verify(&cx.schemas, &reply)
        })
        .await;
    }
    rec.expect("create_wrong_bearer", Protocol, refused(), async {
        let body = create_body(cx, ready(catalog)?.subject());
        cx.post(RESOURCES, &body).bearer(WRONG_BEARER).send().await
    })
    .await;
    rec.check("get_wrong_bearer", Protocol, described.clone(), async {
        let (_, created) = with_resource(cx, ready(catalog)?.subject()).await?;
        let reply = cx.get(&resource(&created.id)).bearer(WRONG_BEARER).send().await?;
        refused_on(&created.id).verify(&cx.schemas, &reply)
    })
    .await;
    rec.expect("create_basic_scheme", Protocol, refused(), async {
        let catalog = ready(catalog)?;
        let account = new_account(cx).await?;
        let basic = format!("Basic {}", account.access_token());
        cx.post(RESOURCES, &create_body(cx, catalog.subject()))
            .header("Authorization", &basic)
            .send()
            .await
    })
    .await;
    // Spec 5.4: a refresh invalidates the old access token immediately.
    rec.expect("create_revoked_bearer", Protocol, refused(), async {
        let catalog = ready(catalog)?;
        let account = new_account(cx).await?;
        refreshed(cx, &account).await?;
        let body = create_body(cx, catalog.subject());
        cx.post(RESOURCES, &body).bearer(account.access_token()).send().await
    })
    .await;
    // Spec 2: a bearer token alone is never enough; the signature is still required.
    rec.check(
        "bearer_alone_refused",
        Protocol,
        format!("{} (a valid bearer, unsigned)", Expect::invalid_signature().describe()),
        async {
            let (account, created) = with_resource(cx, ready(catalog)?.subject()).await?;
            let reply =
                cx.get(&resource(&created.id)).bearer(account.access_token()).unsigned().send();
            Expect::invalid_signature().verify(&cx.schemas, &reply.await?)
        },
    )
    .await;
    rec.check("get_revoked_bearer", Protocol, described, async {
        let (account, created) = with_resource(cx, ready(catalog)?.subject()).await?;
        refreshed(cx, &account).await?;
        let reply = cx.get(&resource(&created.id)).bearer(account.access_token()).send().await?;
        refused_on(&created.id).verify(&cx.schemas, &reply)
    })
    .await;
    rec.check(
        "refreshed_bearer_keeps_resources",
        Protocol,
        format!("{} (with the refreshed access token)", with_created_id(&complete_answer())),
        async {
            let (account, created) = with_resource(cx, ready(catalog)?.subject()).await?;
            let fresh = refreshed(cx, &account).await?;
            let token = fresh["access_token"].as_str().unwrap_or_default();
            let reply = cx.get(&resource(&created.id)).bearer(token).send().await?;
            about(complete_answer(), &created.id).verify(&cx.schemas, &reply)
        },
    )
    .await;
    // decisions.md: provisio's code and words for the two kinds of bearer failure.
    let unauthorized = || Expect::status_error(401, "unauthorized");
    rec.expect(
        "missing_bearer_message",
        Provisio,
        unauthorized().message("Missing bearer token"),
        async { cx.post(RESOURCES, &create_body(cx, ready(catalog)?.subject())).send().await },
    )
    .await;
    rec.expect(
        "invalid_bearer_message",
        Provisio,
        unauthorized().message("Invalid or expired access token"),
        async {
            let body = create_body(cx, ready(catalog)?.subject());
            cx.post(RESOURCES, &body).bearer(WRONG_BEARER).send().await
        },
    )
    .await;
    // provisio's choice among the `id`s spec 4 allows: the path's resource, not `""`.
    let named = |id: &str| unauthorized().naming(id).exact_id();
    rec.check(
        "bearer_failure_names_resource",
        Provisio,
        named("").describe_with_id("the resource's id"),
        async {
            let (_, created) = with_resource(cx, ready(catalog)?.subject()).await?;
            let reply = cx.get(&resource(&created.id)).send().await?;
            named(&created.id).verify(&cx.schemas, &reply)
        },
    )
    .await;
}

/// `project_id` is the idempotency key of a create (spec 5.5).
async fn project_id(cx: &Ctx, catalog: &Known, rec: &mut Recorder<'_>) {
    rec.check(
        "project_id_idempotent",
        Protocol,
        "the same project_id twice: the same resource id",
        async {
            let account = new_account(cx).await?;
            let (first, second) =
                twice(cx, &account, &create_body(cx, ready(catalog)?.subject())).await?;
            let got = format!("ids {:?} and {:?}", first.id, second.id);
            judge(first.id == second.id, got)
        },
    )
    .await;
    rec.check_tagged(
        "project_id_fresh_personal_key",
        Provisio,
        &[Builtin],
        "the same project_id twice: the same api_key, a new personal_api_key",
        async {
            let account = new_account(cx).await?;
            let (first, second) =
                twice(cx, &account, &create_body(cx, ready(catalog)?.subject())).await?;
            let (a, b) = (first.access(), second.access());
            let got = format!("{a} then {b}");
            let fresh =
                b["personal_api_key"].is_string() && a["personal_api_key"] != b["personal_api_key"];
            judge(first.id == second.id && a["api_key"] == b["api_key"] && fresh, got)
        },
    )
    .await;
    rec.check(
        "project_id_one_project",
        Provisio,
        "the same project_id twice adds one project to available_teams",
        async {
            let account = new_account(cx).await?;
            twice(cx, &account, &create_body(cx, ready(catalog)?.subject())).await?;
            // Linked again to the first project by `team_id` (without it, a user with two
            // projects gets a new one: spec 5.3).
            let configuration = json!({"team_id": account.first_team()?});
            let body = with_configuration(cx, &account.email, configuration);
            let teams = team_ids(&redeem(cx, &code_for(cx, &body).await?).await?);
            judge(teams.len() == 2, format!("available_teams ids {teams:?}"))
        },
    )
    .await;
    rec.check("project_id_distinct", Protocol, "two project_ids: two resources", async {
        let subject = ready(catalog)?.subject();
        let account = new_account(cx).await?;
        let first = provision(cx, account.access_token(), &create_body(cx, subject)).await?;
        let second = provision(cx, account.access_token(), &create_body(cx, subject)).await?;
        let got = format!("ids {:?} and {:?}", first.id, second.id);
        judge(first.id != second.id, got)
    })
    .await;
    // Spec 5.5 makes `project_id` the key of a resource, and 5.6 keeps a token to its own
    // resources; whether a key is scoped to the user's organization (a second user's create makes a
    // resource of its own) or to the orchestrator (it is refused) the spec does not say. Either way
    // the second user never gets the first one's resource.
    rec.check(
        "project_id_per_account",
        Protocol,
        "one project_id under two users: the second gets a resource of its own (200 complete, another id) or a 4xx status error (id \"\"), never the first's",
        async {
            let subject = ready(catalog)?.subject();
            let body = create_body(cx, subject);
            let (one, other) = (new_account(cx).await?, new_account(cx).await?);
            let first = provision(cx, one.access_token(), &body).await?;
            let reply =
                cx.post(RESOURCES, &distinct(cx, body)).bearer(other.access_token()).send().await?;
            let got = format!("first {:?}, then {}", first.id, summarize(&reply));
            let json = reply.json.clone().unwrap_or_default();
            let own = reply.status == 200
                && cx.schemas.validate(Schema::ResourceComplete, &json).is_ok()
                && json["id"] != first.id.as_str();
            // A create names no resource: the refusal's `id` is `""` (spec 4).
            let refused = (400..500).contains(&reply.status)
                && cx.schemas.validate(Schema::ErrorStatus, &json).is_ok()
                && json["id"] == "";
            judge(own || refused, got)
        },
    )
    .await;
    // decisions.md: `project_id` is scoped to the organization.
    rec.check(
        "project_id_per_account_new_resource",
        Provisio,
        "one project_id under two users: two resources",
        async {
            let subject = ready(catalog)?.subject();
            let body = create_body(cx, subject);
            let (one, other) = (new_account(cx).await?, new_account(cx).await?);
            let first = provision(cx, one.access_token(), &body).await?;
            let second = provision(cx, other.access_token(), &distinct(cx, body)).await?;
            let got = format!("ids {:?} and {:?}", first.id, second.id);
            judge(first.id != second.id, got)
        },
    )
    .await;
    rec.check(
        "no_project_id_idempotent",
        Protocol,
        "no project_id twice: the same resource id",
        async {
            let account = new_account(cx).await?;
            let body = json!({"service_id": ready(catalog)?.subject()});
            let (first, second) = twice(cx, &account, &body).await?;
            let got = format!("ids {:?} and {:?}", first.id, second.id);
            judge(first.id == second.id, got)
        },
    )
    .await;
    // Spec 4: an explicit null is the same as an absent field.
    rec.check(
        "null_project_id_is_absent",
        Protocol,
        "project_id null: the same resource as no project_id",
        async {
            let account = new_account(cx).await?;
            let body = json!({"service_id": ready(catalog)?.subject()});
            let first = provision(cx, account.access_token(), &body).await?;
            let mut null = distinct(cx, body);
            null["project_id"] = Value::Null;
            let second = provision(cx, account.access_token(), &null).await?;
            let got = format!("ids {:?} and {:?}", first.id, second.id);
            judge(first.id == second.id, got)
        },
    )
    .await;
    rec.check(
        "no_project_id_is_primary_project",
        Provisio,
        "no project_id: the resource is the linked project (id = available_teams[0].id)",
        async {
            let account = new_account(cx).await?;
            let body = json!({"service_id": ready(catalog)?.subject()});
            let created = provision(cx, account.access_token(), &body).await?;
            let team = account.first_team()?;
            judge(created.id == team.to_string(), format!("id {:?}, team {team}", created.id))
        },
    )
    .await;
}

/// Creates with `body`, then again with the same request in other bytes.
async fn twice(cx: &Ctx, account: &Account, body: &Value) -> Result<(Resource, Resource), String> {
    let first = provision(cx, account.access_token(), body).await?;
    let second = provision(cx, account.access_token(), &distinct(cx, body.clone())).await?;
    Ok((first, second))
}

/// A second user's token reaches nothing of the first's (spec 5.6): 403 `forbidden` on every call,
/// and the resource is as it was.
async fn scoping(cx: &Ctx, catalog: &Known, rec: &mut Recorder<'_>) {
    let forbidden =
        |id: &str| Expect::status_error(403, "forbidden").message(NOT_ACCESSIBLE).naming(id);
    let described = forbidden("").describe_with_id("the other user's resource's id");
    for (name, path) in [
        ("foreign_get", None),
        ("foreign_update", Some("update_service")),
        ("foreign_rotate", Some("rotate_credentials")),
        ("foreign_remove", Some("remove")),
    ] {
        rec.check(name, Protocol, described.clone(), async {
            let catalog = ready(catalog)?;
            let (_, created) = with_resource(cx, catalog.subject()).await?;
            let intruder = new_account(cx).await?;
            let reply = foreign_call(cx, catalog, &intruder, &created.id, path).await?;
            forbidden(&created.id).verify(&cx.schemas, &reply)
        })
        .await;
    }
    rec.check(
        "foreign_calls_change_nothing",
        Protocol,
        "after another user's update, rotate and remove: the owner reads it complete, as created",
        async {
            let catalog = ready(catalog)?;
            let (owner, created) = with_resource(cx, catalog.subject()).await?;
            let intruder = new_account(cx).await?;
            for path in ["update_service", "rotate_credentials", "remove"] {
                foreign_call(cx, catalog, &intruder, &created.id, Some(path)).await?;
            }
            let reply = cx.get(&resource(&created.id)).bearer(owner.access_token()).send().await?;
            let got = summarize(&reply);
            let same = reply.status == 200
                && reply.json.as_ref().is_some_and(|j| j["status"] == "complete")
                && shows_values_of(&reply_access(&reply), created.access());
            judge(same, got)
        },
    )
    .await;
}

/// `intruder` calls `path` (`None`: the read) on another user's resource `id`.
async fn foreign_call(
    cx: &Ctx,
    catalog: &Catalog,
    intruder: &Account,
    id: &str,
    path: Option<&str>,
) -> Result<Reply, String> {
    match path {
        None => cx.get(&resource(id)).bearer(intruder.access_token()).send().await,
        Some(name) => {
            let body = distinct(cx, update_body(catalog.update_target()));
            cx.post(&action(id, name), &body).bearer(intruder.access_token()).send().await
        }
    }
}

/// `rotate_credentials` (spec 5.8): new credentials, and the old ones are no longer the
/// resource's. The protocol gives an orchestrator no call that uses a credential, so what it can
/// observe is the answers and the read.
async fn rotation(cx: &Ctx, catalog: &Known, rec: &mut Recorder<'_>) {
    let rotate = |account: &Account, id: &str| {
        let (token, path) = (account.access_token().to_string(), action(id, "rotate_credentials"));
        async move { complete(cx, &path, &distinct(cx, json!({})), &token).await }
    };

    rec.check(
        "rotate_new_credentials",
        Protocol,
        "the rotated access_configuration is not the created one",
        async {
            let (account, created) = with_resource(cx, ready(catalog)?.subject()).await?;
            let rotated = rotate(&account, &created.id).await?;
            let got = format!("{} then {}", created.access(), rotated.access());
            judge(rotated.access() != created.access(), got)
        },
    )
    .await;
    rec.check_tagged(
        "rotate_new_keys",
        Provisio,
        &[Builtin],
        "rotation: a new api_key and a new personal_api_key, the same host",
        async {
            let (account, created) = with_resource(cx, ready(catalog)?.subject()).await?;
            let rotated = rotate(&account, &created.id).await?;
            let (old, new) = (created.access(), rotated.access());
            let changed = |key: &str| new[key].is_string() && new[key] != old[key];
            let got = format!("{old} then {new}");
            judge(
                changed("api_key") && changed("personal_api_key") && new["host"] == old["host"],
                got,
            )
        },
    )
    .await;
    rec.check(
        "rotate_read_shows_new_values",
        Protocol,
        "the read after a rotation shows the rotated values",
        async {
            let (account, created) = with_resource(cx, ready(catalog)?.subject()).await?;
            let rotated = rotate(&account, &created.id).await?;
            let reply =
                cx.get(&resource(&created.id)).bearer(account.access_token()).send().await?;
            let read = reply_access(&reply);
            let got = format!("read {read}, rotation answered {}", rotated.access());
            judge(reply.status == 200 && shows_values_of(&read, rotated.access()), got)
        },
    )
    .await;
    rec.check(
        "rotate_twice_differs",
        Protocol,
        "two rotations: two different access_configurations",
        async {
            let (account, created) = with_resource(cx, ready(catalog)?.subject()).await?;
            let first = rotate(&account, &created.id).await?;
            let second = rotate(&account, &created.id).await?;
            let got = format!("{} then {}", first.access(), second.access());
            judge(first.access() != second.access(), got)
        },
    )
    .await;
}

/// `remove` (spec 5.9, 5.5–5.7): the resource reads as removed, removing again is fine, updates and
/// rotations are refused, and a create with its `project_id` brings it back.
async fn removal(cx: &Ctx, catalog: &Known, rec: &mut Recorder<'_>) {
    let remove = |account: &Account, id: &str| {
        let (token, path) = (account.access_token().to_string(), action(id, "remove"));
        async move { cx.post(&path, &distinct(cx, json!({}))).bearer(&token).send().await }
    };
    let removed_first = || async {
        let (account, created) = with_resource(cx, ready(catalog)?.subject()).await?;
        let reply = remove(&account, &created.id).await?;
        if reply.status != 200 {
            return Err(format!("set-up failed: remove answered {}", summarize(&reply)));
        }
        Ok((account, created))
    };

    rec.check("read_after_remove", Protocol, with_created_id(&removed_answer()), async {
        let (account, created) = removed_first().await?;
        let reply = cx.get(&resource(&created.id)).bearer(account.access_token()).send().await?;
        about(removed_answer(), &created.id).verify(&cx.schemas, &reply)
    })
    .await;
    rec.check("remove_twice", Protocol, with_created_id(&removed_answer()), async {
        let (account, created) = removed_first().await?;
        let reply = remove(&account, &created.id).await?;
        about(removed_answer(), &created.id).verify(&cx.schemas, &reply)
    })
    .await;
    let invalid_state =
        |id: &str| Expect::status_error(409, "invalid_state").message(REMOVED).naming(id);
    let described = invalid_state("").describe_with_id("the resource's id");
    rec.check("update_after_remove", Protocol, described.clone(), async {
        let (account, created) = removed_first().await?;
        let body = update_body(ready(catalog)?.update_target());
        let reply = cx
            .post(&action(&created.id, "update_service"), &body)
            .bearer(account.access_token())
            .send()
            .await?;
        invalid_state(&created.id).verify(&cx.schemas, &reply)
    })
    .await;
    rec.check("rotate_after_remove", Protocol, described, async {
        let (account, created) = removed_first().await?;
        let reply = cx
            .post(&action(&created.id, "rotate_credentials"), &json!({}))
            .bearer(account.access_token())
            .send()
            .await?;
        invalid_state(&created.id).verify(&cx.schemas, &reply)
    })
    .await;
    // provisio's choice among the `id`s spec 4 allows: an error about a resource names it.
    let named = |id: &str| invalid_state(id).exact_id();
    rec.check(
        "error_names_resource",
        Provisio,
        named("").describe_with_id("the resource's id"),
        async {
            let (account, created) = removed_first().await?;
            let body = update_body(ready(catalog)?.update_target());
            let reply = cx
                .post(&action(&created.id, "update_service"), &body)
                .bearer(account.access_token())
                .send()
                .await?;
            named(&created.id).verify(&cx.schemas, &reply)
        },
    )
    .await;
    rec.check(
        "create_reactivates_removed",
        Protocol,
        "a create with a removed resource's project_id: the same id, complete, and read complete",
        async {
            let subject = ready(catalog)?.subject();
            let account = new_account(cx).await?;
            let body = create_body(cx, subject);
            let created = provision(cx, account.access_token(), &body).await?;
            let reply = remove(&account, &created.id).await?;
            if reply.status != 200 {
                return Err(format!("set-up failed: remove answered {}", summarize(&reply)));
            }
            let again = provision(cx, account.access_token(), &distinct(cx, body)).await?;
            let read = cx.get(&resource(&created.id)).bearer(account.access_token()).send().await?;
            let complete = read.json.as_ref().is_some_and(|j| j["status"] == "complete");
            let got =
                format!("ids {:?} then {:?}; read {}", created.id, again.id, summarize(&read));
            judge(again.id == created.id && complete, got)
        },
    )
    .await;
}

/// The errors of the resource endpoints an orchestrator can provoke. A create names no resource:
/// `id` is `""`; an error about the resource of the path carries its id or `""` (spec 4).
async fn errors(cx: &Ctx, catalog: &Known, rec: &mut Recorder<'_>) {
    let error = Expect::status_error;
    let on_resource = |expect: Expect| expect.naming("").describe_with_id("the resource's id");
    let not_applicable =
        |what: &str| -> Verdict { Ok(format!("not applicable: the catalog has no {what}")) };

    rec.expect(
        "unknown_service",
        Protocol,
        error(400, "unknown_service").message(UNKNOWN_SERVICE_MESSAGE),
        async {
            let account = new_account(cx).await?;
            let body = create_body(cx, UNKNOWN_SERVICE);
            cx.post(RESOURCES, &body).bearer(account.access_token()).send().await
        },
    )
    .await;
    // A configuration that breaks a declared property's type is `invalid_configuration` (spec 5.5).
    // When the schema declares no typed property, the check sends a configuration that is not an
    // object at all: a violation of the schema, or a malformed body (`invalid_request`, spec 4) —
    // the spec allows either reading.
    let invalid_configuration = error(400, "invalid_configuration");
    let not_an_object =
        invalid_configuration.clone().code_one_of(&["invalid_configuration", "invalid_request"]);
    let expected = format!(
        "{} (invalid_request too when the configuration sent is not an object)",
        invalid_configuration.describe()
    );
    rec.check("invalid_configuration", Protocol, expected, async {
        let Some((service, configuration)) = ready(catalog)?.invalid_configuration() else {
            return not_applicable("service with a configuration_schema");
        };
        let expect = if configuration.is_object() { invalid_configuration } else { not_an_object };
        let account = new_account(cx).await?;
        let mut body = create_body(cx, service);
        body["configuration"] = configuration;
        let reply = cx.post(RESOURCES, &body).bearer(account.access_token()).send().await?;
        expect.verify(&cx.schemas, &reply)
    })
    .await;
    let requires_payment = || error(400, "requires_payment_credentials");
    rec.check("create_requires_payment", Protocol, requires_payment().describe(), async {
        let Some(paid) = ready(catalog)?.paid() else { return not_applicable("paid service") };
        let account = new_account(cx).await?;
        let reply = cx
            .post(RESOURCES, &create_body(cx, paid))
            .bearer(account.access_token())
            .send()
            .await?;
        requires_payment().verify(&cx.schemas, &reply)
    })
    .await;
    rec.expect("malformed_json", Protocol, error(400, "invalid_request"), async {
        let account = new_account(cx).await?;
        cx.post(RESOURCES, &json!({}))
            .raw_body(&b"{\"service_id\": "[..])
            .bearer(account.access_token())
            .send()
            .await
    })
    .await;
    rec.expect("non_object_json", Protocol, error(400, "invalid_request"), async {
        let account = new_account(cx).await?;
        cx.post(RESOURCES, &json!(["conformance"])).bearer(account.access_token()).send().await
    })
    .await;

    // On an existing resource: `id` is the resource's or `""`. Spec 5.7 gives no words for
    // `unknown_service` on update (5.5 gives them on create): provisio's are checked apart.
    let cases: [(&str, _, Expect, UpdateCase); 6] = [
        ("update_malformed_json", Protocol, error(400, "invalid_request"), |_| {
            Some((Value::Null, None))
        }),
        ("update_missing_service_id", Protocol, error(400, "missing_service_id"), |_| {
            Some((json!({}), None))
        }),
        ("update_unknown_service", Protocol, error(400, "unknown_service"), |_| {
            Some((update_body(UNKNOWN_SERVICE), None))
        }),
        (
            "update_unknown_service_message",
            Provisio,
            error(400, "unknown_service").message(UNKNOWN_SERVICE_MESSAGE),
            |_| Some((update_body(UNKNOWN_SERVICE), None)),
        ),
        ("update_requires_payment", Protocol, requires_payment(), |catalog| {
            catalog.paid_update().map(|paid| (update_body(paid), None))
        }),
        ("update_not_allowed", Provisio, error(400, "update_not_allowed"), |catalog| {
            catalog.disallowed_update().map(|(from, to)| (update_body(to), Some(from)))
        }),
    ];
    for (name, scope, expect, case) in cases {
        rec.check(name, scope, on_resource(expect.clone()), async {
            let catalog = ready(catalog)?;
            let Some((body, from)) = case(catalog) else {
                return not_applicable("service for this case");
            };
            let (account, created) = with_resource(cx, from.unwrap_or(catalog.subject())).await?;
            let probe = cx.post(&action(&created.id, "update_service"), &body);
            let probe =
                if body.is_null() { probe.raw_body(&b"{\"service_id\": "[..]) } else { probe };
            let reply = probe.bearer(account.access_token()).send().await?;
            expect.naming(&created.id).verify(&cx.schemas, &reply)
        })
        .await;
    }
    // decisions.md: a payment token the billing backend refuses (`record` and `stripe` both refuse
    // one that does not start with `spt_`); with a connector, the SaaS bills and decides.
    let refused = error(400, "billing_activation_failed");
    let expected = on_resource(refused.clone());
    rec.check_tagged("update_payment_refused", Provisio, &[Builtin], expected, async {
        let catalog = ready(catalog)?;
        let Some(paid) = catalog.paid_update() else { return not_applicable("paid update") };
        let (account, created) = with_resource(cx, catalog.subject()).await?;
        let mut body = update_body(paid);
        body["payment_credentials"] = json!({
            "type": "stripe_payment_token",
            "stripe_payment_token": "tok_conformance_not_a_shared_payment_token"
        });
        let reply = cx
            .post(&action(&created.id, "update_service"), &body)
            .bearer(account.access_token())
            .send()
            .await?;
        refused.clone().naming(&created.id).verify(&cx.schemas, &reply)
    })
    .await;
    // decisions.md: a resource id is a project's decimal id.
    rec.expect(
        "invalid_resource_id",
        Provisio,
        error(400, "invalid_resource_id")
            .message("Invalid resource id: conformance-id")
            .naming("conformance-id"),
        async {
            let account = new_account(cx).await?;
            cx.get(&resource("conformance-id")).bearer(account.access_token()).send().await
        },
    )
    .await;
    // decisions.md: an id outside the token's scope is 403 also when it does not exist.
    rec.expect(
        "unknown_resource_forbidden",
        Provisio,
        error(403, "forbidden").message(NOT_ACCESSIBLE).naming(UNKNOWN_ID),
        async {
            let account = new_account(cx).await?;
            cx.get(&resource(UNKNOWN_ID)).bearer(account.access_token()).send().await
        },
    )
    .await;
    // decisions.md: the linked project is in the token's scope but not provisioned yet.
    let not_found = |id: &str| error(404, "not_found").naming(id);
    rec.check(
        "never_provisioned_not_found",
        Provisio,
        not_found("").describe_with_id("the linked project's id"),
        async {
            let account = new_account(cx).await?;
            let team = account.first_team()?.to_string();
            let reply = cx.get(&resource(&team)).bearer(account.access_token()).send().await?;
            not_found(&team).verify(&cx.schemas, &reply)
        },
    )
    .await;
}

/// `Idempotency-Key` on the resource POSTs (spec 5.5). The two requests carry different
/// `Stripe-Signature` timestamps, so it is the key, not a replay cache, that answers the second.
/// "The recorded response" is the same status and the same JSON: a provider may keep the body as
/// parsed JSON and write it again in other bytes (another key order, other spaces).
///
/// A create of the subject for a fresh account under an `Idempotency-Key` of its own.
struct KeyedCreate {
    account: Account,
    key: String,
    body: Value,
}

impl KeyedCreate {
    async fn new(cx: &Ctx, catalog: &Known) -> Result<Self, String> {
        let account = new_account(cx).await?;
        let key = format!("conformance-{}", cx.nonce());
        Ok(Self { account, key, body: json!({"service_id": ready(catalog)?.subject()}) })
    }

    /// The create, signed at `t`: another `t` is another request under the same key.
    async fn send(&self, cx: &Ctx, t: i64) -> Result<Reply, String> {
        cx.post(RESOURCES, &self.body)
            .bearer(self.account.access_token())
            .header("Idempotency-Key", &self.key)
            .signed_at(t)
            .send()
            .await
    }
}

/// The same answer: the same status and the same JSON body (the same bytes when not JSON).
fn same_answer(a: &Reply, b: &Reply) -> bool {
    a.status == b.status
        && match (&a.json, &b.json) {
            (Some(a), Some(b)) => a == b,
            _ => a.raw == b.raw,
        }
}

async fn idempotency_key(cx: &Ctx, catalog: &Known, rec: &mut Recorder<'_>) {
    rec.check(
        "idempotency_key_same_answer",
        Protocol,
        "the same Idempotency-Key and body twice: the recorded answer (the same status and JSON)",
        async {
            let create = KeyedCreate::new(cx, catalog).await?;
            let now = unix_now();
            let first = create.send(cx, now).await?;
            let second = create.send(cx, now - 1).await?;
            let got = format!("{} then {}", summarize(&first), summarize(&second));
            judge(first.status == 200 && same_answer(&first, &second), got)
        },
    )
    .await;
    rec.check(
        "idempotency_key_twins_in_flight",
        Protocol,
        "the same Idempotency-Key and body sent 4 times at once: it runs once (every 2xx answer the same status and JSON; a twin may answer 409 idempotency_conflict)",
        async {
            let create = KeyedCreate::new(cx, catalog).await?;
            let now = unix_now();
            let (a, b, c, d) = tokio::join!(
                create.send(cx, now),
                create.send(cx, now - 1),
                create.send(cx, now - 2),
                create.send(cx, now - 3)
            );
            let answers = [a?, b?, c?, d?];
            let ran: Vec<&Reply> = answers.iter().filter(|r| r.status == 200).collect();
            let conflict = |r: &Reply| {
                r.status == 409
                    && r.json.as_ref().is_some_and(|j| j["error"]["code"] == "idempotency_conflict")
            };
            let refused_rightly = answers.iter().filter(|r| r.status != 200).all(conflict);
            let got = answers.iter().map(summarize).collect::<Vec<_>>().join(" | ");
            judge(
                !ran.is_empty() && ran.iter().all(|r| same_answer(r, ran[0])) && refused_rightly,
                got,
            )
        },
    )
    .await;
    rec.check(
        "idempotency_key_replayed_header",
        Provisio,
        "the replayed answer says Idempotent-Replayed: true",
        async {
            let create = KeyedCreate::new(cx, catalog).await?;
            let now = unix_now();
            create.send(cx, now).await?;
            let reply = create.send(cx, now - 1).await?;
            let header = reply.headers.get("idempotent-replayed");
            let value = header.and_then(|v| v.to_str().ok()).unwrap_or("(none)");
            let got = format!("{} Idempotent-Replayed: {value}", reply.status);
            judge(reply.status == 200 && value == "true", got)
        },
    )
    .await;
    // The second body differs in a field the spec defines (a `project_id`), not only in an unknown
    // one: unknown fields are ignored (spec 4), so a provider may compare bodies without them.
    let conflict = |id: &str| Expect::status_error(409, "idempotency_conflict").naming(id);
    rec.check(
        "idempotency_key_conflict",
        Protocol,
        conflict("").describe_with_id("the first create's resource id"),
        async {
            let create = KeyedCreate::new(cx, catalog).await?;
            let first = create.send(cx, unix_now()).await?;
            let first_id = first.json.as_ref().and_then(|j| j["id"].as_str()).map(str::to_string);
            let Some(first_id) = first_id.filter(|_| first.status == 200) else {
                return Err(format!(
                    "set-up failed: the first create answered {}",
                    summarize(&first)
                ));
            };
            let mut other = create.body.clone();
            other["project_id"] = json!(cx.project_key());
            let reply = cx
                .post(RESOURCES, &other)
                .bearer(create.account.access_token())
                .header("Idempotency-Key", &create.key)
                .send()
                .await?;
            conflict(&first_id).verify(&cx.schemas, &reply)
        },
    )
    .await;
}

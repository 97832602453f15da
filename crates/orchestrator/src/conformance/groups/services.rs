//! `GET /provisioning/services` (spec 5.2): the catalog, its shape and its internal consistency.

use std::collections::HashSet;

use serde_json::Value;

use super::super::{
    expect::{Expect, summarize},
    report::Scope::Protocol,
    runner::Recorder,
    schemas::Schema,
    wire::{Ctx, SERVICES, json_content_type},
};

pub async fn run(cx: &Ctx, rec: &mut Recorder<'_>) {
    rec.expect("ok", Protocol, Expect::schema(200, Schema::Services), cx.get(SERVICES).send())
        .await;

    rec.check("json_content_type", Protocol, "Content-Type: application/json", async {
        json_content_type(&cx.get(SERVICES).send().await?)
    })
    .await;

    rec.check("not_empty", Protocol, "at least one service", async {
        let (got, services) = catalog(cx).await?;
        if services.is_empty() { Err(format!("{got} — data is empty")) } else { Ok(got) }
    })
    .await;

    rec.check("no_next_cursor", Protocol, "no next_cursor (no pagination)", async {
        let reply = cx.get(SERVICES).send().await?;
        let got = format!("{} with {} service(s)", reply.status, count(&reply.json));
        if reply.status != 200 {
            return Err(format!("no catalog: {}", summarize(&reply)));
        }
        match reply.json.as_ref().and_then(|j| j.get("next_cursor")) {
            None => Ok(got),
            Some(cursor) => Err(format!("{got} — next_cursor is {cursor}")),
        }
    })
    .await;

    rec.check("unique_ids", Protocol, "every service id appears once", async {
        let (got, services) = catalog(cx).await?;
        let mut seen = HashSet::new();
        match ids(&services).into_iter().find(|id| !seen.insert(id.clone())) {
            None => Ok(got),
            Some(id) => Err(format!("{got} — {id:?} appears twice")),
        }
    })
    .await;

    rec.check(
        "allowed_updates_resolve",
        Protocol,
        "every allowed_updates[].service is in the catalog",
        async {
            let (got, services) = catalog(cx).await?;
            let known = ids(&services);
            let targets = services.iter().flat_map(|s| list(&s["allowed_updates"]));
            match targets
                .filter_map(|u| u["service"].as_str())
                .find(|t| !known.iter().any(|k| k == t))
            {
                None => Ok(got),
                Some(target) => {
                    Err(format!("{got} — allowed update to unknown service {target:?}"))
                }
            }
        },
    )
    .await;

    rec.check(
        "component_parents_resolve",
        Protocol,
        "every component option's parent_service_ids are in the catalog",
        async {
            let (got, services) = catalog(cx).await?;
            let known = ids(&services);
            let parents = services
                .iter()
                .flat_map(|s| list(&s["pricing"]["component"]["options"]))
                .flat_map(|o| list(&o["parent_service_ids"]));
            match parents.filter_map(Value::as_str).find(|p| !known.iter().any(|k| k == p)) {
                None => Ok(got),
                Some(parent) => Err(format!("{got} — unknown parent service {parent:?}")),
            }
        },
    )
    .await;

    rec.check(
        "configuration_schemas_compile",
        Protocol,
        "every configuration_schema is a valid JSON Schema",
        async {
            let (got, services) = catalog(cx).await?;
            for service in &services {
                if let Some(schema) = service.get("configuration_schema")
                    && let Err(e) = jsonschema::validator_for(schema)
                {
                    return Err(format!("{got} — {}: {e}", service["id"]));
                }
            }
            Ok(got)
        },
    )
    .await;
}

/// The catalog's services (`got` summarizes the answer in a line).
async fn catalog(cx: &Ctx) -> Result<(String, Vec<Value>), String> {
    let reply = cx.get(SERVICES).send().await?;
    let got = format!("{} with {} service(s)", reply.status, count(&reply.json));
    match reply.json.as_ref().and_then(|j| j["data"].as_array()) {
        Some(services) if reply.status == 200 => Ok((got, services.clone())),
        _ => Err(format!("no catalog: {}", summarize(&reply))),
    }
}

fn count(json: &Option<Value>) -> usize {
    json.as_ref().and_then(|j| j["data"].as_array()).map_or(0, Vec::len)
}

fn ids(services: &[Value]) -> Vec<String> {
    services.iter().filter_map(|s| s["id"].as_str().map(str::to_string)).collect()
}

/// The array at `value`, or nothing.
fn list(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

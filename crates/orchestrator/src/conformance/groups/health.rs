//! `GET /provisioning/health` (spec 5.1): the orchestrator's first call.

use super::super::{
    expect::{Expect, summarize},
    report::Scope::Protocol,
    runner::Recorder,
    schemas::Schema,
    wire::{Ctx, HEALTH, json_content_type},
};

pub async fn run(cx: &Ctx, rec: &mut Recorder<'_>) {
    rec.expect("ok", Protocol, Expect::schema(200, Schema::Health), cx.get(HEALTH).send()).await;

    rec.check("supports_0_1d", Protocol, "supported_versions lists \"0.1d\"", async {
        let reply = cx.get(HEALTH).send().await?;
        let listed = reply.json.as_ref().and_then(|j| j["supported_versions"].as_array());
        if listed.is_some_and(|versions| versions.iter().any(|v| v == "0.1d")) {
            Ok(summarize(&reply))
        } else {
            Err(format!("{} — 0.1d is not in supported_versions", summarize(&reply)))
        }
    })
    .await;

    rec.check("json_content_type", Protocol, "Content-Type: application/json", async {
        json_content_type(&cx.get(HEALTH).send().await?)
    })
    .await;
}

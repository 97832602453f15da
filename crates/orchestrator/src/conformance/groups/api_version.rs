//! `API-Version` (spec 3.3): missing or other than `0.1d` → 400 flat `invalid_api_version` with the
//! spec's exact message; the token endpoint tolerates absence (provisio choice) but not a wrong value.

use super::super::{
    expect::Expect,
    fixtures::{account_body, new_code},
    report::Scope::{Protocol, Provisio},
    runner::Recorder,
    schemas::Schema,
    wire::{ACCOUNT_REQUESTS, Ctx, HEALTH, SERVICES},
};

pub async fn run(cx: &Ctx, rec: &mut Recorder<'_>) {
    let refused = Expect::invalid_api_version;
    for (name, path, version) in [
        ("health_missing", HEALTH, None),
        ("health_wrong", HEALTH, Some("0.1c")),
        ("health_wrong_case", HEALTH, Some("0.1D")),
        ("services_missing", SERVICES, None),
        ("services_wrong", SERVICES, Some("2025-01-01")),
    ] {
        rec.expect(name, Protocol, refused(), cx.get(path).version(version).send()).await;
    }
    for (name, version) in
        [("account_requests_missing", None), ("account_requests_wrong", Some("0.1c"))]
    {
        rec.expect(name, Protocol, refused(), async {
            let body = account_body(cx, &cx.email());
            cx.post(ACCOUNT_REQUESTS, &body).version(version).send().await
        })
        .await;
    }
    // With a good code, so the version is the one thing wrong: spec 3.4 does not place the
    // API-Version check among the token endpoint's, so with an unknown code a provider may answer
    // `invalid_grant` first.
    rec.expect("token_wrong", Protocol, refused(), async {
        let (_, code) = new_code(cx).await?;
        cx.token(&[("grant_type", "authorization_code"), ("code", &code)])
            .version(Some("0.1c"))
            .send()
            .await
    })
    .await;
    rec.expect("token_missing_accepted", Provisio, Expect::schema(200, Schema::TokenCode), async {
        let (_, code) = new_code(cx).await?;
        cx.token(&[("grant_type", "authorization_code"), ("code", &code)])
            .version(None)
            .send()
            .await
    })
    .await;
}

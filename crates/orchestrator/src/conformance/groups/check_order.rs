//! Check order (spec 3.4): a request that is wrong in two ways gets the error of the earlier check.
//! Every pair here can be produced from outside; the answer names which check ran first.

use serde_json::{Value, json};

use super::super::{
    expect::Expect,
    fixtures::{
        account_body, code_for, new_account, patched, pkce_body, with_configuration, without,
    },
    report::Scope::{Protocol, Provisio},
    runner::Recorder,
    wire::{
        ACCOUNT_REQUESTS, Ctx, DEEP_LINKS, HEALTH, RESOURCES, SERVICES, WRONG_SECRET, action,
        resource,
    },
};
use crate::client::{form_encode, unix_now};

/// An `expires_at` long past.
const PAST: &str = "2001-01-01T00:00:00Z";

pub async fn run(cx: &Ctx, rec: &mut Recorder<'_>) {
    reads(cx, rec).await;
    account_requests(cx, rec).await;
    token(cx, rec).await;
    bearer_endpoints(cx, rec).await;
}

/// health, services: signature → API-Version.
async fn reads(cx: &Ctx, rec: &mut Recorder<'_>) {
    let wrong = provisio_protocol::signature::header_value(&[WRONG_SECRET], unix_now(), b"");
    rec.expect(
        "health_signature_before_version",
        Protocol,
        Expect::invalid_signature(),
        cx.get(HEALTH).signature(wrong).version(Some("0.1c")).send(),
    )
    .await;
    rec.expect(
        "services_signature_before_version",
        Protocol,
        Expect::invalid_signature(),
        cx.get(SERVICES).unsigned().version(None).send(),
    )
    .await;
}

/// account_requests: API-Version → body → signature present → signature valid → orchestrator
/// account → `team_id`.
async fn account_requests(cx: &Ctx, rec: &mut Recorder<'_>) {
    let valid = || account_body(cx, &cx.email());
    let post = |body: &Value| cx.post(ACCOUNT_REQUESTS, body);
    let wrong_signature = |body: &Value| {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        provisio_protocol::signature::header_value(&[WRONG_SECRET], unix_now(), &bytes)
    };
    let invalid = || Expect::typed(400, "invalid_request");

    rec.expect(
        "account_version_before_body",
        Protocol,
        Expect::invalid_api_version(),
        post(&json!({})).raw_body(&b"{not json"[..]).version(Some("0.1c")).send(),
    )
    .await;
    rec.expect(
        "account_version_before_signature",
        Protocol,
        Expect::invalid_api_version(),
        post(&valid()).version(None).unsigned().send(),
    )
    .await;
    rec.expect(
        "account_body_before_signature_presence",
        Protocol,
        invalid(),
        post(&json!({})).raw_body(&b"{not json"[..]).unsigned().send(),
    )
    .await;
    rec.expect(
        "account_email_before_signature_presence",
        Protocol,
        invalid().message("email is required"),
        post(&without(valid(), "email")).unsigned().send(),
    )
    .await;
    rec.expect("account_email_before_signature_validity", Protocol, invalid(), async {
        let body = patched(valid(), "email", json!("not-an-email"));
        post(&body).signature(wrong_signature(&body)).send().await
    })
    .await;
    rec.expect(
        "account_email_before_expiry",
        Protocol,
        invalid().message("email is required"),
        post(&patched(without(valid(), "email"), "expires_at", json!(PAST))).send(),
    )
    .await;
    rec.expect(
        "account_expiry_before_pkce",
        Protocol,
        Expect::typed(400, "expired").message("Account request has expired"),
        async {
            let body = patched(valid(), "expires_at", json!(PAST));
            post(&patched(body, "code_challenge_method", json!("plain"))).send().await
        },
    )
    .await;
    rec.expect("account_expiry_before_signature", Protocol, Expect::typed(400, "expired"), async {
        let body = patched(valid(), "expires_at", json!(PAST));
        post(&body).signature(wrong_signature(&body)).send().await
    })
    .await;
    rec.expect(
        "account_pkce_before_signature_presence",
        Protocol,
        invalid(),
        post(&patched(valid(), "code_challenge_method", json!("plain"))).unsigned().send(),
    )
    .await;
    rec.expect(
        "account_signature_presence_before_account",
        Protocol,
        Expect::typed(401, "unauthorized").message("Authentication required"),
        post(&without(valid(), "orchestrator")).unsigned().send(),
    )
    .await;
    rec.expect("account_signature_before_account", Protocol, Expect::invalid_signature(), async {
        let body = without(valid(), "orchestrator");
        post(&body).signature(wrong_signature(&body)).send().await
    })
    .await;
    // Both wrong: the orchestrator account's error carries no id, team_id's would.
    rec.expect(
        "account_orchestrator_before_team_id",
        Protocol,
        invalid(),
        post(&without(
            with_configuration(cx, &cx.email(), json!({"team_id": "abc"})),
            "orchestrator",
        ))
        .send(),
    )
    .await;
    rec.expect("account_signature_before_team_id", Protocol, Expect::invalid_signature(), async {
        let body = with_configuration(cx, &cx.email(), json!({"team_id": "abc"}));
        post(&body).signature(wrong_signature(&body)).send().await
    })
    .await;
}

/// oauth/token: grant parsing → authentication → code lookup → PKCE verifier.
async fn token(cx: &Ctx, rec: &mut Recorder<'_>) {
    const UNKNOWN: &str = "conformance-unknown-code";
    let code_grant = [("grant_type", "authorization_code"), ("code", UNKNOWN)];

    rec.expect(
        "token_grant_type_before_authentication",
        Protocol,
        Expect::oauth(400, "unsupported_grant_type").message("Unsupported grant_type: password"),
        cx.token(&[("grant_type", "password"), ("code", UNKNOWN)]).unsigned().send(),
    )
    .await;
    rec.expect(
        "token_code_presence_before_authentication",
        Protocol,
        Expect::oauth(400, "invalid_request").message("code is required"),
        cx.token(&[("grant_type", "authorization_code")]).unsigned().send(),
    )
    .await;
    rec.expect(
        "token_authentication_before_lookup",
        Protocol,
        Expect::oauth(401, "invalid_request").message("Authentication required"),
        cx.token(&code_grant).unsigned().send(),
    )
    .await;
    rec.expect(
        "token_lookup_before_pkce",
        Protocol,
        Expect::oauth(400, "invalid_grant"),
        cx.token(&code_grant).send(),
    )
    .await;
    rec.expect(
        "token_lookup_before_verifier",
        Protocol,
        Expect::oauth(400, "invalid_grant"),
        cx.token(&[
            ("grant_type", "authorization_code"),
            ("code", UNKNOWN),
            ("code_verifier", &"v".repeat(43)),
        ])
        .unsigned()
        .send(),
    )
    .await;
    rec.expect(
        "token_pkce_verifier_required_when_signed",
        Protocol,
        Expect::oauth(401, "invalid_request").message("code_verifier is required for PKCE"),
        async {
            let (body, _) = pkce_body(cx)?;
            let code = code_for(cx, &body).await?;
            cx.token(&[("grant_type", "authorization_code"), ("code", &code)]).send().await
        },
    )
    .await;
    rec.expect(
        "token_version_before_grant",
        Provisio,
        Expect::invalid_api_version(),
        cx.token(&[("grant_type", "password")]).version(Some("0.1c")).send(),
    )
    .await;
    rec.expect(
        "token_code_presence_before_signature",
        Provisio,
        Expect::oauth(400, "invalid_request").message("code is required"),
        async {
            let form = [("grant_type", "authorization_code")];
            let header = provisio_protocol::signature::header_value(
                &[WRONG_SECRET],
                unix_now(),
                form_encode(&form).as_bytes(),
            );
            cx.token(&form).signature(header).send().await
        },
    )
    .await;
}

/// resources*, deep_links: bearer → signature → API-Version → path id → body.
async fn bearer_endpoints(cx: &Ctx, rec: &mut Recorder<'_>) {
    const MALFORMED: &[u8] = b"{\"service_id\": ";
    /// Not a resource id provisio hands out (its ids are decimal).
    const BAD_ID: &str = "conformance-id";
    let wrong_signature =
        |body: &[u8]| provisio_protocol::signature::header_value(&[WRONG_SECRET], unix_now(), body);
    // The bearer failure: 401 status, whatever its code (spec 4 names none), `id` `""` on create.
    let unauthorized = Expect::bearer_refused;
    let create = || cx.post(RESOURCES, &json!({}));
    let link = || cx.post(DEEP_LINKS, &json!({"purpose": "dashboard"}));

    rec.expect(
        "resource_bearer_before_signature",
        Protocol,
        unauthorized(),
        create().unsigned().send(),
    )
    .await;
    rec.expect(
        "resource_bearer_before_version",
        Protocol,
        unauthorized(),
        create().version(Some("0.1c")).send(),
    )
    .await;
    rec.expect("resource_signature_before_version", Protocol, Expect::invalid_signature(), async {
        let account = new_account(cx).await?;
        let header = wrong_signature(b"{}");
        create().bearer(account.access_token()).signature(header).version(None).send().await
    })
    .await;
    rec.expect("resource_version_before_path_id", Protocol, Expect::invalid_api_version(), async {
        let account = new_account(cx).await?;
        cx.get(&resource(BAD_ID)).bearer(account.access_token()).version(Some("0.1c")).send().await
    })
    .await;
    rec.expect("resource_version_before_body", Protocol, Expect::invalid_api_version(), async {
        let account = new_account(cx).await?;
        create().raw_body(MALFORMED).bearer(account.access_token()).version(None).send().await
    })
    .await;
    rec.expect(
        "resource_path_id_before_body",
        Provisio,
        Expect::status_error(400, "invalid_resource_id").naming(BAD_ID),
        async {
            let account = new_account(cx).await?;
            cx.post(&action(BAD_ID, "update_service"), &json!({}))
                .raw_body(MALFORMED)
                .bearer(account.access_token())
                .send()
                .await
        },
    )
    .await;
    rec.expect(
        "deep_link_bearer_before_signature",
        Protocol,
        unauthorized(),
        link().unsigned().send(),
    )
    .await;
    rec.expect(
        "deep_link_signature_before_version",
        Protocol,
        Expect::invalid_signature(),
        async {
            let account = new_account(cx).await?;
            let header = wrong_signature(b"{\"purpose\":\"dashboard\"}");
            link()
                .bearer(account.access_token())
                .signature(header)
                .version(Some("0.1c"))
                .send()
                .await
        },
    )
    .await;
    rec.expect("deep_link_version_before_body", Protocol, Expect::invalid_api_version(), async {
        let account = new_account(cx).await?;
        link().raw_body(MALFORMED).bearer(account.access_token()).version(None).send().await
    })
    .await;
}

//! The error envelopes (spec 4): each answer has exactly its envelope's shape — no extra keys, the
//! right one per endpoint, JSON content — whatever the error.

use serde_json::json;

use super::super::{
    expect::Expect,
    fixtures::{self, account_body, with_configuration},
    report::Scope::{Protocol, Provisio},
    runner::{Recorder, Verdict},
    wire::{ACCOUNT_REQUESTS, Ctx, SERVICES, WRONG_SECRET, json_content_type},
};
use crate::{Method, Reply, client::unix_now};

pub async fn run(cx: &Ctx, rec: &mut Recorder<'_>) {
    // One representative answer per envelope: exact body shape and a JSON content type.
    let flat = Expect::invalid_signature();
    rec.check("flat_exact", Protocol, flat.describe(), async {
        shape_and_type(cx, &flat, cx.get(SERVICES).unsigned().send().await?)
    })
    .await;
    let typed = Expect::typed(400, "invalid_request").message("email is required");
    rec.check("typed_exact_without_id", Protocol, typed.describe(), async {
        let body = json!({"id": cx.request_id(), "orchestrator": {"type":"stripe","stripe":{"account": cx.stripe_account}}});
        shape_and_type(cx, &typed, cx.post(ACCOUNT_REQUESTS, &body).send().await?)
    })
    .await;
    let request_id = cx.request_id();
    let typed_id = Expect::typed(400, "invalid_request").with_id(&request_id);
    rec.check("typed_exact_with_id", Protocol, typed_id.describe(), async {
        let mut body = with_configuration(cx, &cx.email(), json!({"team_id": "abc"}));
        body["id"] = json!(request_id);
        shape_and_type(cx, &typed_id, cx.post(ACCOUNT_REQUESTS, &body).send().await?)
    })
    .await;
    let oauth = Expect::oauth(400, "unsupported_grant_type");
    rec.check("oauth_exact", Protocol, oauth.describe(), async {
        shape_and_type(cx, &oauth, cx.token(&[("grant_type", "password")]).send().await?)
    })
    .await;

    // A signature failure is flat on every endpoint, also where other errors are oauth. With a good
    // code, so the signature is the one thing wrong: spec 3.4 does not order a present, bad
    // signature against the code lookup, so with an unknown code a provider may answer
    // `invalid_grant` first.
    rec.expect("signature_flat_on_token_endpoint", Protocol, Expect::invalid_signature(), async {
        let (_, code) = fixtures::new_code(cx).await?;
        let form = [("grant_type", "authorization_code"), ("code", code.as_str())];
        let body = crate::client::form_encode(&form);
        let header = provisio_protocol::signature::header_value(
            &[WRONG_SECRET],
            unix_now(),
            body.as_bytes(),
        );
        cx.token(&form).signature(header).send().await
    })
    .await;
    // Malformed JSON: 400 `invalid_request` in the endpoint's own envelope.
    rec.expect(
        "malformed_json_typed",
        Protocol,
        Expect::typed(400, "invalid_request"),
        cx.post(ACCOUNT_REQUESTS, &json!({})).raw_body(&b"{\"email\": "[..]).send(),
    )
    .await;
    rec.expect(
        "non_object_json_typed",
        Protocol,
        Expect::typed(400, "invalid_request"),
        cx.post(ACCOUNT_REQUESTS, &json!([])).send(),
    )
    .await;
    rec.expect(
        "malformed_json_oauth",
        Protocol,
        Expect::oauth(400, "invalid_request"),
        cx.token(&[]).content_type("application/json").raw_body(&b"{\"grant_type\": "[..]).send(),
    )
    .await;
    rec.expect("body_too_large_flat", Protocol, Expect::flat(413, "request_too_large"), async {
        let mut body = account_body(cx, &cx.email());
        body["padding"] = json!("x".repeat(1024 * 1024));
        cx.post(ACCOUNT_REQUESTS, &body).send().await
    })
    .await;
    rec.expect(
        "unknown_path_flat",
        Provisio,
        Expect::flat(404, "not_found").message("No such endpoint"),
        cx.get("/provisioning/conformance_no_such_endpoint").send(),
    )
    .await;
    rec.expect(
        "wrong_method_flat",
        Provisio,
        Expect::flat(405, "method_not_allowed"),
        cx.request(Method::DELETE, SERVICES).send(),
    )
    .await;
}

/// The envelope judged by `expect`, then the content type.
fn shape_and_type(cx: &Ctx, expect: &Expect, reply: Reply) -> Verdict {
    let got = expect.verify(&cx.schemas, &reply)?;
    json_content_type(&reply).map(|_| got)
}

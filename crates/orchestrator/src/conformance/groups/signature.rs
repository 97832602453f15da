//! `Stripe-Signature` v1 (spec 3.1): refused in every broken form with the one flat 401, accepted
//! in every legitimate form — on a GET (empty body) and on a POST (JSON body).

use provisio_protocol::signature::{header_value, sign};

use super::super::{
    expect::Expect,
    fixtures::account_body,
    report::Scope::{Protocol, Provisio},
    runner::Recorder,
    schemas::Schema,
    wire::{ACCOUNT_REQUESTS, Ctx, HEALTH, SERVICES, WRONG_SECRET},
};
use crate::client::unix_now;

/// Far outside any sane replay window: every provider must refuse it.
const HOUR: i64 = 3600;
/// Just outside provisio's 300 s window, with a margin for network and clock skew.
const BEYOND_300: i64 = 330;
/// Inside provisio's window.
const WITHIN_300: i64 = 240;

pub async fn run(cx: &Ctx, rec: &mut Recorder<'_>) {
    get_checks(cx, rec).await;
    post_checks(cx, rec).await;
}

async fn get_checks(cx: &Ctx, rec: &mut Recorder<'_>) {
    let refused = Expect::invalid_signature;
    let ok = || Expect::status(200);
    let health = || cx.get(HEALTH);

    rec.expect("get_missing", Protocol, refused(), health().unsigned().send()).await;
    rec.expect("get_malformed", Protocol, refused(), health().signature("garbage").send()).await;
    rec.expect(
        "get_without_v1",
        Protocol,
        refused(),
        health().signature(format!("t={}", unix_now())).send(),
    )
    .await;
    rec.expect(
        "get_wrong_secret",
        Protocol,
        refused(),
        health().signature(header_value(&[WRONG_SECRET], unix_now(), b"")).send(),
    )
    .await;
    for (name, scope, offset, expect) in [
        ("get_stale_1h", Protocol, -HOUR, refused()),
        ("get_future_1h", Protocol, HOUR, refused()),
        ("get_stale_330s", Provisio, -BEYOND_300, refused()),
        ("get_future_330s", Provisio, BEYOND_300, refused()),
        ("get_within_300s", Provisio, -WITHIN_300, ok()),
    ] {
        let at = unix_now() + offset;
        rec.expect(name, scope, expect, health().signature(cx.sign_at(at, b"")).send()).await;
    }
    rec.expect("get_rotated_double_signature", Protocol, ok(), async {
        let now = unix_now();
        let bogus = sign(WRONG_SECRET.as_bytes(), now, b"");
        health().signature(format!("t={now},v1={bogus},v1={}", cx.v1(now, b""))).send().await
    })
    .await;
    // Spec 3.1 collects every `v1`: one that is not even hex is skipped, not fatal.
    rec.expect("get_with_malformed_v1", Protocol, ok(), async {
        let now = unix_now();
        health()
            .signature(format!("t={now},v1={},v1={}", "z".repeat(64), cx.v1(now, b"")))
            .send()
            .await
    })
    .await;
    rec.expect("get_uppercase_hex", Protocol, ok(), async {
        let now = unix_now();
        health().signature(format!("t={now},v1={}", cx.v1(now, b"").to_uppercase())).send().await
    })
    .await;
    rec.expect("get_unknown_keys_ignored", Protocol, ok(), async {
        let now = unix_now();
        health().signature(format!("t={now},v0=abc,v1={},x=y", cx.v1(now, b""))).send().await
    })
    .await;
    // Signed over a body that is not the one sent (for a GET, the empty string).
    rec.expect(
        "get_tampered_body",
        Protocol,
        refused(),
        health().signature(cx.sign_at(unix_now(), b"{}")).send(),
    )
    .await;
    // The timestamp is part of the signed payload: the same digest under another `t` fails.
    rec.expect("get_timestamp_is_signed", Protocol, refused(), async {
        let now = unix_now();
        health().signature(format!("t={},v1={}", now - 1, cx.v1(now, b""))).send().await
    })
    .await;
    rec.expect("services_missing", Protocol, refused(), cx.get(SERVICES).unsigned().send()).await;
    rec.expect(
        "services_wrong_secret",
        Protocol,
        refused(),
        cx.get(SERVICES).signature(header_value(&[WRONG_SECRET], unix_now(), b"")).send(),
    )
    .await;
}

async fn post_checks(cx: &Ctx, rec: &mut Recorder<'_>) {
    let refused = Expect::invalid_signature;
    let linked = || Expect::schema(200, Schema::AccountRequest);
    // A valid account request for a new user: only the signature is wrong.
    let body = || account_body(cx, &cx.email());
    let bytes = |value: &serde_json::Value| serde_json::to_vec(value).unwrap_or_default();

    rec.expect("post_malformed", Protocol, refused(), async {
        let now = unix_now();
        let header = format!("t={now},v1={}", &"z".repeat(64));
        cx.post(ACCOUNT_REQUESTS, &body()).signature(header).send().await
    })
    .await;
    rec.expect("post_wrong_secret", Protocol, refused(), async {
        let value = body();
        let header = header_value(&[WRONG_SECRET], unix_now(), &bytes(&value));
        cx.post(ACCOUNT_REQUESTS, &value).signature(header).send().await
    })
    .await;
    for (name, offset) in [("post_stale_1h", -HOUR), ("post_future_1h", HOUR)] {
        rec.expect(name, Protocol, refused(), async {
            let value = body();
            let header = cx.sign_at(unix_now() + offset, &bytes(&value));
            cx.post(ACCOUNT_REQUESTS, &value).signature(header).send().await
        })
        .await;
    }
    rec.expect("post_rotated_double_signature", Protocol, linked(), async {
        let (value, now) = (body(), unix_now());
        let bogus = sign(WRONG_SECRET.as_bytes(), now, &bytes(&value));
        let header = format!("t={now},v1={bogus},v1={}", cx.v1(now, &bytes(&value)));
        cx.post(ACCOUNT_REQUESTS, &value).signature(header).send().await
    })
    .await;
    rec.expect("post_with_malformed_v1", Protocol, linked(), async {
        let (value, now) = (body(), unix_now());
        let header = format!("t={now},v1={},v1=not-hex", cx.v1(now, &bytes(&value)));
        cx.post(ACCOUNT_REQUESTS, &value).signature(header).send().await
    })
    .await;
    rec.expect("post_uppercase_hex", Protocol, linked(), async {
        let (value, now) = (body(), unix_now());
        let header = format!("t={now},v1={}", cx.v1(now, &bytes(&value)).to_uppercase());
        cx.post(ACCOUNT_REQUESTS, &value).signature(header).send().await
    })
    .await;
    // Signed for one email, sent for another.
    rec.expect("post_tampered_body", Protocol, refused(), async {
        let header = cx.sign_at(unix_now(), &bytes(&body()));
        cx.post(ACCOUNT_REQUESTS, &body()).signature(header).send().await
    })
    .await;
    // The same JSON with one more space: a provider that verifies a re-serialization accepts it.
    rec.expect("post_raw_bytes", Protocol, refused(), async {
        let value = body();
        let signed = bytes(&value);
        let mut sent = b"{ ".to_vec();
        sent.extend_from_slice(signed.get(1..).unwrap_or_default());
        let header = cx.sign_at(unix_now(), &signed);
        cx.post(ACCOUNT_REQUESTS, &value).raw_body(sent).signature(header).send().await
    })
    .await;
}

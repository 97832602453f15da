//! `POST /oauth/token` (spec 5.4): the code exchange and its answer, every error of the endpoint,
//! single use, PKCE, and refresh rotation.

use serde_json::Value;

use super::super::{
    expect::{Expect, summarize},
    fixtures::{Account, code_for, new_account, new_code, pkce_body, redeem, tokens},
    report::Scope::{Protocol, Provisio},
    runner::{Recorder, Verdict, judge},
    schemas::Schema,
    wire::{Ctx, WRONG_SECRET},
};
use crate::{
    Reply,
    client::{form_encode, unix_now},
};

const CODE: &str = "authorization_code";

pub async fn run(cx: &Ctx, rec: &mut Recorder<'_>) {
    exchange(cx, rec).await;
    errors(cx, rec).await;
    single_use(cx, rec).await;
    pkce(cx, rec).await;
    refresh(cx, rec).await;
    rec.check("metadata", Provisio, "RFC 8414 metadata naming both grants and S256", async {
        let reply = cx.get_root("/.well-known/oauth-authorization-server").send().await?;
        let json = reply.json.clone().unwrap_or_default();
        let has = |key: &str, value: &str| {
            json[key].as_array().is_some_and(|a| a.iter().any(|v| v == value))
        };
        let ok = reply.status == 200
            && json["token_endpoint"].is_string()
            && has("grant_types_supported", CODE)
            && has("grant_types_supported", "refresh_token")
            && json["code_challenge_methods_supported"] == serde_json::json!(["S256"]);
        judge(ok, summarize(&reply))
    })
    .await;
}

/// The answer to a good code.
async fn exchange(cx: &Ctx, rec: &mut Recorder<'_>) {
    rec.expect("code_exchange", Protocol, Expect::schema(200, Schema::TokenCode), async {
        let (_, code) = new_code(cx).await?;
        cx.token(&[("grant_type", CODE), ("code", &code)]).send().await
    })
    .await;
    rec.check("code_exchange_no_scope", Protocol, "no scope key", async {
        let (_, code) = new_code(cx).await?;
        let tokens = redeem(cx, &code).await?;
        match tokens.get("scope") {
            None => Ok("no scope".into()),
            Some(scope) => Err(format!("scope {scope}")),
        }
    })
    .await;
    rec.check("code_exchange_no_store", Protocol, "Cache-Control: no-store", async {
        let (_, code) = new_code(cx).await?;
        no_store(&cx.token(&[("grant_type", CODE), ("code", &code)]).send().await?)
    })
    .await;
    rec.check(
        "available_teams_own_and_ordered",
        Protocol,
        "available_teams of the account's organization, ordered by id",
        async {
            let account = new_account(cx).await?;
            let teams = account.tokens["account"]["available_teams"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let ids: Vec<i64> = teams.iter().filter_map(|t| t["id"].as_i64()).collect();
            let ordered = ids.windows(2).all(|w| w[0] < w[1]);
            let own = teams.iter().all(|t| t["organization_id"] == account.organization_id());
            let got = format!("available_teams {}", Value::from(teams.clone()));
            judge(!teams.is_empty() && ordered && own, got)
        },
    )
    .await;
    rec.expect("json_body_accepted", Protocol, Expect::schema(200, Schema::TokenCode), async {
        let (_, code) = new_code(cx).await?;
        let body = serde_json::json!({"grant_type": CODE, "code": code}).to_string();
        cx.token(&[]).content_type("application/json").raw_body(body).send().await
    })
    .await;
}

/// Every error of the endpoint, in the oauth envelope.
async fn errors(cx: &Ctx, rec: &mut Recorder<'_>) {
    rec.expect(
        "unsupported_grant_type",
        Protocol,
        Expect::oauth(400, "unsupported_grant_type")
            .message("Unsupported grant_type: client_credentials"),
        cx.token(&[("grant_type", "client_credentials")]).send(),
    )
    .await;
    rec.expect(
        "missing_code",
        Protocol,
        Expect::oauth(400, "invalid_request").message("code is required"),
        cx.token(&[("grant_type", CODE)]).send(),
    )
    .await;
    rec.expect(
        "missing_refresh_token",
        Protocol,
        Expect::oauth(400, "invalid_request").message("refresh_token is required"),
        cx.token(&[("grant_type", "refresh_token")]).send(),
    )
    .await;
    rec.expect(
        "unknown_code",
        Protocol,
        Expect::oauth(400, "invalid_grant"),
        cx.token(&[("grant_type", CODE), ("code", "conformance-unknown-code")]).send(),
    )
    .await;
    rec.expect(
        "unsigned_code_refused",
        Protocol,
        Expect::oauth(401, "invalid_request").message("Authentication required"),
        async {
            let (_, code) = new_code(cx).await?;
            cx.token(&[("grant_type", CODE), ("code", &code)]).unsigned().send().await
        },
    )
    .await;
    rec.expect(
        "unsigned_attempt_does_not_consume",
        Protocol,
        Expect::schema(200, Schema::TokenCode),
        async {
            let (_, code) = new_code(cx).await?;
            cx.token(&[("grant_type", CODE), ("code", &code)]).unsigned().send().await?;
            cx.token(&[("grant_type", CODE), ("code", &code)]).send().await
        },
    )
    .await;
    rec.expect(
        "invalid_signature_does_not_consume",
        Provisio,
        Expect::schema(200, Schema::TokenCode),
        async {
            let (_, code) = new_code(cx).await?;
            let form = [("grant_type", CODE), ("code", code.as_str())];
            let wrong = provisio_protocol::signature::header_value(
                &[WRONG_SECRET],
                unix_now(),
                form_encode(&form).as_bytes(),
            );
            let refused = cx.token(&form).signature(wrong).send().await?;
            if refused.status != 401 {
                return Err(format!("the badly signed attempt answered {}", summarize(&refused)));
            }
            cx.token(&form).send().await
        },
    )
    .await;
}

/// A code works once.
async fn single_use(cx: &Ctx, rec: &mut Recorder<'_>) {
    rec.expect("code_single_use", Protocol, Expect::oauth(400, "invalid_grant"), async {
        let (_, code) = new_code(cx).await?;
        redeem(cx, &code).await?;
        cx.token(&[("grant_type", CODE), ("code", &code)]).send().await
    })
    .await;
    rec.expect(
        "code_reuse_revokes_its_tokens",
        Provisio,
        Expect::oauth(400, "invalid_grant"),
        async {
            let (_, code) = new_code(cx).await?;
            let first = redeem(cx, &code).await?;
            cx.token(&[("grant_type", CODE), ("code", &code)]).send().await?;
            let refresh = first["refresh_token"].as_str().unwrap_or_default();
            cx.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh)]).send().await
        },
    )
    .await;
}

/// PKCE-bound codes: the verifier replaces the signature, and failures do not consume the code.
async fn pkce(cx: &Ctx, rec: &mut Recorder<'_>) {
    rec.expect(
        "pkce_unsigned_with_verifier",
        Protocol,
        Expect::schema(200, Schema::TokenCode),
        async {
            let (body, verifier) = pkce_body(cx)?;
            let code = code_for(cx, &body).await?;
            cx.token(&[("grant_type", CODE), ("code", &code), ("code_verifier", &verifier)])
                .unsigned()
                .send()
                .await
        },
    )
    .await;
    rec.expect("pkce_wrong_verifier", Protocol, Expect::oauth(400, "invalid_grant"), async {
        let (body, _) = pkce_body(cx)?;
        let code = code_for(cx, &body).await?;
        let wrong = "w".repeat(43);
        cx.token(&[("grant_type", CODE), ("code", &code), ("code_verifier", &wrong)])
            .unsigned()
            .send()
            .await
    })
    .await;
    rec.expect(
        "pkce_failures_do_not_consume",
        Protocol,
        Expect::schema(200, Schema::TokenCode),
        async {
            let (body, verifier) = pkce_body(cx)?;
            let code = code_for(cx, &body).await?;
            let missing = cx.token(&[("grant_type", CODE), ("code", &code)]).send().await?;
            let wrong = "w".repeat(43);
            let mismatch = cx
                .token(&[("grant_type", CODE), ("code", &code), ("code_verifier", &wrong)])
                .send()
                .await?;
            if missing.status != 401 || mismatch.status != 400 {
                return Err(format!(
                    "failures answered {} and {}",
                    summarize(&missing),
                    summarize(&mismatch)
                ));
            }
            cx.token(&[("grant_type", CODE), ("code", &code), ("code_verifier", &verifier)])
                .unsigned()
                .send()
                .await
        },
    )
    .await;
}

/// Refresh rotation: new tokens, no `account`, the old refresh token dead.
async fn refresh(cx: &Ctx, rec: &mut Recorder<'_>) {
    let send = |token: String| async move {
        cx.token(&[("grant_type", "refresh_token"), ("refresh_token", token.as_str())]).send().await
    };

    rec.expect("refresh_answer", Protocol, Expect::schema(200, Schema::TokenRefresh), async {
        send(new_account(cx).await?.refresh_token().to_string()).await
    })
    .await;
    rec.check("refresh_rotates_both_tokens", Protocol, "new access and refresh tokens", async {
        let account = new_account(cx).await?;
        let fresh = rotate(cx, &account).await?;
        let changed = |key: &str| fresh[key] != account.tokens[key] && fresh[key].is_string();
        if changed("access_token") && changed("refresh_token") {
            Ok("both tokens new".into())
        } else {
            Err("a token was not replaced".into())
        }
    })
    .await;
    rec.check("refresh_without_account", Protocol, "no account key", async {
        let fresh = rotate(cx, &new_account(cx).await?).await?;
        match fresh.get("account") {
            None => Ok("no account".into()),
            Some(account) => Err(format!("account {account}")),
        }
    })
    .await;
    rec.check("refresh_no_store", Protocol, "Cache-Control: no-store", async {
        no_store(&send(new_account(cx).await?.refresh_token().to_string()).await?)
    })
    .await;
    rec.expect("refresh_old_token_refused", Protocol, Expect::oauth(400, "invalid_grant"), async {
        let account = new_account(cx).await?;
        rotate(cx, &account).await?;
        send(account.refresh_token().to_string()).await
    })
    .await;
    rec.expect(
        "refresh_unknown_token",
        Protocol,
        Expect::oauth(400, "invalid_grant"),
        send("conformance-unknown-refresh-token".into()),
    )
    .await;
    rec.expect(
        "refresh_reuse_revokes_family",
        Provisio,
        Expect::oauth(400, "invalid_grant"),
        async {
            let account = new_account(cx).await?;
            let fresh = rotate(cx, &account).await?;
            send(account.refresh_token().to_string()).await?;
            send(fresh["refresh_token"].as_str().unwrap_or_default().to_string()).await
        },
    )
    .await;
    rec.expect(
        "refresh_unsigned_accepted",
        Provisio,
        Expect::schema(200, Schema::TokenRefresh),
        async {
            let account = new_account(cx).await?;
            cx.token(&[("grant_type", "refresh_token"), ("refresh_token", account.refresh_token())])
                .unsigned()
                .send()
                .await
        },
    )
    .await;
}

/// A signed refresh that must succeed.
async fn rotate(cx: &Ctx, account: &Account) -> Result<Value, String> {
    tokens(cx, &[("grant_type", "refresh_token"), ("refresh_token", account.refresh_token())]).await
}

fn no_store(reply: &Reply) -> Verdict {
    let value =
        reply.headers.get("cache-control").and_then(|v| v.to_str().ok()).unwrap_or("(none)");
    let got = format!("{} Cache-Control: {value}", reply.status);
    let has = value.split(',').any(|d| d.trim().eq_ignore_ascii_case("no-store"));
    judge(reply.status == 200 && has, got)
}

//! `POST /provisioning/account_requests` (spec 5.3): new users, email-based linking of existing
//! users, `team_id` resolution, validation errors and their typed envelope.

use reqwest::Url;
use serde_json::{Value, json};

use super::super::{
    expect::{Expect, summarize},
    fixtures::{
        Account, account_body, code_for, link_again, new_account, patched, pkce_body, redeem,
        team_ids, with_configuration, without,
    },
    report::Scope::{Protocol, Provisio},
    runner::{Recorder, Verdict, judge},
    schemas::Schema,
    wire::{ACCOUNT_REQUESTS, Ctx},
};

const TEAM_ID_MESSAGE: &str = "configuration.team_id must be an integer";
const TEAM_RESOLUTION_MESSAGE: &str = "Could not resolve a project for this user";
/// A project id no provider has handed out to this run's users.
const UNKNOWN_TEAM: i64 = 987_654_321_987;

pub async fn run(cx: &Ctx, rec: &mut Recorder<'_>) {
    new_and_existing(cx, rec).await;
    requires_auth(cx, rec).await;
    team_id(cx, rec).await;
    validation(cx, rec).await;
    request_ids(cx, rec).await;
}

async fn new_and_existing(cx: &Ctx, rec: &mut Recorder<'_>) {
    let request_id = cx.request_id();
    let email = cx.email();
    let created = Expect::schema(200, Schema::AccountRequest)
        .field("/type", "oauth")
        .field("/id", request_id.as_str());
    rec.expect("new_user_code", Protocol, created, async {
        let mut body = account_body(cx, &email);
        body["id"] = json!(request_id);
        cx.post(ACCOUNT_REQUESTS, &body).send().await
    })
    .await;

    rec.check(
        "code_is_43_base64url",
        Protocol,
        "oauth.code: 32 random bytes, base64url, no padding",
        async {
            let code = code_for(cx, &account_body(cx, &cx.email())).await?;
            let base64url =
                code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if code.len() == 43 && base64url {
                Ok(format!("{} characters", code.len()))
            } else {
                Err(format!("code {code:?}"))
            }
        },
    )
    .await;

    rec.check(
        "new_user_one_project",
        Protocol,
        "a new user's account has exactly one project, in its organization",
        async {
            let account = new_account(cx).await?;
            let teams = account.tokens["account"]["available_teams"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let own = teams.iter().all(|t| t["organization_id"] == account.organization_id());
            judge(teams.len() == 1 && own, format!("available_teams {}", Value::from(teams)))
        },
    )
    .await;

    rec.check(
        "existing_user_new_code",
        Protocol,
        "200 oauth with a new code for a known email",
        async {
            let email = cx.email();
            let first = code_for(cx, &account_body(cx, &email)).await?;
            let second = code_for(cx, &account_body(cx, &email)).await?;
            if first == second {
                Err("the same code twice".into())
            } else {
                Ok("two different codes".into())
            }
        },
    )
    .await;

    let same = "the code links to the same organization and project";
    rec.check("existing_user_linked", Protocol, same, async {
        let account = new_account(cx).await?;
        same_account(&account, &link_again(cx, &account.email).await?)
    })
    .await;
    rec.check("email_case_insensitive", Protocol, same, async {
        let account = new_account(cx).await?;
        same_account(&account, &link_again(cx, &account.email.to_uppercase()).await?)
    })
    .await;
    rec.check("email_whitespace_trimmed", Protocol, same, async {
        let account = new_account(cx).await?;
        same_account(&account, &link_again(cx, &format!("  {}\t", account.email)).await?)
    })
    .await;

    rec.check(
        "organization_name_used",
        Protocol,
        "available_teams[0].organization_name = configuration.organization_name",
        async {
            let name = "Conformance Organization";
            let body = with_configuration(cx, &cx.email(), json!({"organization_name": name}));
            let tokens = redeem(cx, &code_for(cx, &body).await?).await?;
            let got = &tokens["account"]["available_teams"][0]["organization_name"];
            judge(got == name, format!("organization_name {got}"))
        },
    )
    .await;
    rec.check(
        "default_organization_name",
        Provisio,
        "organization named \"Stripe (<email>)\"",
        async {
            let account = new_account(cx).await?;
            let got = &account.tokens["account"]["available_teams"][0]["organization_name"];
            let want = format!("Stripe ({})", account.email);
            judge(got.as_str() == Some(want.as_str()), format!("organization_name {got}"))
        },
    )
    .await;
}

/// A `requires_auth` answer (spec 5.3, consent mode) sends the user's browser to its
/// `redirect.url`: an absolute http(s) URL with a host, as written (no surrounding spaces). Another
/// answer type is not applicable; an error is a failure.
fn requires_auth_redirect(reply: &crate::Reply) -> Verdict {
    let got = summarize(reply);
    let Some(json) = reply.json.as_ref().filter(|_| reply.status == 200) else {
        return Err(format!("{got} — not a 200 account request answer"));
    };
    if json["type"] != "requires_auth" {
        return Ok(format!("not applicable: the provider answered type {}", json["type"]));
    }
    let redirect = &json["requires_auth"];
    let Some(raw) = redirect["redirect"]["url"].as_str().filter(|_| redirect["type"] == "redirect")
    else {
        return Err(format!(
            "{got} — no requires_auth.type \"redirect\" with a redirect.url string"
        ));
    };
    let url = match Url::parse(raw) {
        Ok(url) if raw.trim() == raw => url,
        Ok(_) => return Err(format!("{got} — redirect.url has surrounding whitespace")),
        Err(e) => return Err(format!("{got} — redirect.url is not an absolute URL: {e}")),
    };
    let web = matches!(url.scheme(), "http" | "https");
    let host = url.host_str().is_some_and(|h| !h.is_empty());
    // The query may carry the user's one-time token: shown as `?…`.
    let shown = match url.query() {
        Some(_) => format!("{}?…", raw.split('?').next().unwrap_or_default()),
        None => raw.to_string(),
    };
    judge(web && host, format!("redirect.url {shown:?}"))
}

/// The second token answer names the same organization and the same single project.
fn same_account(first: &Account, second: &Value) -> Verdict {
    let (org, teams) = (second["account"]["id"].as_str().unwrap_or_default(), team_ids(second));
    let got = format!("organization {org:?}, teams {teams:?}");
    if org == first.organization_id() && teams == team_ids(&first.tokens) {
        Ok(got)
    } else {
        Err(format!(
            "{got} — first link gave {:?}, teams {:?}",
            first.organization_id(),
            team_ids(&first.tokens)
        ))
    }
}

/// A provider that asks the user to confirm (consent mode) answers `requires_auth` for a known
/// email; provisio in link mode answers `oauth`, and the check is not applicable.
async fn requires_auth(cx: &Ctx, rec: &mut Recorder<'_>) {
    rec.check(
        "requires_auth_redirect_url",
        Protocol,
        "a requires_auth answer (a known email) has an absolute http(s) redirect.url; an oauth or credentials answer is not applicable",
        async {
            let email = cx.email();
            sign_up(cx, &email).await?;
            requires_auth_redirect(&cx.post(ACCOUNT_REQUESTS, &account_body(cx, &email)).send().await?)
        },
    )
    .await;
}

/// A first account request for `email` that must answer 200 (of any type).
async fn sign_up(cx: &Ctx, email: &str) -> Result<(), String> {
    let reply = cx.post(ACCOUNT_REQUESTS, &account_body(cx, email)).send().await?;
    if reply.status == 200 {
        Ok(())
    } else {
        Err(format!("set-up failed: the account request answered {}", summarize(&reply)))
    }
}

async fn team_id(cx: &Ctx, rec: &mut Recorder<'_>) {
    // Spec 5.3: a `team_id` that is not an integer is refused. "abc" and 1.5 are not integers on
    // any reading; that a boolean is not one either is provisio's choice (spec 5.3 lists booleans
    // in provisio's definition of an integer `team_id`, and in some languages a boolean is one).
    for (name, scope, value) in [
        ("team_id_string_refused", Protocol, json!("abc")),
        ("team_id_float_refused", Protocol, json!(1.5)),
        ("team_id_bool_refused", Provisio, json!(true)),
    ] {
        let request_id = cx.request_id();
        let expect =
            Expect::typed(400, "invalid_request").message(TEAM_ID_MESSAGE).with_id(&request_id);
        rec.expect(name, scope, expect, async {
            let body = with_configuration(cx, &cx.email(), json!({"team_id": value}));
            cx.post(ACCOUNT_REQUESTS, &patched(body, "id", json!(request_id))).send().await
        })
        .await;
    }
    let linked = || Expect::schema(200, Schema::AccountRequest).field("/type", "oauth");
    rec.expect("team_id_integer_accepted", Protocol, linked(), async {
        let account = new_account(cx).await?;
        let body =
            with_configuration(cx, &account.email, json!({"team_id": account.first_team()?}));
        cx.post(ACCOUNT_REQUESTS, &body).send().await
    })
    .await;
    rec.expect("team_id_digit_string_accepted", Provisio, linked(), async {
        let account = new_account(cx).await?;
        let team = format!(" {} ", account.first_team()?);
        cx.post(ACCOUNT_REQUESTS, &with_configuration(cx, &account.email, json!({"team_id": team})))
            .send()
            .await
    })
    .await;
    // An explicit null is the same as an absent field (spec 4), also inside `configuration`.
    rec.expect("team_id_null_is_absent", Protocol, linked(), async {
        let account = new_account(cx).await?;
        cx.post(ACCOUNT_REQUESTS, &with_configuration(cx, &account.email, json!({"team_id": null})))
            .send()
            .await
    })
    .await;
    let unresolved = |id: &str| {
        Expect::typed(400, "team_resolution_failed").message(TEAM_RESOLUTION_MESSAGE).with_id(id)
    };
    let request_id = cx.request_id();
    rec.expect("team_id_unknown", Protocol, unresolved(&request_id), async {
        let account = new_account(cx).await?;
        let body = with_configuration(cx, &account.email, json!({"team_id": UNKNOWN_TEAM}));
        cx.post(ACCOUNT_REQUESTS, &patched(body, "id", json!(request_id))).send().await
    })
    .await;
    let request_id = cx.request_id();
    rec.expect("team_id_foreign", Protocol, unresolved(&request_id), async {
        let (mine, theirs) = (new_account(cx).await?, new_account(cx).await?);
        let body = with_configuration(cx, &mine.email, json!({"team_id": theirs.first_team()?}));
        cx.post(ACCOUNT_REQUESTS, &patched(body, "id", json!(request_id))).send().await
    })
    .await;
}

async fn validation(cx: &Ctx, rec: &mut Recorder<'_>) {
    let valid = || account_body(cx, &cx.email());
    let invalid = || Expect::typed(400, "invalid_request");
    let linked = || Expect::schema(200, Schema::AccountRequest).field("/type", "oauth");
    let post = |body: Value| async move { cx.post(ACCOUNT_REQUESTS, &body).send().await };

    rec.expect(
        "missing_email",
        Protocol,
        invalid().message("email is required"),
        post(without(valid(), "email")),
    )
    .await;
    rec.expect(
        "malformed_email",
        Protocol,
        invalid(),
        post(patched(valid(), "email", json!("no-at-sign.example"))),
    )
    .await;
    rec.expect(
        "expired",
        Protocol,
        Expect::typed(400, "expired").message("Account request has expired"),
        post(patched(valid(), "expires_at", json!("2001-01-01T00:00:00Z"))),
    )
    .await;
    rec.expect(
        "expires_at_malformed",
        Protocol,
        invalid(),
        post(patched(valid(), "expires_at", json!("tomorrow"))),
    )
    .await;
    rec.expect(
        "expires_at_future_accepted",
        Protocol,
        linked(),
        post(patched(valid(), "expires_at", json!("2999-01-01T00:00:00Z"))),
    )
    .await;
    rec.expect(
        "missing_orchestrator_account",
        Protocol,
        invalid(),
        post(patched(valid(), "orchestrator", json!({"type":"stripe","stripe":{}}))),
    )
    .await;
    rec.expect(
        "unsigned",
        Protocol,
        Expect::typed(401, "unauthorized").message("Authentication required"),
        cx.post(ACCOUNT_REQUESTS, &valid()).unsigned().send(),
    )
    .await;
    rec.expect("pkce_plain_refused", Protocol, invalid(), async {
        let (body, verifier) = pkce_body(cx)?;
        cx.post(
            ACCOUNT_REQUESTS,
            &patched(
                patched(body, "code_challenge_method", json!("plain")),
                "code_challenge",
                json!(verifier),
            ),
        )
        .send()
        .await
    })
    .await;
    rec.expect(
        "pkce_short_challenge_refused",
        Protocol,
        invalid(),
        post(patched(
            patched(valid(), "code_challenge", json!("abc")),
            "code_challenge_method",
            json!("S256"),
        )),
    )
    .await;
    rec.check(
        "pkce_challenge_without_method_is_s256",
        Protocol,
        "200; the code redeems with the S256 verifier, unsigned",
        async {
            let (body, verifier) = pkce_body(cx)?;
            let code = code_for(cx, &without(body, "code_challenge_method")).await?;
            let reply = cx
                .token(&[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("code_verifier", &verifier),
                ])
                .unsigned()
                .send()
                .await?;
            if reply.status == 200 { Ok(reply.status.to_string()) } else { Err(summarize(&reply)) }
        },
    )
    .await;
    rec.expect(
        "unknown_fields_ignored",
        Protocol,
        linked(),
        post(patched(valid(), "conformance_extra", json!({"nested": [1, 2]}))),
    )
    .await;
    rec.expect("explicit_nulls_are_absent", Protocol, linked(), async {
        let mut body = valid();
        for key in [
            "name",
            "phone",
            "expires_at",
            "configuration",
            "code_challenge",
            "code_challenge_method",
        ] {
            body[key] = Value::Null;
        }
        post(body).await
    })
    .await;
    rec.expect("organisation_spelling_accepted", Protocol, linked(), async {
        let mut body = valid();
        body["orchestrator"]["stripe"]["organisation"] = json!("org_conformance");
        post(body).await
    })
    .await;
}

/// provisio remembers a request `id` for 24 h: a retry resolves to the same account.
async fn request_ids(cx: &Ctx, rec: &mut Recorder<'_>) {
    rec.check(
        "request_id_retry",
        Provisio,
        "same id and email twice: two codes, one account",
        async {
            let body = account_body(cx, &cx.email());
            let first = redeem(cx, &code_for(cx, &body).await?).await?;
            // Not byte-identical: a provider may answer an identical signed POST from a replay cache.
            let retry = patched(body, "conformance_attempt", json!(2));
            let second = redeem(cx, &code_for(cx, &retry).await?).await?;
            let (a, b) = (
                (first["account"]["id"].clone(), team_ids(&first)),
                (second["account"]["id"].clone(), team_ids(&second)),
            );
            if a == b {
                Ok(format!("organization {}, teams {:?}", a.0, a.1))
            } else {
                Err(format!("{a:?} then {b:?}"))
            }
        },
    )
    .await;
    let request_id = cx.request_id();
    let reused = Expect::typed(400, "invalid_request")
        .message("This request id was already used for a different email")
        .with_id(&request_id);
    rec.expect("request_id_other_email", Provisio, reused, async {
        let first = patched(account_body(cx, &cx.email()), "id", json!(request_id));
        code_for(cx, &first).await?;
        cx.post(ACCOUNT_REQUESTS, &patched(first, "email", json!(cx.email()))).send().await
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;

    fn answer(status: u16, json: Value) -> crate::Reply {
        crate::Reply {
            status,
            headers: HeaderMap::new(),
            raw: json.to_string().into_bytes(),
            json: Some(json),
        }
    }

    fn redirect(url: &str) -> crate::Reply {
        answer(
            200,
            json!({"id":"r","type":"requires_auth","requires_auth":{"type":"redirect","redirect":{"url":url}}}),
        )
    }

    #[test]
    fn requires_auth_redirects_to_an_absolute_web_url() {
        let got =
            requires_auth_redirect(&redirect("https://app.example.com/consent?token=x")).unwrap();
        assert_eq!(got, r#"redirect.url "https://app.example.com/consent?…""#);
        assert!(requires_auth_redirect(&redirect("http://127.0.0.1:8080/consent")).is_ok());
        for bad in [
            "/consent?t=x",
            "consent",
            "javascript:alert(1)",
            "ftp://example.com/x",
            " https://app.example.com/",
            "https://",
            "mailto:a@example.com",
            "",
        ] {
            assert!(requires_auth_redirect(&redirect(bad)).is_err(), "{bad:?}");
        }
        let oauth = answer(200, json!({"id":"r","type":"oauth","oauth":{"code":"c"}}));
        assert!(requires_auth_redirect(&oauth).unwrap().starts_with("not applicable"));
        let wrong_type = answer(
            200,
            json!({"id":"r","type":"requires_auth","requires_auth":{"type":"popup","redirect":{"url":"https://a.example"}}}),
        );
        assert!(requires_auth_redirect(&wrong_type).is_err());
        assert!(requires_auth_redirect(&answer(400, json!({"error":{}}))).is_err());
    }
}

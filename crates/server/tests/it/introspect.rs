//! `POST /v1/keys/introspect`: the SaaS's services check the keys provisio issues. After rotate the
//! old keys are dead at once; after remove every key of the resource is.

use provisio_testkit::backend_test;
use serde_json::{Value, json};

use crate::support::{Req, TestApp};

fn access_of(reply: &crate::support::Reply) -> Value {
    reply.json["complete"]["access_configuration"].clone()
}

#[backend_test]
async fn keys_live_until_rotated_or_removed() {
    let app = TestApp::new().await;
    let access =
        app.tokens_for("intro@example.com").await["access_token"].as_str().unwrap().to_string();
    let created = app.provision(&access, &json!({"project_id": "i"})).await;
    let id: i64 = created.json["id"].as_str().unwrap().parse().unwrap();
    let org = app.scalar_text("SELECT id FROM organizations").await;
    let first = access_of(&created);
    let live = |kind: &str| json!({"active": true, "token_type": kind, "organization_id": org, "project_id": id});
    assert_eq!(
        app.introspect(first["personal_api_key"].as_str().unwrap()).await,
        live("personal_key")
    );
    assert_eq!(app.introspect(first["api_key"].as_str().unwrap()).await, live("project_key"));
    assert_eq!(app.introspect("pvpk_never_issued").await, json!({"active": false}));

    let rotated = app
        .with_bearer(
            Req::post(&format!("/provisioning/resources/{id}/rotate_credentials"), ""),
            &access,
        )
        .await;
    let second = access_of(&rotated);
    for old in ["personal_api_key", "api_key"] {
        assert_eq!(
            app.introspect(first[old].as_str().unwrap()).await,
            json!({"active": false}),
            "old {old}"
        );
    }
    assert_eq!(
        app.introspect(second["personal_api_key"].as_str().unwrap()).await,
        live("personal_key")
    );

    app.with_bearer(Req::post(&format!("/provisioning/resources/{id}/remove"), ""), &access).await;
    for key in ["personal_api_key", "api_key"] {
        assert_eq!(
            app.introspect(second[key].as_str().unwrap()).await,
            json!({"active": false}),
            "removed {key}"
        );
    }
}

#[backend_test]
async fn only_operators_may_ask() {
    let app = TestApp::new().await;
    for auth in [None, Some("Bearer wrong"), Some("Basic op_test_token")] {
        let mut req = Req::form("/v1/keys/introspect", "token=x").signature(None);
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        let reply = app.send(req.build()).await;
        reply.assert(
            401,
            json!({"error":{"code":"unauthorized","message":"A valid operator token is required"}}),
        );
        assert_eq!(reply.headers["www-authenticate"], "Bearer realm=\"provisio\"");
    }
    let reply = app
        .send(
            Req::form("/v1/keys/introspect", "")
                .signature(None)
                .header("authorization", &format!("Bearer {}", crate::support::OPERATOR_TOKEN))
                .build(),
        )
        .await;
    reply.assert(400, json!({"error":{"code":"invalid_request","message":"token is required"}}));
}

#[backend_test]
async fn the_bearer_scheme_is_case_insensitive() {
    // RFC 9110 11.1: `BEARER` and `bearer` are `Bearer` (found in a security review: refused).
    let app = TestApp::new().await;
    for scheme in ["BEARER", "bearer", "BeArEr"] {
        let reply = app
            .send(
                Req::form("/v1/keys/introspect", "token=pub_unknown")
                    .signature(None)
                    .header(
                        "authorization",
                        &format!("{scheme} {}", crate::support::OPERATOR_TOKEN),
                    )
                    .build(),
            )
            .await;
        reply.assert(200, json!({"active": false}));
    }
}

//! The `stripe` billing backend against a small fake of Stripe's API on loopback: a PaymentIntent
//! confirmed with the granted token; a refused token provisions nothing.

use provisio_testkit::backend_test;
use std::sync::{Arc, Mutex};

use axum::{Form, Router, extract::State, http::HeaderMap, routing::post};
use provisio_server::domain::billing::{Billing, StripeConfig};
use serde_json::{Value, json};

use crate::support::TestApp;

/// One call to the fake: the `Authorization` header and the form fields.
type Call = (String, Vec<(String, String)>);

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Call>>>);

/// `POST /v1/payment_intents`: succeeds for `spt_good…`, declines anything else like Stripe does.
async fn payment_intents(
    State(seen): State<Seen>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> (axum::http::StatusCode, axum::Json<Value>) {
    let auth =
        headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let token = form
        .iter()
        .find(|(k, _)| k == "shared_payment_granted_token")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    seen.0.lock().unwrap().push((auth, form));
    if token.starts_with("spt_good") {
        (
            axum::http::StatusCode::OK,
            axum::Json(
                json!({"id": "pi_fake_1", "object": "payment_intent", "status": "succeeded"}),
            ),
        )
    } else {
        (
            axum::http::StatusCode::PAYMENT_REQUIRED,
            axum::Json(
                json!({"error": {"type": "card_error", "code": "card_declined", "message": "Your card was declined."}}),
            ),
        )
    }
}

async fn fake_stripe() -> (String, Seen) {
    let seen = Seen::default();
    let app =
        Router::new().route("/v1/payment_intents", post(payment_intents)).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

fn stripe(api_base: &str) -> Billing {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Billing::Stripe {
        config: StripeConfig {
            api_base: api_base.into(),
            amount: 500,
            currency: "usd".into(),
            secret_key_env: "UNUSED".into(),
        },
        secret_key: "sk_test_fake".into(),
        http: reqwest::Client::new(),
    }
}

fn spt(token: &str) -> Value {
    json!({"type": "stripe_payment_token", "stripe_payment_token": token})
}

#[backend_test]
async fn an_accepted_token_confirms_a_payment_intent_and_activates_the_plan() {
    let (base, seen) = fake_stripe().await;
    let app = TestApp::with_billing(stripe(&base)).await;
    let access =
        app.tokens_for("stripe@example.com").await["access_token"].as_str().unwrap().to_string();
    let reply = app
        .provision(
            &access,
            &json!({"service_id": "pay_as_you_go", "payment_credentials": spt("spt_good_1")}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    let calls = seen.0.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    let (auth, form) = &calls[0];
    assert_eq!(auth, "Bearer sk_test_fake");
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    assert_eq!(field("shared_payment_granted_token"), Some("spt_good_1"));
    assert_eq!(field("confirm"), Some("true"));
    assert_eq!((field("amount"), field("currency")), (Some("500"), Some("usd")));
    assert_eq!(app.scalar_text("SELECT backend_reference FROM billing").await, "pi_fake_1");
    assert_eq!(app.scalar_text("SELECT plan FROM billing").await, "pay_as_you_go");
}

#[backend_test]
async fn a_declined_token_provisions_nothing_and_fails_billing_on_update() {
    let (base, _) = fake_stripe().await;
    let app = TestApp::with_billing(stripe(&base)).await;
    let access =
        app.tokens_for("declined@example.com").await["access_token"].as_str().unwrap().to_string();
    let declined = "The payment token was refused: Your card was declined.";
    app.provision(&access, &json!({"service_id": "pay_as_you_go", "project_id": "x", "payment_credentials": spt("spt_bad_1")}))
        .await
        .assert(400, json!({"status":"error","id":"","error":{"code":"requires_payment_credentials","message":declined}}));
    assert_eq!(
        (app.count("resources").await, app.count("billing").await, app.count("projects").await),
        (0, 0, 1)
    );

    let id = app.provision(&access, &json!({})).await.json["id"].as_str().unwrap().to_string();
    app.with_bearer(crate::support::Req::json(&format!("/provisioning/resources/{id}/update_service"), &json!({"service_id": "pay_as_you_go", "payment_credentials": spt("spt_bad_2")})), &access)
        .await
        .assert(400, json!({"status":"error","id":id,"error":{"code":"billing_activation_failed","message":declined}}));
    assert_eq!(app.scalar_text("SELECT service_id FROM resources").await, "analytics", "unchanged");
}

#[backend_test]
async fn an_unreachable_stripe_refuses_cleanly() {
    let app = TestApp::with_billing(stripe("http://127.0.0.1:9")).await;
    let access =
        app.tokens_for("down@example.com").await["access_token"].as_str().unwrap().to_string();
    app.provision(&access, &json!({"service_id": "pay_as_you_go", "payment_credentials": spt("spt_good_2")}))
        .await
        .assert(400, json!({"status":"error","id":"","error":{"code":"requires_payment_credentials","message":"The payment provider could not be reached"}}));
}

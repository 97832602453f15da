//! What one connector call costs provisio, back to back against a SaaS that answers at once (the
//! tests' in-memory SaaS, in this process): `users.lookup`, `users.create` and
//! `resources.provision` 2,000 times each through one `Connector` (signing, the kept-alive HTTP
//! connection, reading the answer, and the SaaS's own verification and work). Run by
//! `scripts/bench-connector.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

#[path = "../tests/it/saas.rs"]
mod saas;

use std::time::Instant;

use provisio_server::connector::{Connector, ConnectorSpec};
use serde_json::json;

#[tokio::main]
async fn main() {
    let saas = saas::Saas::start().await;
    let env = |_: &str| Some(saas::CONNECTOR_SECRET.to_string());
    let spec = ConnectorSpec {
        url: saas.connector_url(),
        secret_env: "SECRET".into(),
        timeout_ms: 3000,
        deadline_ms: 10_000,
        dashboard_origin: saas::DASHBOARD_ORIGIN.into(),
        allow_insecure_http: false,
    };
    let connector = Connector::new(spec.validate(&env).unwrap()).unwrap();
    let mut took: [Vec<u128>; 3] = Default::default();
    for i in 0..2000 {
        let email = format!("u{i}@example.com");
        let started = Instant::now();
        connector.lookup(&email, connector.deadline()).await.unwrap();
        took[0].push(started.elapsed().as_micros());
        let body = json!({"email": email, "organization_name": "Org", "project_name": "Default",
                          "orchestrator": {"name": "stripe", "account": "acct_1"}});
        let started = Instant::now();
        let created =
            connector.create_user(&format!("op_c{i}"), &body, connector.deadline()).await.unwrap();
        took[1].push(started.elapsed().as_micros());
        let project = created.project_id.get();
        let body = json!({"resource_id": project.to_string(), "user_id": created.user.id.as_str(),
                          "project_id": project, "organization_id": created.organization_id.as_str(),
                          "service_id": "analytics", "configuration": {}, "payment": null});
        let started = Instant::now();
        connector.provision(&format!("op_p{i}"), &body, connector.deadline()).await.unwrap();
        took[2].push(started.elapsed().as_micros());
    }
    for (name, mut micros) in
        ["users.lookup", "users.create", "resources.provision"].into_iter().zip(took)
    {
        micros.sort_unstable();
        let at = |q: f64| micros[((micros.len() as f64 * q) as usize).min(micros.len() - 1)];
        println!("   {name:20} p50 {} µs  p90 {} µs  p99 {} µs", at(0.5), at(0.9), at(0.99));
    }
}

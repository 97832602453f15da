//! Stored data holds no usable token: after a full flow, no table contains a plaintext code, access
//! token or refresh token — only their hashes.

use provisio_server::store::Backend;

use crate::support::{TestApp, account_body};
use provisio_testkit::backend_test;

async fn every_stored_value(app: &TestApp) -> String {
    let postgres = app.state.store.backend() == Backend::Postgres;
    let tables = if postgres {
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()"
    } else {
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    };
    let tables = app.rows(tables).await;
    assert!(tables.len() > 10, "every table is looked at");
    let mut dump = String::new();
    for table in tables {
        let table = table.text(0).unwrap();
        let columns = if postgres {
            format!(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = '{table}' ORDER BY ordinal_position"
            )
        } else {
            format!("SELECT name FROM pragma_table_info('{table}')")
        };
        let columns = app.rows(&columns).await;
        for row in app.rows(&format!("SELECT * FROM {table}")).await {
            for (column, value) in columns.iter().zip(&row.0) {
                dump.push_str(&format!("{table}.{}={value}\n", column.text(0).unwrap()));
            }
        }
    }
    dump
}

#[backend_test]
async fn no_plaintext_code_or_token_is_stored() {
    let app = TestApp::new().await;
    let code = app.code_with(account_body("ar_rest", "rest@example.com")).await;
    let first = app.redeem(&code).await;
    let second = app
        .token(&format!(
            "grant_type=refresh_token&refresh_token={}",
            first["refresh_token"].as_str().unwrap()
        ))
        .await
        .json;
    let dump = every_stored_value(&app).await;
    assert!(dump.contains("authorization_codes.code_hash="), "the dump reads the tables");
    let secrets = [
        code.as_str(),
        first["access_token"].as_str().unwrap(),
        first["refresh_token"].as_str().unwrap(),
        second["access_token"].as_str().unwrap(),
        second["refresh_token"].as_str().unwrap(),
    ];
    for secret in secrets {
        assert!(!dump.contains(secret), "plaintext found in the database");
        let random_part =
            ["pvat_", "pvrt_"].iter().find_map(|p| secret.strip_prefix(p)).unwrap_or(secret);
        assert!(!dump.contains(random_part), "the random part of a token found in the database");
        assert!(dump.contains(&provisio_server::crypto::token_hash(secret)), "its hash is stored");
    }
}

//! Stored data holds no usable token: after a full flow, no table contains a plaintext code, access
//! token or refresh token — only their hashes.

use sqlx::{Column, Row};

use crate::support::{TestApp, account_body};

async fn every_stored_value(app: &TestApp) -> String {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(app.state.store.pool())
    .await
    .unwrap();
    let mut dump = String::new();
    for table in tables {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM {table}")))
            .fetch_all(app.state.store.pool())
            .await
            .unwrap();
        for row in rows {
            for i in 0..row.columns().len() {
                let text = row
                    .try_get::<Option<String>, _>(i)
                    .ok()
                    .flatten()
                    .or_else(|| {
                        row.try_get::<Option<i64>, _>(i).ok().flatten().map(|n| n.to_string())
                    })
                    .unwrap_or_default();
                dump.push_str(&format!("{table}.{}={text}\n", row.columns()[i].name()));
            }
        }
    }
    dump
}

#[tokio::test]
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

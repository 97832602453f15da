//! `provisio manifest`: the registration block from the same configuration `serve` reads.

use std::process::Command;

#[test]
fn the_manifest_is_printed_from_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::server::config_file(
        dir.path(),
        "[accounts]\nscopes = [\"provision\"]\n\
         configuration_schema = { type = \"object\", properties = { region = { type = \"string\", enum = [\"us\", \"eu\"] } } }\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_provisio"))
        .args(["manifest", "--public-url", "https://acme.example/", "--config", &config])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        manifest,
        serde_json::json!({"provisioning": {
            "api_version": "0.1d",
            "base_url": "https://acme.example",
            "oauth_token_endpoint": "https://acme.example/oauth/token",
            "scopes": ["provision"],
            "capabilities": ["resources:create", "resources:update_service", "resources:rotate_credentials", "resources:remove"],
            "deep_link_purposes": ["dashboard"],
            "llm_context": "https://acme.example/llm-context.md",
            "account_configuration_schema": {"type": "object", "properties": {"region": {"type": "string", "enum": ["us", "eu"]}}},
        }})
    );
}

#[test]
fn without_a_public_url_or_with_a_bad_schema_it_says_why() {
    let out = Command::new(env!("CARGO_BIN_EXE_provisio"))
        .arg("manifest")
        .env_remove("PROVISIO_PUBLIC_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--public-url or PROVISIO_PUBLIC_URL"));
    let dir = tempfile::tempdir().unwrap();
    let config = crate::server::config_file(
        dir.path(),
        "[accounts]\nconfiguration_schema = { type = \"array\" }\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_provisio"))
        .args(["manifest", "--public-url", "https://acme.example", "--config", &config])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("configuration_schema"), "{stderr}");
}

//! `provisio admin erase-user ID|EMAIL` against a database a real server wrote: the user's token
//! dies, the address is gone, the pseudonym is printed; again by id is fine, again by the address
//! (or an unknown user) is a clear error.

use provisio_orchestrator::{Client, ClientConfig, client::account_request_body};
use serde_json::Value;

use crate::{
    admin::{admin_output as admin, database_of, signed_up},
    server::Server,
};

#[tokio::test]
async fn an_operator_erases_a_user_by_email_then_again_by_id() {
    let server = Server::start(&["--signing-secret", "whsec_erase"]);
    let client =
        Client::new(ClientConfig::new(&server.base_url, vec!["whsec_erase".into()])).unwrap();
    let mut body = account_request_body("ar_erase", "Grace@Example.com", "acct_erase");
    body["name"] = "Grace Hopper".into();
    let access = signed_up(&client, &body).await;
    let db = database_of(&server);
    let (_, out, _) = admin(&db, &["user", "grace@example.com"]);
    let user_id =
        serde_json::from_str::<Value>(&out).unwrap()["user"]["id"].as_str().unwrap().to_string();

    let (ok, out, err) = admin(&db, &["erase-user", "grace@example.com"]);
    assert!(ok, "{out}{err}");
    let erased: Value = serde_json::from_str(out.trim()).unwrap();
    let pseudonym = erased["pseudonym"].as_str().unwrap().to_string();
    assert!(pseudonym.starts_with("erased_"), "{erased}");
    assert_eq!(erased["user_id"], user_id.as_str());
    assert_eq!(erased["revoked_token_families"], 1);
    assert!(!out.to_ascii_lowercase().contains("grace"), "no address nor name printed: {out}");
    assert_eq!(client.get_resource("1", &access).await.unwrap().status, 401, "the token is dead");

    let (ok, out, _) = admin(&db, &["user", &user_id]);
    assert!(ok);
    let view: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(view["user"]["email"], format!("erased+{pseudonym}@invalid"));
    assert_eq!(view["user"]["deleted"], true);
    assert_eq!(view["live_token_families"], 0);
    let (_, out, _) = admin(&db, &["audit", "--user", &pseudonym]);
    let events: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(events, ["account.created", "code.issued", "code.redeemed", "user.erased_by_admin"]);

    // Again by id: fine, nothing more to revoke.
    let (ok, out, err) = admin(&db, &["erase-user", &user_id]);
    assert!(ok, "{out}{err}");
    let again: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (&again["revoked_token_families"], &again["already_erased"]),
        (&0.into(), &true.into())
    );
    // By the address, or an unknown user: a clear error, exit 1.
    for (who, message) in [
        ("grace@example.com", "no such user with that email: g***@example.com"),
        ("usr_nobody", "no such user: usr_nobody"),
    ] {
        let (ok, out, err) = admin(&db, &["erase-user", who]);
        assert!(!ok && out.is_empty(), "{out}");
        assert_eq!(err.trim(), message);
    }
}

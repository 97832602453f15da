//! What the SaaS tells provisio (connector v1, "The SaaS tells provisio"): a user must lose every
//! grant (`revoke`), a project is gone (`removed`), a user must be forgotten (`erase`). Each call is
//! one transaction that makes the change, writes its audit record and the events it reports, and
//! is idempotent: an unknown id changes nothing, a repeat finds nothing more to kill and reports
//! nothing.

use std::{collections::BTreeSet, sync::Arc};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Internal, backend::ResourceBackend, resources::ResourceError};
use crate::{
    audit::Actor,
    events::{Event, ResourceChange, RevokeReason},
    store::{Conn, Store, StoreError, inbound as sql, resources as resources_sql},
};

/// Largest project id the contract allows (ids are below 2^53, so they survive JSON numbers).
const MAX_PROJECT_ID: i64 = (1 << 53) - 1;

/// A SaaS user id as the contract defines it: 1–64 characters of `[A-Za-z0-9_-]`.
pub fn valid_user_id(raw: &str) -> bool {
    (1..=64).contains(&raw.len())
        && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A SaaS project id: a positive integer below 2^53, in decimal digits.
pub fn parse_project_id(raw: &str) -> Option<i64> {
    (!raw.is_empty() && raw.len() <= 16 && raw.bytes().all(|b| b.is_ascii_digit()))
        .then(|| raw.parse::<i64>().ok())
        .flatten()
        .filter(|id| (1..=MAX_PROJECT_ID).contains(id))
}

/// The stable pseudonym that replaces an erased user's id: `erased_` and the first 16 hex digits
/// of SHA-256 of the id (an operator who knows the id can still find the user's old records).
pub fn pseudonym(user_id: &str) -> String {
    let digest = hex::encode(Sha256::digest(user_id.as_bytes()));
    format!("erased_{}", &digest[..16])
}

/// The address that replaces an erased user's email (`.invalid` never resolves, RFC 2606).
pub fn erased_email(pseudonym: &str) -> String {
    format!("erased+{pseudonym}@invalid")
}

/// The inbound operations, with what they need from the state.
pub struct Inbound<'a> {
    pub store: &'a Store,
    /// Built-in mode: the backend whose credentials die with a removed resource. `None` in
    /// connector mode: the credentials are the SaaS's and died with its project.
    pub backend: Option<&'a Arc<dyn ResourceBackend>>,
}

impl Inbound<'_> {
    /// `POST /v1/connector/users/{user_id}/revoke`: every token family (every orchestrator), unused
    /// code, open consent request, unused dashboard link and dashboard session of the user dies;
    /// one `tokens.revoked` per organization that had a live family.
    pub async fn revoke_user(&self, user_id: &str, now: i64) -> Result<(), Internal> {
        let (user_id, actor) = (user_id.to_string(), Actor::current(""));
        self.store
            .write(move |conn| -> Result<(), StoreError> {
                revoke(conn, &actor, &user_id, false, now)?;
                actor.record(conn, "user.revoked_by_operator", Some(&user_id), None, None, now)
            })
            .await?;
        Ok(())
    }

    /// `POST /v1/connector/projects/{project_id}/removed`: the resource living in that project, if
    /// active, is marked removed (reads answer `removed`, updates and rotations 409), with one
    /// `resource.removed`.
    pub async fn project_removed(&self, project_id: i64, now: i64) -> Result<(), Internal> {
        let (backend, actor) = (self.backend.cloned(), Actor::current(""));
        self.store
            .write(move |conn| -> Result<(), Internal> {
                let Some(row) = resources_sql::find_resource(conn, project_id)? else {
                    return Ok(());
                };
                if !resources_sql::mark_removed(conn, project_id, now)? {
                    return Ok(());
                }
                resources_sql::bump_generation(conn, project_id, now)?;
                if let Some(backend) = &backend {
                    backend.revoke(conn, &row, now).map_err(internal)?;
                }
                let org = row.organization_id.as_str();
                actor.record(
                    conn,
                    "resource.removed_by_operator",
                    None,
                    Some(org),
                    Some(project_id),
                    now,
                )?;
                let event = Event::Resource {
                    kind: ResourceChange::Removed,
                    resource_id: project_id,
                    project_id,
                    organization_id: org,
                    service_id: &row.service_id,
                    operation_id: None,
                };
                actor.emit(conn, &event, now)?;
                Ok(())
            })
            .await
    }

    /// `POST /v1/connector/users/{user_id}/erase`: the revocation above, then the user's personal
    /// data pseudonymized: the address in account requests (and, built-in, the user's own row,
    /// marked deleted), the user id in the audit log and the outbox, the address in the outbox.
    /// The `tokens.revoked` events of the erase itself carry the real id, so the SaaS can match
    /// them; they carry no address.
    pub async fn erase_user(&self, user_id: &str, now: i64) -> Result<(), Internal> {
        let (user_id, actor) = (user_id.to_string(), Actor::current(""));
        let pseudonym = pseudonym(&user_id);
        let email = erased_email(&pseudonym);
        self.store
            .write(move |conn| -> Result<(), StoreError> {
                pseudonymize_events(conn, &user_id, &pseudonym, &email)?;
                revoke(conn, &actor, &user_id, true, now)?;
                sql::pseudonymize_audit(conn, &user_id, &pseudonym)?;
                actor.record(conn, "user.erased_by_operator", Some(&pseudonym), None, None, now)?;
                sql::pseudonymize_account_requests(conn, &user_id, &email)?;
                sql::forget_code_teams(conn, &user_id)?;
                if let Some(old) = sql::user_email(conn, &user_id)? {
                    sql::erase_user_row(conn, &user_id, &old, &email, now)?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }
}

/// Kills every grant of the user and reports one `tokens.revoked` per organization whose
/// families this call revoked. `erase` also deletes completed consents and used links.
/// Every way in of a user dies, in the caller's transaction: token families (reason `operator`),
/// unused codes, open consents (all of them when erasing), unused dashboard links and sessions;
/// one `tokens.revoked` per organization that had a live family. How many families died. The one
/// place for it: the inbound API and `provisio admin revoke-tokens` alike.
pub(crate) fn revoke(
    conn: &mut dyn Conn,
    actor: &Actor,
    user_id: &str,
    erase: bool,
    now: i64,
) -> Result<usize, StoreError> {
    let reason = RevokeReason::Operator;
    let families = sql::revoke_families_of_user(conn, user_id, reason.as_str(), now)?;
    sql::expire_codes_of_user(conn, user_id, now)?;
    sql::delete_consents_of_user(conn, user_id, erase)?;
    sql::delete_deep_links_of_user(conn, user_id, erase)?;
    sql::delete_sessions_of_user(conn, user_id)?;
    let organizations: BTreeSet<&str> = families.iter().map(|(_, org)| org.as_str()).collect();
    for organization_id in organizations {
        actor.emit(conn, &Event::TokensRevoked { user_id, organization_id, reason }, now)?;
    }
    Ok(families.len())
}

/// Rewrites the outbox events about the user: `user_id` becomes the pseudonym, `email` the erased
/// address. The data is JSON text, parsed here so that no JSON function of one database is needed.
fn pseudonymize_events(
    conn: &mut dyn Conn,
    user_id: &str,
    pseudonym: &str,
    email: &str,
) -> Result<(), StoreError> {
    for (sequence, data) in sql::events_mentioning(conn, user_id)? {
        let Ok(mut data) = serde_json::from_str::<Value>(&data) else { continue };
        if scrub(&mut data, user_id, pseudonym, email) {
            sql::set_event_data(conn, sequence, &data.to_string())?;
        }
    }
    Ok(())
}

/// Pseudonymizes one event's data if it is about `user_id`; whether it changed.
fn scrub(data: &mut Value, user_id: &str, pseudonym: &str, email: &str) -> bool {
    let Some(object) = data.as_object_mut() else { return false };
    if object.get("user_id").and_then(Value::as_str) != Some(user_id) {
        return false;
    }
    object.insert("user_id".into(), pseudonym.into());
    if object.contains_key("email") {
        object.insert("email".into(), email.into());
    }
    true
}

/// A backend failure inside the transaction, as an internal error.
fn internal(e: ResourceError) -> Internal {
    match e {
        ResourceError::Internal(e) => e,
        other => Internal::Store(StoreError::Aborted(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ids_follow_the_contract() {
        assert!(valid_user_id("u_1001"));
        assert!(valid_user_id(&"a".repeat(64)));
        for bad in ["", "a b", "u/1", "é", &"a".repeat(65)] {
            assert!(!valid_user_id(bad), "{bad:?}");
        }
        assert_eq!(parse_project_id("42"), Some(42));
        assert_eq!(parse_project_id("9007199254740991"), Some(MAX_PROJECT_ID));
        for bad in ["", "0", "-1", "+1", "1.0", "abc", "9007199254740992", "99999999999999999999"] {
            assert_eq!(parse_project_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_pseudonym_is_stable_and_hides_the_id() {
        let p = pseudonym("u_1001");
        assert_eq!(p, pseudonym("u_1001"));
        assert_ne!(p, pseudonym("u_1002"));
        assert!(p.starts_with("erased_") && p.len() == 23 && !p.contains("1001"));
        assert!(valid_user_id(&p));
    }

    #[test]
    fn only_events_about_the_user_are_rewritten() {
        let mut about = json!({"user_id": "u_1", "email": "a@example.com", "organization_id": "o"});
        assert!(scrub(&mut about, "u_1", "erased_x", "erased+erased_x@invalid"));
        assert_eq!(
            about,
            json!({"user_id": "erased_x", "email": "erased+erased_x@invalid", "organization_id": "o"})
        );
        let mut other = json!({"user_id": "u_10", "email": "b@example.com"});
        assert!(!scrub(&mut other, "u_1", "erased_x", "e"));
        let mut revoked = json!({"user_id": "u_1", "organization_id": "o", "reason": "operator"});
        assert!(scrub(&mut revoked, "u_1", "erased_x", "e"));
        assert_eq!(
            revoked,
            json!({"user_id": "erased_x", "organization_id": "o", "reason": "operator"})
        );
    }
}

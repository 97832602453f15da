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
    rate_limit::Scope,
    store::{
        Backend, Conn, Store, StoreError, inbound as sql, rate_limits as rate_limits_sql,
        resources as resources_sql,
    },
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

    /// `POST /v1/connector/users/{user_id}/erase`: [`erase`], the one set of rules it shares with
    /// `provisio admin erase-user`. An id provisio never saw changes nothing but the audit log.
    pub async fn erase_user(&self, user_id: &str, now: i64) -> Result<(), Internal> {
        let (user_id, actor, backend) =
            (user_id.to_string(), Actor::current(""), self.store.backend());
        self.store
            .write(move |conn| {
                erase(conn, &actor, backend, &user_id, "user.erased_by_operator", now).map(drop)
            })
            .await?;
        Ok(())
    }
}

/// What an erase did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Erasure {
    pub user_id: String,
    /// What the user's records are now kept under.
    pub pseudonym: String,
    /// Token families this call revoked (0 when erasing again).
    pub revoked_token_families: usize,
    /// Built-in mode: the user's own row was already a tombstone (an erase run again).
    pub already_erased: bool,
}

/// Erases a user, in the caller's transaction; the one place for the rules, whoever asks (the
/// SaaS through `POST /v1/connector/users/{user_id}/erase`, the operator through `provisio admin
/// erase-user`):
///
/// - every way in dies ([`revoke`], erasing): token families revoked, unused codes expired,
///   every consent request and dashboard link of the user deleted (used ones too), every
///   dashboard session ended;
/// - the addresses provisio knows the user by (the user's row, the account requests made for
///   the user) are forgotten: every consent request for them (with the sign-in links emailed for
///   it) is deleted, whoever it was for, and so are the PostgreSQL rate-limit buckets keyed by them;
/// - what is kept is kept under the [`pseudonym`]: the audit log's rows (their detail dropped),
///   the outbox events about the user (`user_id` and `email` rewritten), the account requests
///   (the address replaced by [`erased_email`]), the codes (their reported `available_teams`
///   forgotten);
/// - built-in mode, the user's row stays as a tombstone so that foreign keys hold: its address
///   becomes [`erased_email`] (which frees the real one), its names are dropped, it is marked
///   deleted; in the names of the user's organizations the address (as written and normalized)
///   is replaced by the erased one and the user's name and first name (whole words, two
///   characters or more) by the pseudonym. Memberships, organizations, projects and resources
///   stay: they are the organization's, not the person's.
///
/// The `tokens.revoked` events of the erase itself carry the real id (the SaaS matches it) and no
/// address. Running it again revokes and reports nothing more.
pub(crate) fn erase(
    conn: &mut dyn Conn,
    actor: &Actor,
    backend: Backend,
    user_id: &str,
    audit_event: &'static str,
    now: i64,
) -> Result<Erasure, StoreError> {
    let pseudonym = pseudonym(user_id);
    let email = erased_email(&pseudonym);
    let user = sql::user_row(conn, user_id)?;
    let addresses: Vec<String> =
        sql::addresses_of_user(conn, user_id)?.into_iter().filter(|a| *a != email).collect();
    pseudonymize_events(conn, user_id, &pseudonym, &email)?;
    sql::delete_consent_links_of_user(conn, user_id)?;
    for address in &addresses {
        sql::delete_consents_of_address(conn, address)?;
        // PostgreSQL keeps the buckets keyed by an address (account requests per email, sign-in
        // emails per address) in the database; SQLite in the server's memory.
        if backend == Backend::Postgres {
            for scope in [Scope::Email, Scope::ConsentAddress] {
                rate_limits_sql::forget(conn, scope.label(), address)?;
            }
        }
    }
    let revoked_token_families = revoke(conn, actor, user_id, true, now)?;
    sql::pseudonymize_audit(conn, user_id, &pseudonym)?;
    actor.record(conn, audit_event, Some(&pseudonym), None, None, now)?;
    sql::pseudonymize_account_requests(conn, user_id, &email)?;
    sql::forget_code_teams(conn, user_id)?;
    let already_erased = user.as_ref().is_some_and(|u| u.email == email);
    if let Some(user) = user.filter(|u| u.email != email) {
        rename_organizations(conn, user_id, &user, &pseudonym, &email)?;
        sql::erase_user_row(conn, user_id, &email, now)?;
    }
    Ok(Erasure { user_id: user_id.to_string(), pseudonym, revoked_token_families, already_erased })
}

/// Built-in mode: the user's address and names out of the names of the user's organizations.
fn rename_organizations(
    conn: &mut dyn Conn,
    user_id: &str,
    user: &sql::UserRow,
    pseudonym: &str,
    erased_email: &str,
) -> Result<(), StoreError> {
    let names: Vec<&str> = [user.name.as_deref(), user.first_name.as_deref()]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|n| n.chars().count() >= 2)
        .collect();
    for organization in sql::organizations_of_user(conn, user_id)? {
        let mut name = organization.name.clone();
        for address in [user.email.trim(), user.email_normalized.as_str()] {
            name = replace_words(&name, address, erased_email);
        }
        for person in &names {
            name = replace_words(&name, person, pseudonym);
        }
        if name != organization.name {
            sql::rename_organization(conn, &organization.id, &name)?;
        }
    }
    Ok(())
}

/// Replaces every whole-word occurrence of `needle` in `haystack` (ASCII letters in any case; a
/// word ends where a letter or digit does not follow) with `with`.
fn replace_words(haystack: &str, needle: &str, with: &str) -> String {
    if needle.is_empty() {
        return haystack.to_string();
    }
    let (bytes, wanted) = (haystack.as_bytes(), needle.as_bytes());
    let is_word = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || *b >= 0x80);
    let mut out = String::with_capacity(haystack.len());
    let (mut copied, mut at) = (0, 0);
    while at + wanted.len() <= bytes.len() {
        let end = at + wanted.len();
        let matches = bytes.get(at..end).is_some_and(|w| w.eq_ignore_ascii_case(wanted))
            && !is_word(at.checked_sub(1).and_then(|i| bytes.get(i)))
            && !is_word(bytes.get(end));
        // A match starts and ends on character boundaries: the needle is whole characters and
        // only ASCII letters may differ in case.
        if let (true, Some(before)) = (matches, haystack.get(copied..at)) {
            out.push_str(before);
            out.push_str(with);
            (copied, at) = (end, end);
        } else {
            at += 1;
        }
    }
    out.push_str(haystack.get(copied..).unwrap_or_default());
    out
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
    fn only_whole_words_are_replaced_in_any_ascii_case() {
        let x = "erased+x@invalid";
        assert_eq!(
            replace_words("Stripe (Ada@Example.com)", "ada@example.com", x),
            "Stripe (erased+x@invalid)"
        );
        assert_eq!(replace_words("Ada Lovelace's lab", "Ada Lovelace", "p"), "p's lab");
        assert_eq!(replace_words("Adams, ada and ADA", "Ada", "p"), "Adams, p and p");
        assert_eq!(replace_words("Zoé's team, Zoéa", "zoé", "p"), "p's team, Zoéa");
        assert_eq!(replace_words("ééé", "é", "p"), "ééé");
        assert_eq!(replace_words("mada@example.com", "ada@example.com", "p"), "mada@example.com");
        assert_eq!(replace_words("kept", "", "p"), "kept");
        assert_eq!(replace_words("", "Ada", "p"), "");
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

//! Bearer authentication for the resource and deep-link endpoints: an access token, looked up by
//! its hash, names a user, an organization and the projects it may reach.

use super::Internal;
use crate::{
    crypto::token_hash,
    store::{Store, StoreError, oauth as sql},
};

/// Who a bearer token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub family_id: String,
    pub user_id: String,
    pub organization_id: String,
    /// The project resolved when the account was linked.
    pub primary_project_id: i64,
    /// Every project the token reaches (the primary one and those provisioned with it).
    pub project_ids: Vec<i64>,
    pub orchestrator: String,
    /// The orchestrator's account the grant was issued to (e.g. Stripe's `acct_…`).
    pub orchestrator_account: String,
    /// The organization's plan as the bearer was read (`None`: the catalog's free default).
    pub plan: Option<String>,
}

impl Principal {
    pub fn can_reach(&self, project_id: i64) -> bool {
        self.project_ids.contains(&project_id)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("Missing bearer token")]
    Missing,
    #[error("Invalid or expired access token")]
    Invalid,
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.into())
    }
}

/// Resolves an `Authorization` header value.
pub async fn authenticate(
    store: &Store,
    authorization: Option<&[u8]>,
    now: i64,
) -> Result<Principal, AuthError> {
    let token = authorization.and_then(bearer_token).ok_or(AuthError::Missing)?;
    let hash = token_hash(token);
    store
        .read(move |conn| {
            let Some(row) = sql::find_bearer(conn, &hash)?.filter(|r| r.expires_at > now) else {
                return Err(AuthError::Invalid);
            };
            Ok(Principal {
                family_id: row.family_id,
                user_id: row.grant.user_id,
                organization_id: row.grant.organization_id,
                primary_project_id: row.grant.project_id,
                project_ids: row.project_ids,
                orchestrator: row.grant.orchestrator,
                orchestrator_account: row.grant.orchestrator_account,
                plan: row.plan,
            })
        })
        .await
}

/// `Bearer <token>`, scheme case-insensitive (RFC 6750 2.1).
pub fn bearer_token(value: &[u8]) -> Option<&str> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn parses_bearer_scheme() {
        assert_eq!(bearer_token(b"Bearer abc"), Some("abc"));
        assert_eq!(bearer_token(b"bearer   abc "), Some("abc"));
        assert_eq!(bearer_token(b"Basic abc"), None);
        assert_eq!(bearer_token(b"Bearer"), None);
        assert_eq!(bearer_token(b"Bearer "), None);
        assert_eq!(bearer_token(b"\xff"), None);
    }
}

//! The token endpoint's grants (spec 5.4): redeeming an authorization code and rotating a refresh
//! token. Each runs in one write transaction and consumes its single-use input atomically.

use provisio_protocol::pkce::s256_challenge;
use subtle::ConstantTimeEq;

use super::{
    Internal,
    tokens::{IssuedTokens, issue_family, issue_pair},
};
use crate::{
    audit::Actor,
    crypto::token_hash,
    events::{Event, RevokeReason},
    orchestrators::{Orchestrator, Orchestrators},
    store::{
        Conn, Store, StoreError,
        accounts::{self as accounts_sql, Team},
        oauth as sql,
    },
};

#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// 400 `invalid_grant`.
    #[error("{0}")]
    InvalidGrant(&'static str),
    /// 401 `invalid_request`: the code needs a credential the request lacks.
    #[error("{0}")]
    Unauthenticated(&'static str),
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl From<StoreError> for GrantError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.into())
    }
}

/// Tokens from a redeemed code, with the account they reach.
#[derive(Debug, Clone)]
pub struct CodeTokens {
    pub tokens: IssuedTokens,
    pub organization_id: String,
    pub available_teams: Vec<Team>,
}

/// A decision that may have to commit before it fails (revoking tokens on reuse still refuses).
type Committed<T> = Result<T, GrantError>;

/// Redeems an authorization code. `signed_by` names the orchestrator whose valid signature the
/// request carried, if any. A failed check leaves the code unconsumed; a second redemption revokes
/// every token the first one issued.
pub async fn redeem_code(
    store: &Store,
    orchestrators: &Orchestrators,
    code: &str,
    code_verifier: Option<&str>,
    signed_by: Option<&Orchestrator>,
    now: i64,
) -> Result<CodeTokens, GrantError> {
    let code_hash = token_hash(code);
    let verifier = code_verifier.map(String::from);
    let signed_by = signed_by.map(|o| o.name.clone());
    let orchestrators = orchestrators.clone();
    let actor = Actor::current("");
    store
        .write(move |conn| {
            redeem(
                conn,
                &actor,
                &orchestrators,
                &code_hash,
                verifier.as_deref(),
                signed_by.as_deref(),
                now,
            )
        })
        .await?
}

fn redeem(
    conn: &mut dyn Conn,
    actor: &Actor,
    orchestrators: &Orchestrators,
    code_hash: &str,
    verifier: Option<&str>,
    signed_by: Option<&str>,
    now: i64,
) -> Result<Committed<CodeTokens>, GrantError> {
    const INVALID: GrantError = GrantError::InvalidGrant("Invalid authorization code");
    // The usual case takes one statement: the live code, claimed at once. A check below that
    // fails rolls the claim back with the transaction; a code that could not be claimed is
    // looked up to say why.
    let (stored, claimed) = match sql::claim_code(conn, code_hash, now)? {
        Some(stored) => (stored, true),
        None => (sql::find_code(conn, code_hash)?.ok_or(INVALID)?, false),
    };
    match (&stored.code_challenge, verifier) {
        (Some(_), None) => {
            return Err(GrantError::Unauthenticated("code_verifier is required for PKCE"));
        }
        (Some(challenge), Some(verifier)) => {
            if !bool::from(s256_challenge(verifier).as_bytes().ct_eq(challenge.as_bytes())) {
                return Err(GrantError::InvalidGrant(
                    "code_verifier does not match the code_challenge",
                ));
            }
        }
        (None, _) if signed_by.is_none() => {
            return Err(GrantError::Unauthenticated("Authentication required"));
        }
        (None, _) => {}
    }
    if signed_by.is_some_and(|name| name != stored.grant.orchestrator) || !stored.user_live {
        return Err(INVALID);
    }
    if stored.consumed {
        for family in sql::families_of_code(conn, code_hash)? {
            sql::revoke_family(conn, &family, "code_reuse", now)?;
        }
        actor.grant(conn, "code.reused.tokens_revoked", &stored.grant, now)?;
        tokens_revoked(conn, actor, &stored.grant, RevokeReason::CodeReplay, now)?;
        tracing::warn!(orchestrator = %stored.grant.orchestrator, "authorization code redeemed twice; its tokens are revoked");
        return Ok(Err(GrantError::InvalidGrant("Authorization code has already been used")));
    }
    if !claimed {
        // Found, not consumed, yet not claimable: expired.
        crate::metrics::code_expired();
        return Err(GrantError::InvalidGrant("Authorization code has expired"));
    }
    let Some(orchestrator) = orchestrators.get(&stored.grant.orchestrator) else {
        return Err(INVALID);
    };
    let tokens = issue_family(conn, &stored.grant, Some(code_hash), &orchestrator.tokens, now)?;
    let available_teams = match &stored.available_teams {
        // Connector mode: as the SaaS reported them when the code was issued.
        Some(teams) => serde_json::from_str(teams)
            .map_err(|_| StoreError::Decode { column: 10, expected: "available teams (JSON)" })?,
        None => accounts_sql::available_teams(conn, &stored.grant.user_id)?,
    };
    actor.grant(conn, "code.redeemed", &stored.grant, now)?;
    Ok(Ok(CodeTokens { tokens, organization_id: stored.grant.organization_id, available_teams }))
}

/// Tells the SaaS (events) that a grant's tokens were revoked.
fn tokens_revoked(
    conn: &mut dyn Conn,
    actor: &Actor,
    grant: &sql::Grant,
    reason: RevokeReason,
    now: i64,
) -> Result<(), StoreError> {
    let event = Event::TokensRevoked {
        user_id: &grant.user_id,
        organization_id: &grant.organization_id,
        reason,
    };
    actor.emit(conn, &event, now)
}

/// Rotates a refresh token: the old access token dies at once; presenting an already-rotated
/// refresh token revokes its whole family (OAuth 2.0 Security BCP 4.14).
pub async fn refresh(
    store: &Store,
    orchestrators: &Orchestrators,
    refresh_token: &str,
    now: i64,
) -> Result<IssuedTokens, GrantError> {
    let hash = token_hash(refresh_token);
    let orchestrators = orchestrators.clone();
    let actor = Actor::current("");
    store.write(move |conn| rotate(conn, &actor, &orchestrators, &hash, now)).await?
}

fn rotate(
    conn: &mut dyn Conn,
    actor: &Actor,
    orchestrators: &Orchestrators,
    hash: &str,
    now: i64,
) -> Result<Committed<IssuedTokens>, GrantError> {
    const INVALID: GrantError = GrantError::InvalidGrant("Invalid refresh token");
    let Some(family_id) = sql::rotate_refresh_token(conn, hash, now)? else {
        if let Some(family) = sql::rotated_refresh_family(conn, hash)? {
            if let Some(grant) = sql::live_family(conn, &family)? {
                actor.grant(conn, "refresh.reused.family_revoked", &grant, now)?;
                tokens_revoked(conn, actor, &grant, RevokeReason::RefreshReuse, now)?;
            }
            sql::revoke_family(conn, &family, "refresh_reuse", now)?;
            tracing::warn!(family = %family, "rotated refresh token presented again; its family is revoked");
            return Ok(Err(INVALID));
        }
        return Err(INVALID);
    };
    let Some(grant) = sql::live_family(conn, &family_id)? else {
        return Err(INVALID);
    };
    let Some(orchestrator) = orchestrators.get(&grant.orchestrator) else {
        return Err(INVALID);
    };
    sql::revoke_access_tokens(conn, &family_id, now)?;
    sql::prune_family(conn, &family_id, now)?;
    actor.grant(conn, "token.refreshed", &grant, now)?;
    Ok(Ok(issue_pair(conn, family_id, &orchestrator.tokens, now)?))
}

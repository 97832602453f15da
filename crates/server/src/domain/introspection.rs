//! Key introspection: what a project key or personal key that provisio issued reaches, and
//! whether it is live.

use super::Internal;
use crate::{
    crypto::token_hash,
    store::{Store, StoreError, resources as sql},
};

/// Which kind of key was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    PersonalKey,
    ProjectKey,
}

impl KeyKind {
    /// The `token_type` introspection answers with.
    pub const fn label(self) -> &'static str {
        match self {
            Self::PersonalKey => "personal_key",
            Self::ProjectKey => "project_key",
        }
    }
}

/// What a presented key reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyReach {
    pub kind: KeyKind,
    pub organization_id: String,
    pub project_id: i64,
    /// Neither revoked nor retired, and its resource not removed.
    pub active: bool,
}

/// The key `token` is, tried as a personal key (by hash) first, then as a current project key;
/// `None` when it is neither.
pub async fn introspect(store: &Store, token: &str) -> Result<Option<KeyReach>, Internal> {
    let (token, hash) = (token.to_string(), token_hash(token));
    let reach = store
        .read(move |conn| {
            if let Some(owner) = sql::personal_key_owner(conn, &hash)? {
                return Ok(Some((KeyKind::PersonalKey, owner)));
            }
            Ok::<_, StoreError>(
                sql::project_key_owner(conn, &token)?.map(|o| (KeyKind::ProjectKey, o)),
            )
        })
        .await?;
    Ok(reach.map(|(kind, owner)| KeyReach {
        kind,
        organization_id: owner.organization_id,
        project_id: owner.project_id,
        active: owner.active,
    }))
}

//! Orchestrator signing secrets kept in the database, managed with `provisio admin signing-secret`
//! and valid in addition to the configured ones: add a new secret, let both be valid while the
//! orchestrator switches over, then retire the old one (at once or after an overlap window).
//!
//! Verifying a signature needs the plaintext secret, so it cannot be stored hashed. It is sealed
//! (ChaCha20-Poly1305, a random nonce, the orchestrator's name as associated data) under a key
//! derived from the server secret, which lives in the `settings` table of the same database: this
//! keeps the secret out of a dump of the `signing_secrets` table alone, not out of a dump of the
//! whole database (see docs/security.md).

use serde::Serialize;

use crate::{
    crypto::{RandomError, random_token},
    store::{
        Store, StoreError,
        audit::{self as audit_sql, AuditEvent},
        signing_secrets::{self as sql, SealedSecret},
    },
};

/// What derives the sealing key from the server secret (a fixed domain separator).
const KEY_CONTEXT: &[u8] = b"provisio signing secrets v1";
/// Prefix of generated secrets, like the ones a zero-config server generates.
const GENERATED_PREFIX: &str = "whsec";

#[derive(Debug, thiserror::Error)]
pub enum SigningSecretError {
    #[error("{0}")]
    Invalid(String),
    #[error("no signing secret with id {0}")]
    NotFound(i64),
    #[error("signing secret {0} is already retired")]
    AlreadyRetired(i64),
    #[error("cannot seal the secret")]
    Seal,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// A stored secret as shown to an operator: never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretInfo {
    pub id: i64,
    pub orchestrator: String,
    /// The first few characters, to tell secrets apart.
    pub hint: String,
    pub label: Option<String>,
    pub created_at: i64,
    /// `None`: valid until retired.
    pub retire_at: Option<i64>,
}

impl SecretInfo {
    /// `active`, `retiring` (still valid, until `retire_at`) or `retired`.
    pub fn status(&self, now: i64) -> &'static str {
        match self.retire_at {
            None => "active",
            Some(at) if at > now => "retiring",
            Some(_) => "retired",
        }
    }
}

impl From<SealedSecret> for SecretInfo {
    fn from(s: SealedSecret) -> Self {
        Self {
            id: s.id,
            orchestrator: s.orchestrator,
            hint: s.hint,
            label: s.label,
            created_at: s.created_at,
            retire_at: s.retire_at,
        }
    }
}

/// A secret just added: the only time its plaintext is handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    pub info: SecretInfo,
    pub secret: String,
}

/// A valid secret, unsealed, for verification.
#[derive(Clone, PartialEq, Eq)]
pub struct LiveSecret {
    pub id: i64,
    pub orchestrator: String,
    pub secret: String,
    pub retire_at: Option<i64>,
}

impl std::fmt::Debug for LiveSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LiveSecret({} for {}, redacted)", self.id, self.orchestrator)
    }
}

/// Adds a secret for `orchestrator` (generated when `secret` is `None`); valid from now on, on every
/// instance within its refresh interval.
pub async fn add(
    store: &Store,
    server_secret: &[u8],
    orchestrator: &str,
    secret: Option<String>,
    label: Option<String>,
    now: i64,
) -> Result<Added, SigningSecretError> {
    let orchestrator = orchestrator.trim().to_string();
    if orchestrator.is_empty() {
        return Err(SigningSecretError::Invalid("the orchestrator name is empty".into()));
    }
    let secret = match secret {
        Some(s) if s.trim().is_empty() => {
            return Err(SigningSecretError::Invalid("the secret is empty".into()));
        }
        Some(s) => s,
        None => random_token(GENERATED_PREFIX)?,
    };
    let (nonce, sealed) =
        seal(server_secret, &orchestrator, &secret).ok_or(SigningSecretError::Seal)?;
    let hint = hint(&secret);
    let (o, h, l) = (orchestrator.clone(), hint.clone(), label.clone());
    let id = store
        .write(move |conn| -> Result<i64, StoreError> {
            let id = sql::insert(conn, &o, &h, l.as_deref(), &nonce, &sealed, now)?;
            audit(conn, "signing_secret.added", &o, id, now)?;
            Ok(id)
        })
        .await?;
    Ok(Added {
        info: SecretInfo { id, orchestrator, hint, label, created_at: now, retire_at: None },
        secret,
    })
}

/// Every stored secret (retired ones too), oldest first; only `orchestrator`'s when given.
pub async fn list(
    store: &Store,
    orchestrator: Option<String>,
) -> Result<Vec<SecretInfo>, StoreError> {
    let rows = store.read(move |conn| sql::list(conn, orchestrator.as_deref())).await?;
    Ok(rows.into_iter().map(SecretInfo::from).collect())
}

/// Retires a secret `after_secs` from now (0: at once). Until then it stays valid beside the newer
/// ones: the overlap window. A secret already retired stays retired.
pub async fn retire(
    store: &Store,
    id: i64,
    after_secs: i64,
    now: i64,
) -> Result<SecretInfo, SigningSecretError> {
    if after_secs < 0 {
        return Err(SigningSecretError::Invalid("the overlap window is negative".into()));
    }
    let retire_at = now.saturating_add(after_secs);
    store
        .write(move |conn| -> Result<SecretInfo, SigningSecretError> {
            let Some(row) = sql::find(conn, id)? else {
                return Err(SigningSecretError::NotFound(id));
            };
            if !sql::retire(conn, id, retire_at, now)? {
                return Err(SigningSecretError::AlreadyRetired(id));
            }
            audit(conn, "signing_secret.retired", &row.orchestrator, id, now)?;
            Ok(SecretInfo { retire_at: Some(retire_at), ..row.into() })
        })
        .await
}

/// The secrets valid at `now`, unsealed. One that cannot be unsealed (the server secret changed,
/// or the row was tampered with) is skipped with a warning.
pub async fn load_valid(
    store: &Store,
    server_secret: &[u8],
    now: i64,
) -> Result<Vec<LiveSecret>, StoreError> {
    let rows = store.read(move |conn| sql::valid(conn, now)).await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| match open(server_secret, &row) {
            Some(secret) => Some(LiveSecret {
                id: row.id,
                orchestrator: row.orchestrator,
                secret,
                retire_at: row.retire_at,
            }),
            None => {
                tracing::warn!(id = row.id, "signing secret cannot be unsealed; ignored");
                None
            }
        })
        .collect())
}

/// A duration such as `90`, `90s`, `15m`, `24h` or `7d` (`crate::duration::parse`), in whole
/// seconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let duration = crate::duration::parse(text)?;
    i64::try_from(duration.as_secs()).map_err(|_| format!("{text:?} is too long"))
}

/// At most a quarter of the secret and never more than 12 characters: enough to tell secrets
/// apart, too little to matter.
fn hint(secret: &str) -> String {
    let shown = (secret.chars().count() / 4).min(12);
    let mut hint: String = secret.chars().take(shown).collect();
    hint.push('…');
    hint
}

fn audit(
    conn: &mut dyn crate::store::Conn,
    event: &'static str,
    orchestrator: &str,
    id: i64,
    now: i64,
) -> Result<(), StoreError> {
    crate::metrics::event(event);
    audit_sql::insert(
        conn,
        &AuditEvent {
            at: now,
            event: event.to_string(),
            orchestrator: Some(orchestrator.to_string()),
            user_id: None,
            organization_id: None,
            project_id: None,
            request_id: None,
            detail: Some(serde_json::json!({ "signing_secret_id": id }).to_string()),
        },
    )
}

fn seal(server_secret: &[u8], orchestrator: &str, secret: &str) -> Option<(String, String)> {
    crate::crypto::seal(server_secret, KEY_CONTEXT, orchestrator.as_bytes(), secret.as_bytes())
}

fn open(server_secret: &[u8], row: &SealedSecret) -> Option<String> {
    let aad = row.orchestrator.as_bytes();
    let plain =
        crate::crypto::open(server_secret, KEY_CONTEXT, aad, &row.nonce, &row.secret_sealed)?;
    String::from_utf8(plain).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_the_same_key_and_orchestrator() {
        let (nonce, secret_sealed) = seal(b"server", "stripe", "whsec_abc").unwrap();
        assert!(!secret_sealed.contains("whsec_abc"));
        let row = SealedSecret {
            id: 1,
            orchestrator: "stripe".into(),
            hint: String::new(),
            label: None,
            nonce,
            secret_sealed,
            created_at: 0,
            retire_at: None,
        };
        assert_eq!(open(b"server", &row).as_deref(), Some("whsec_abc"));
        assert_eq!(open(b"other", &row), None);
        assert_eq!(open(b"server", &SealedSecret { orchestrator: "acme".into(), ..row }), None);
    }

    #[test]
    fn hints_show_little_and_durations_parse() {
        assert_eq!(hint("whsec_admin"), "wh…");
        assert_eq!(hint(&"x".repeat(80)), format!("{}…", "x".repeat(12)));
        assert_eq!(parse_duration("24h"), Ok(86_400));
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("h").is_err());
    }
}

//! Standard Webhooks signing for the calls provisio makes to the SaaS (operations and events):
//! `webhook-id`, `webhook-timestamp`, and `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "{id}.{timestamp}.{body}">`, one `v1,` entry per configured secret while they rotate. The HMAC
//! itself is the `standardwebhooks` crate's, so provisio signs exactly as the SaaS's library checks.

use std::sync::Arc;

use base64::{Engine, engine::general_purpose::STANDARD};
use sha2::{Digest, Sha256};
use standardwebhooks::Webhook;

/// The secret's prefix, as Standard Webhooks writes it.
const PREFIX: &str = "whsec_";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignerError {
    #[error("no secret")]
    Empty,
    #[error("secret #{0} does not start with whsec_")]
    Prefix(usize),
    #[error("secret #{0} is not base64 after whsec_")]
    Base64(usize),
    #[error("secret #{0} decodes to {1} bytes; Standard Webhooks secrets are 24 to 64 bytes")]
    Length(usize, usize),
    #[error("the body is not UTF-8")]
    Payload,
}

/// The configured secrets, ready to sign. Never printed.
#[derive(Clone)]
pub struct Signer {
    keys: Arc<Vec<Webhook>>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({} secret(s))", self.keys.len())
    }
}

/// The three headers of one signed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub id: String,
    pub timestamp: i64,
    pub signature: String,
}

impl Signer {
    /// Space-separated `whsec_` secrets (several while rotating).
    pub fn from_secrets(value: &str) -> Result<Self, SignerError> {
        let keys = value
            .split_whitespace()
            .enumerate()
            .map(|(i, secret)| {
                let n = i + 1;
                let encoded = secret.strip_prefix(PREFIX).ok_or(SignerError::Prefix(n))?;
                let bytes = STANDARD.decode(encoded).map_err(|_| SignerError::Base64(n))?;
                if !(24..=64).contains(&bytes.len()) {
                    return Err(SignerError::Length(n, bytes.len()));
                }
                Webhook::from_bytes(bytes).map_err(|_| SignerError::Base64(n))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(SignerError::Empty);
        }
        Ok(Self { keys: Arc::new(keys) })
    }

    /// Signs one attempt at `timestamp` (every attempt is signed anew, so a retry is fresh).
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> Result<Signed, SignerError> {
        let signature = self
            .keys
            .iter()
            .map(|key| key.sign(id, timestamp, body).map_err(|_| SignerError::Payload))
            .collect::<Result<Vec<_>, _>>()?
            .join(" ");
        Ok(Signed { id: id.to_string(), timestamp, signature })
    }
}

/// A `webhook-id` for one operation: `op_` + base64url(SHA-256) over what provisio's own state says
/// the operation is. Each part is length-prefixed, so no two different lists hash alike, and no raw
/// orchestrator value reaches the SaaS.
pub fn operation_id(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    format!("op_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_published_test_vector() {
        // The Standard Webhooks specification's example.
        let signer = Signer::from_secrets("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signed = signer
            .sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#)
            .unwrap();
        assert_eq!(signed.signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn several_secrets_sign_once_each() {
        let signer = Signer::from_secrets(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw  whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        )
        .unwrap();
        let signed = signer
            .sign(
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1649367553,
                br#"{"email":"test@example.com","username":"test_user"}"#,
            )
            .unwrap();
        let entries: Vec<&str> = signed.signature.split(' ').collect();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1], "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    }

    #[test]
    fn malformed_secrets_are_refused() {
        assert_eq!(Signer::from_secrets("  ").unwrap_err(), SignerError::Empty);
        assert_eq!(Signer::from_secrets("abc").unwrap_err(), SignerError::Prefix(1));
        assert_eq!(Signer::from_secrets("whsec_%%%").unwrap_err(), SignerError::Base64(1));
        assert_eq!(Signer::from_secrets("whsec_c2hvcnQ=").unwrap_err(), SignerError::Length(1, 5));
    }

    #[test]
    fn operation_ids_are_stable_and_unambiguous() {
        let a = operation_id(&["stripe", "acct_1", "users.create", "req_1"]);
        assert_eq!(a, operation_id(&["stripe", "acct_1", "users.create", "req_1"]));
        assert!(a.starts_with("op_") && a.len() == 3 + 43);
        assert_ne!(a, operation_id(&["stripe", "acct_1", "users.create", "req_2"]));
        assert_ne!(operation_id(&["ab", "c"]), operation_id(&["a", "bc"]));
    }
}

//! PKCE (RFC 7636) for the orchestrator side: a random verifier and its `S256` challenge.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use provisio_protocol::pkce::s256_challenge;

/// A fresh verifier (43 base64url characters from 32 random bytes) and its challenge.
pub fn pair() -> Result<(String, String), getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let verifier = URL_SAFE_NO_PAD.encode(bytes);
    let challenge = s256_challenge(&verifier);
    Ok((verifier, challenge))
}

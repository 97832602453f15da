//! Random tokens and their at-rest form. Tokens are `<prefix>_<base64url of 32 random bytes>`; only
//! their SHA-256 is ever stored. Values that must be read back (recorded answers, signing secrets)
//! are sealed instead ([`seal`]).

use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use chacha20poly1305::{
    ChaCha20Poly1305, Key, Nonce,
    aead::{Aead, KeyInit, Payload},
};
use hmac::{Hmac, KeyInit as _, Mac};
use sha2::{Digest, Sha256};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomError(String);

/// 32 random bytes, base64url without padding (43 characters).
pub fn random_secret() -> Result<String, RandomError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| RandomError(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// A prefixed random token, e.g. `whsec_…`.
pub fn random_token(prefix: &str) -> Result<String, RandomError> {
    Ok(format!("{prefix}_{}", random_secret()?))
}

/// A public identifier such as `org_692b8c3e00a1f3a9c0b2d4e6`, not secret: the second it was made
/// (`now`, 8 hex digits), the moment within that second by the system clock (4 hex digits, in
/// 65,536ths), then 6 random bytes. Identifiers made one after the other sort one after the other,
/// so the tables and indexes keyed by them grow at their end, where one page takes a whole burst
/// of rows, instead of each insert changing a page of its own (the SQLite write path writes every
/// changed page).
pub fn random_id(prefix: &str, now: i64) -> Result<String, RandomError> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).map_err(|e| RandomError(e.to_string()))?;
    Ok(id_at(prefix, now, nanos, bytes))
}

fn id_at(prefix: &str, now: i64, nanos: u32, random: [u8; 6]) -> String {
    let second = u32::try_from(now.max(0)).unwrap_or(u32::MAX);
    let moment = u64::from(nanos.min(999_999_999)) * 65_536 / 1_000_000_000;
    format!("{prefix}_{second:08x}{moment:04x}{}", hex::encode(random))
}

/// The at-rest form of a token: lowercase hex SHA-256.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Seals `plaintext` with ChaCha20-Poly1305 under the key HMAC-SHA256(`server_secret`, `context`),
/// a random nonce and `aad` bound to it: (nonce, ciphertext), both base64. `None` only when the
/// random number generator fails.
pub fn seal(
    server_secret: &[u8],
    context: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Option<(String, String)> {
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).ok()?;
    let payload = Payload { msg: plaintext, aad };
    let sealed =
        cipher(server_secret, context)?.encrypt(Nonce::from_slice(&nonce), payload).ok()?;
    Some((STANDARD.encode(nonce), STANDARD.encode(sealed)))
}

/// Opens what [`seal`] made with the same secret, context and `aad`; `None` for anything else.
pub fn open(
    server_secret: &[u8],
    context: &[u8],
    aad: &[u8],
    nonce: &str,
    sealed: &str,
) -> Option<Vec<u8>> {
    let nonce = STANDARD.decode(nonce).ok()?;
    let sealed = STANDARD.decode(sealed).ok()?;
    if nonce.len() != 12 {
        return None;
    }
    let payload = Payload { msg: &sealed, aad };
    cipher(server_secret, context)?.decrypt(Nonce::from_slice(&nonce), payload).ok()
}

fn cipher(server_secret: &[u8], context: &[u8]) -> Option<ChaCha20Poly1305> {
    let mut mac = Hmac::<Sha256>::new_from_slice(server_secret).ok()?;
    mac.update(context);
    Some(ChaCha20Poly1305::new(Key::from_slice(&mac.finalize().into_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_and_hash_stably() {
        let a = random_token("at").unwrap();
        let b = random_token("at").unwrap();
        assert!(a.starts_with("at_") && a.len() == 3 + 43);
        assert_ne!(a, b);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn ids_are_the_second_the_moment_within_it_and_random_bytes() {
        let a = random_id("org", 0x692b_8c3e).unwrap();
        assert!(a.starts_with("org_692b8c3e") && a.len() == 4 + 24, "{a}");
        assert!(a[4..].bytes().all(|b| b.is_ascii_hexdigit()), "{a}");
        assert_ne!(a, random_id("org", 0x692b_8c3e).unwrap());
        assert!(random_id("org", 0x692b_8c3f).unwrap() > a);
        let at = |second, nanos, last| id_at("usr", second, nanos, [0xff, 0, 0, 0, 0, last]);
        assert_eq!(at(0x692b_8c3e, 0, 1), "usr_692b8c3e0000ff0000000001");
        assert_eq!(at(0x692b_8c3e, 500_000_000, 1), "usr_692b8c3e8000ff0000000001");
        assert_eq!(at(0x692b_8c3e, 999_999_999, 1), "usr_692b8c3effffff0000000001");
        // Later in the same second sorts later, whatever the random bytes.
        assert!(at(0x692b_8c3e, 20_000, 0) > at(0x692b_8c3e, 0, 9));
        assert!(at(0x692b_8c3f, 0, 0) > at(0x692b_8c3e, 999_999_999, 9));
        assert_eq!(at(-5, 0, 0), "usr_000000000000ff0000000000");
    }

    #[test]
    fn sealed_values_open_only_with_the_same_secret_context_and_aad() {
        let (nonce, sealed) = seal(b"server", b"ctx", b"aad", b"plain").unwrap();
        assert_eq!(
            open(b"server", b"ctx", b"aad", &nonce, &sealed).as_deref(),
            Some(&b"plain"[..])
        );
        assert_eq!(open(b"other", b"ctx", b"aad", &nonce, &sealed), None);
        assert_eq!(open(b"server", b"ctx2", b"aad", &nonce, &sealed), None);
        assert_eq!(open(b"server", b"ctx", b"", &nonce, &sealed), None);
        assert_eq!(open(b"server", b"ctx", b"aad", "AAAA", &sealed), None);
        assert_ne!(seal(b"server", b"ctx", b"aad", b"plain").unwrap().0, nonce, "fresh nonces");
    }
}

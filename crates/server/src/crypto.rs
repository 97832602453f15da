//! Random tokens and their at-rest form. Tokens are `<prefix>_<base64url of 32 random bytes>`, and
//! those looked up by hash also say when they were made ([`ordered_token`]); only their hash is
//! ever stored ([`token_hash`]). Values that must be read back (recorded answers, signing secrets)
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

/// The length of [`random_secret`].
const SECRET_CHARS: usize = 43;
/// The hex digits that say when something was made: the second (8), then the moment within it (4).
const WHEN_DIGITS: usize = 12;

/// A prefixed random token, e.g. `whsec_…`.
pub fn random_token(prefix: &str) -> Result<String, RandomError> {
    Ok(format!("{prefix}_{}", random_secret()?))
}

/// A secret that says when it was made: [`WHEN_DIGITS`] hex digits (as in [`random_id`]), then a
/// [`random_secret`]. For secrets stored by their hash and looked up by it: [`token_hash`] keeps
/// those digits in front of the hash, so the index of a table of them takes new ones at its end
/// instead of changing a page of its own somewhere in the middle for each (what the SQLite write
/// path pays for). The 32 random bytes are the secret; when it was made is not.
fn ordered_secret() -> Result<String, RandomError> {
    let now = since_epoch();
    let second = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    Ok(format!("{}{}", when(second, now.subsec_nanos()), random_secret()?))
}

/// [`ordered_secret`] with a prefix, e.g. `pvat_6b0d2e5a8000…`.
pub fn ordered_token(prefix: &str) -> Result<String, RandomError> {
    Ok(format!("{prefix}_{}", ordered_secret()?))
}

/// A public identifier such as `org_692b8c3e00a1f3a9c0b2d4e6`, not secret: the second it was made
/// (`now`, 8 hex digits), the moment within that second by the system clock (4 hex digits, in
/// 65,536ths), then 6 random bytes. Identifiers made one after the other sort one after the other,
/// so the tables and indexes keyed by them grow at their end, where one page takes a whole burst
/// of rows, instead of each insert changing a page of its own (the SQLite write path writes every
/// changed page).
pub fn random_id(prefix: &str, now: i64) -> Result<String, RandomError> {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).map_err(|e| RandomError(e.to_string()))?;
    Ok(format!("{prefix}_{}{}", when(now, since_epoch().subsec_nanos()), hex::encode(bytes)))
}

/// `second` (8 hex digits), then `nanos` into it in 65,536ths (4).
fn when(second: i64, nanos: u32) -> String {
    let second = u32::try_from(second.max(0)).unwrap_or(u32::MAX);
    let moment = u64::from(nanos.min(999_999_999)) * 65_536 / 1_000_000_000;
    format!("{second:08x}{moment:04x}")
}

fn since_epoch() -> std::time::Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// The at-rest form of a token: lowercase hex SHA-256, behind the digits of when it was made for
/// one from [`ordered_secret`]. Such a token is known by its shape: [`WHEN_DIGITS`] lowercase hex
/// digits right before the [`SECRET_CHARS`] random characters it ends with, where any other token
/// has its prefix's `_`, or nothing.
pub fn token_hash(token: &str) -> String {
    let hash = sha256_hex(token.as_bytes());
    let start = token.len().checked_sub(SECRET_CHARS + WHEN_DIGITS);
    match start.and_then(|start| token.get(start..start + WHEN_DIGITS)) {
        Some(when) if when.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) => {
            format!("{when}{hash}")
        }
        _ => hash,
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
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
            sha256_hex(b"abc"),
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
        assert_eq!(when(0x692b_8c3e, 0), "692b8c3e0000");
        assert_eq!(when(0x692b_8c3e, 500_000_000), "692b8c3e8000");
        assert_eq!(when(0x692b_8c3e, 999_999_999), "692b8c3effff");
        assert_eq!(when(0x692b_8c3e, 1_500_000_000), "692b8c3effff");
        assert!(when(0x692b_8c3e, 20_000) > when(0x692b_8c3e, 0));
        assert!(when(0x692b_8c3f, 0) > when(0x692b_8c3e, 999_999_999));
        assert_eq!(when(-5, 0), "000000000000");
    }

    #[test]
    fn ordered_tokens_keep_when_they_were_made_in_front_of_their_hash() {
        let token = ordered_token("pvat").unwrap();
        assert!(token.starts_with("pvat_") && token.len() == 5 + 12 + 43, "{token}");
        let hash = token_hash(&token);
        assert_eq!(hash, format!("{}{}", &token[5..17], sha256_hex(token.as_bytes())));
        let code = ordered_secret().unwrap();
        assert_eq!(code.len(), 12 + 43);
        assert_eq!(token_hash(&code), format!("{}{}", &code[..12], sha256_hex(code.as_bytes())));
        // Tokens made before keep the plain hash, whatever their prefix: the character before
        // their 43 random ones is the prefix's `_`, or there is none.
        for old in [
            format!("pvat_{}", random_secret().unwrap()),
            random_secret().unwrap(),
            format!("0123456789abcdef_{}", random_secret().unwrap()),
            format!("x{}", random_secret().unwrap()),
        ] {
            assert_eq!(token_hash(&old), sha256_hex(old.as_bytes()), "{old}");
        }
        assert_eq!(token_hash("abc"), sha256_hex(b"abc"));
        assert_eq!(token_hash("é".repeat(40).as_str()).len(), 64, "not on a character boundary");
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

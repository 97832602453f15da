//! Properties of `Stripe-Signature` v1 over arbitrary bodies, secrets, timestamps and headers.

use hmac::{Hmac, KeyInit, Mac};
use proptest::prelude::*;
use provisio_protocol::signature::{
    DEFAULT_TOLERANCE_SECS, SignatureError, SignatureHeader, SigningKeys, header_value, sign,
};
use sha2::Sha256;

const TOLERANCE: u64 = DEFAULT_TOLERANCE_SECS;
const MAX_OFFSET: i64 = DEFAULT_TOLERANCE_SECS as i64;

/// Timestamps the header grammar accepts: up to 18 decimal digits.
fn timestamp() -> impl Strategy<Value = i64> {
    0..=999_999_999_999_999_999i64
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..2048)
}

/// Real signing secrets are printable strings (`whsec_…`). Arbitrary bytes would make "a different
/// secret fails" false: HMAC pads short keys with zeros, so `"k"` and `"k\0"` are the same key.
fn secret() -> impl Strategy<Value = String> {
    "[ -~]{1,80}"
}

fn verify(keys: &SigningKeys, header: &str, body: &[u8], now: i64) -> Result<i64, SignatureError> {
    keys.verify(Some(header.as_bytes()), body, now, TOLERANCE)
}

/// An HMAC-SHA256 written from the spec's words, independent of the crate's code path.
fn reference(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

proptest! {
    #[test]
    fn sign_matches_the_spec_for_any_timestamp(
        secret in prop::collection::vec(any::<u8>(), 0..100),
        timestamp in any::<i64>(),
        body in body(),
    ) {
        prop_assert_eq!(sign(&secret, timestamp, &body), reference(&secret, timestamp, &body));
    }

    #[test]
    fn round_trip(
        secret in prop::collection::vec(any::<u8>(), 0..100),
        t in timestamp(),
        offset in -MAX_OFFSET..=MAX_OFFSET,
        body in body(),
    ) {
        let header = header_value(&[&secret], t, &body);
        prop_assert_eq!(verify(&SigningKeys::new(&[&secret]), &header, &body, t + offset), Ok(t));
        let parsed = SignatureHeader::parse(header.as_bytes()).unwrap();
        prop_assert_eq!(parsed.timestamp, t);
        prop_assert_eq!(hex::encode(parsed.signatures[0]), sign(&secret, t, &body));
        let upper = format!("t={t},v1={}", sign(&secret, t, &body).to_uppercase());
        prop_assert_eq!(verify(&SigningKeys::new(&[&secret]), &upper, &body, t), Ok(t));
    }

    #[test]
    fn any_changed_body_byte_fails(
        secret in secret(),
        t in timestamp(),
        body in prop::collection::vec(any::<u8>(), 1..2048),
        index in any::<prop::sample::Index>(),
        flip in 1..=u8::MAX,
    ) {
        let header = header_value(&[&secret], t, &body);
        let mut tampered = body.clone();
        tampered[index.index(body.len())] ^= flip;
        prop_assert_eq!(
            verify(&SigningKeys::new(&[&secret]), &header, &tampered, t),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_changed_timestamp_inside_tolerance_fails(
        secret in secret(),
        t in MAX_OFFSET..999_999_999_999_999_999i64 - MAX_OFFSET,
        shift in (-MAX_OFFSET..=MAX_OFFSET).prop_filter("a change", |s| *s != 0),
        body in body(),
    ) {
        let forged = format!("t={},v1={}", t + shift, sign(secret.as_bytes(), t, &body));
        prop_assert_eq!(
            verify(&SigningKeys::new(&[&secret]), &forged, &body, t),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_different_secret_fails(
        (signer, verifier) in (secret(), secret()).prop_filter("different", |(a, b)| a != b),
        t in timestamp(),
        body in body(),
    ) {
        let header = header_value(&[&signer], t, &body);
        prop_assert_eq!(
            verify(&SigningKeys::new(&[&verifier]), &header, &body, t),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn rotation_double_signature_verifies_against_either_secret(
        (old, new, other) in (secret(), secret(), secret())
            .prop_filter("distinct", |(a, b, c)| a != b && a != c && b != c),
        t in timestamp(),
        body in body(),
    ) {
        let header = header_value(&[&old, &new], t, &body);
        for configured in [vec![&old], vec![&new], vec![&old, &new], vec![&other, &new]] {
            prop_assert_eq!(verify(&SigningKeys::new(&configured), &header, &body, t), Ok(t));
        }
        prop_assert_eq!(
            verify(&SigningKeys::new(&[&other]), &header, &body, t),
            Err(SignatureError::Mismatch)
        );
        prop_assert_eq!(SignatureHeader::parse(header.as_bytes()).unwrap().signatures.len(), 2);
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        header in prop::collection::vec(any::<u8>(), 0..512),
        body in prop::collection::vec(any::<u8>(), 0..64),
        now in any::<i64>(),
        tolerance in any::<u64>(),
    ) {
        let _ = SignatureHeader::parse(&header);
        let _ = SigningKeys::new(&["s"]).verify(Some(&header), &body, now, tolerance);
    }

    #[test]
    fn header_alphabet_never_panics(
        header in "[tv1=,0-9a-fA-F ]{0,300}",
        now in any::<i64>(),
        tolerance in any::<u64>(),
    ) {
        let parsed = SignatureHeader::parse(header.as_bytes());
        let verified = SigningKeys::new(&["s"]).verify(Some(header.as_bytes()), b"", now, tolerance);
        if parsed.is_err() {
            prop_assert_eq!(verified, Err(SignatureError::Malformed));
        }
    }

    /// Headers assembled from near-valid items reach the paths a random string rarely does: a
    /// well-formed value, a duplicate `t`, a `v1` one digit short or long, stray spaces and commas.
    #[test]
    fn near_valid_headers_never_panic(
        items in prop::collection::vec(
            prop_oneof![
                "t=[0-9]{0,20}",
                " ?t ?= ?[0-9]{1,19} ?",
                "v1=[0-9a-fA-F]{63,65}",
                "v1=[0-9a-gA-G]{64}",
                "v0=[0-9a-f]{0,64}",
                "[tv1 =]{0,4}",
            ],
            0..6,
        ),
        now in any::<i64>(),
    ) {
        let header = items.join(",");
        if let Ok(parsed) = SignatureHeader::parse(header.as_bytes()) {
            prop_assert!(!parsed.signatures.is_empty());
            prop_assert!(parsed.timestamp >= 0);
        }
        let _ = SigningKeys::new(&["s"]).verify(Some(header.as_bytes()), b"", now, TOLERANCE);
    }
}

//! Property checks on untrusted input, shared by the fuzz targets in `fuzz/` and by the test that
//! replays their committed corpora (`tests/it/fuzz_corpus.rs`), so that `cargo test` keeps every
//! corpus file as a regression test. Each check takes arbitrary bytes and panics (an `assert!`) only
//! when a property is broken; no input may make the code under test panic either.

use crate::signature::{SignatureError, SignatureHeader, SigningKeys, header_value, sign};

/// The secret the checks verify with; the fuzzer never sees it, so it cannot forge a signature.
const SECRET: &[u8] = b"whsec_fuzz_secret";
const OTHER_SECRET: &[u8] = b"whsec_fuzz_other";
const BODY: &[u8] = br#"{"email":"a@b.example"}"#;
const TOLERANCE: u64 = 300;

/// `Stripe-Signature` on arbitrary bytes.
///
/// 1. The bytes as a header value: parsing never panics; an accepted header has a timestamp of at
///    most 18 digits and at least one digest, and its canonical rendering parses to the same value;
///    verification succeeds only with a digest of the right secret over this body and timestamp,
///    within the tolerance, and never with another secret.
/// 2. The bytes as secret, body and timestamp: a header made with [`header_value`] verifies with that
///    secret at any time within the tolerance, and not with another secret, another body or outside
///    the tolerance.
/// 3. The bytes as extra items in front of a valid header: the result is exactly what the grammar
///    says (every item needs `=`; a second `t` is refused; unknown keys are ignored).
pub fn signature_header(data: &[u8]) {
    arbitrary_header(data);
    signed_with_fuzzed_parts(data);
    extra_items_before_a_valid_header(data);
}

fn arbitrary_header(data: &[u8]) {
    let parsed = SignatureHeader::parse(data);
    if let Ok(header) = &parsed {
        assert!(!header.signatures.is_empty());
        assert!((0..1_000_000_000_000_000_000).contains(&header.timestamp));
        let mut canonical = format!("t={}", header.timestamp);
        for digest in &header.signatures {
            canonical.push_str(",v1=");
            canonical.push_str(&hex::encode(digest));
        }
        assert_eq!(SignatureHeader::parse(canonical.as_bytes()).as_ref(), Ok(header));
    }
    let keys = SigningKeys::new(&[SECRET]);
    for now in [0, 1_767_225_600, parsed.as_ref().map_or(0, |h| h.timestamp)] {
        let verdict = keys.verify(Some(data), BODY, now, TOLERANCE);
        match (&parsed, verdict) {
            (Err(e), verdict) => assert_eq!(verdict, Err(*e)),
            (Ok(header), Ok(signed)) => {
                assert_eq!(signed, header.timestamp);
                assert!(header.timestamp.abs_diff(now) <= TOLERANCE);
                let expected = sign(SECRET, header.timestamp, BODY);
                assert!(header.signatures.iter().any(|d| hex::encode(d) == expected));
            }
            (Ok(header), Err(SignatureError::OutsideTolerance)) => {
                assert!(header.timestamp.abs_diff(now) > TOLERANCE);
            }
            (Ok(header), Err(SignatureError::Mismatch)) => {
                assert!(header.timestamp.abs_diff(now) <= TOLERANCE);
                let expected = sign(SECRET, header.timestamp, BODY);
                assert!(header.signatures.iter().all(|d| hex::encode(d) != expected));
            }
            (Ok(_), Err(e)) => unreachable_verdict(e),
        }
        // Nobody knows this secret's digests, so nothing the fuzzer writes can verify with it.
        let other = SigningKeys::new(&[OTHER_SECRET]).verify(Some(data), BODY, now, TOLERANCE);
        assert!(other.is_err());
    }
}

fn signed_with_fuzzed_parts(data: &[u8]) {
    let (secret, rest) = data.split_at(data.len() / 3);
    let (stamp, body) = rest.split_at(rest.len().min(8));
    let mut digits = [0u8; 8];
    digits[..stamp.len()].copy_from_slice(stamp);
    // Any timestamp the parser accepts: 0 ..= 10^18 - 1.
    let timestamp =
        i64::try_from(u64::from_le_bytes(digits) % 1_000_000_000_000_000_000).unwrap_or_default();
    let header = header_value(&[secret], timestamp, body);
    let keys = SigningKeys::new(&[secret]);
    let verify = |keys: &SigningKeys, body: &[u8], now: i64| {
        keys.verify(Some(header.as_bytes()), body, now, TOLERANCE)
    };
    for now in [timestamp, timestamp - 300, timestamp + 300] {
        assert_eq!(verify(&keys, body, now), Ok(timestamp));
    }
    for now in [timestamp - 301, timestamp + 301] {
        assert_eq!(verify(&keys, body, now), Err(SignatureError::OutsideTolerance));
    }
    let mut other_secret = secret.to_vec();
    other_secret.push(b'x');
    assert_eq!(
        verify(&SigningKeys::new(&[other_secret]), body, timestamp),
        Err(SignatureError::Mismatch)
    );
    let mut other_body = body.to_vec();
    other_body.push(b' ');
    assert_eq!(verify(&keys, &other_body, timestamp), Err(SignatureError::Mismatch));
    // Rotation: the right secret among others still verifies.
    let rotating = SigningKeys::new(&[OTHER_SECRET, secret]);
    assert_eq!(verify(&rotating, body, timestamp), Ok(timestamp));
}

fn extra_items_before_a_valid_header(data: &[u8]) {
    const NOW: i64 = 1_767_225_600;
    let mut header = data.to_vec();
    header.push(b',');
    header.extend_from_slice(header_value(&[SECRET], NOW, BODY).as_bytes());
    let verdict = SigningKeys::new(&[SECRET]).verify(Some(&header), BODY, NOW, TOLERANCE);
    let well_formed = data.split(|&b| b == b',').all(|item| {
        let item = item.trim_ascii();
        match item.iter().position(|&b| b == b'=') {
            Some(eq) => &item[..eq] != b"t",
            None => false,
        }
    });
    let expected = if well_formed { Ok(NOW) } else { Err(SignatureError::Malformed) };
    assert_eq!(verdict, expected);
}

#[allow(clippy::panic)]
fn unreachable_verdict(e: SignatureError) {
    panic!("a parsed header cannot fail verification as {e:?}");
}

//! `Stripe-Signature` v1 (spec 3.1): `t=<unix seconds>,v1=<hex>[,v1=<hex>…]`, where each `v1` is
//! HMAC-SHA256 over `"<t>." + raw body bytes`, keyed with a signing secret's UTF-8 bytes.
//!
//! A request passes when any `v1` matches any configured secret within the tolerance window; that is
//! how secrets rotate (the orchestrator double-signs while the provider knows both).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";
/// How far a timestamp may be from now, in either direction (provisio choice; configurable).
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

type HmacSha256 = Hmac<Sha256>;
const DIGEST_LEN: usize = 32;

/// Why a signature was refused. All of them answer the same 401 on the wire; the reason is for logs
/// and metrics only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no Stripe-Signature header")]
    Missing,
    #[error("malformed Stripe-Signature header")]
    Malformed,
    #[error("timestamp outside the tolerance window")]
    OutsideTolerance,
    #[error("no signature matches a configured secret")]
    Mismatch,
}

impl SignatureError {
    /// A short label for metrics.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::OutsideTolerance => "timestamp",
            Self::Mismatch => "mismatch",
        }
    }
}

/// A parsed `Stripe-Signature` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureHeader {
    pub timestamp: i64,
    pub signatures: Vec<[u8; DIGEST_LEN]>,
}

impl SignatureHeader {
    /// Parses the header value as raw bytes (a header need not be UTF-8). Items are comma-separated
    /// `key=value` pairs with optional surrounding spaces; unknown keys are ignored; exactly one `t`
    /// and at least one well-formed `v1` (64 hex digits, either case) are required; `v1` values that
    /// are not well-formed are skipped.
    pub fn parse(value: &[u8]) -> Result<Self, SignatureError> {
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for item in value.split(|&b| b == b',') {
            let item = item.trim_ascii();
            let Some(eq) = item.iter().position(|&b| b == b'=') else {
                return Err(SignatureError::Malformed);
            };
            let (key, val) = (&item[..eq], &item[eq + 1..]);
            match key {
                b"t" if timestamp.replace(parse_timestamp(val)?).is_some() => {
                    return Err(SignatureError::Malformed);
                }
                b"t" => {}
                // Every well-formed `v1` is collected; one that is not 64 hex digits cannot match any
                // secret, so it is skipped rather than spoiling a valid one beside it (spec 3.1).
                b"v1" => signatures.extend(decode_digest(val)),
                _ => {}
            }
        }
        match timestamp {
            Some(timestamp) if !signatures.is_empty() => Ok(Self { timestamp, signatures }),
            _ => Err(SignatureError::Malformed),
        }
    }
}

/// Exactly 64 hex digits, either case, to a digest. Table-driven, with one validity check at the
/// end instead of a checked branch per digit: this runs on every request.
fn decode_digest(hex: &[u8]) -> Option<[u8; DIGEST_LEN]> {
    let (pairs, []) = hex.as_chunks::<2>() else {
        return None;
    };
    if pairs.len() != DIGEST_LEN {
        return None;
    }
    let mut digest = [0u8; DIGEST_LEN];
    let mut invalid = 0u8;
    for (byte, &[hi, lo]) in digest.iter_mut().zip(pairs) {
        let (hi, lo) = (NIBBLES[usize::from(hi)], NIBBLES[usize::from(lo)]);
        invalid |= hi | lo;
        *byte = (hi << 4) | (lo & 0x0f);
    }
    (invalid & INVALID == 0).then_some(digest)
}

/// Marks a byte that is not a hex digit in [`NIBBLES`].
const INVALID: u8 = 0x80;

/// The value of each hex digit byte; [`INVALID`] for every other byte.
const NIBBLES: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

fn parse_timestamp(digits: &[u8]) -> Result<i64, SignatureError> {
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(SignatureError::Malformed);
    }
    Ok(digits.iter().fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
}

/// The signing secrets of one orchestrator, each pre-keyed once so that a verification costs one
/// HMAC pass over the payload per secret and nothing more.
#[derive(Clone)]
pub struct SigningKeys {
    keys: Vec<HmacSha256>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKeys({} secret(s), redacted)", self.keys.len())
    }
}

impl SigningKeys {
    /// Keys for the given secrets. An empty list is allowed and verifies nothing.
    pub fn new<S: AsRef<[u8]>>(secrets: &[S]) -> Self {
        Self { keys: secrets.iter().map(|s| keyed(s.as_ref())).collect() }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Verifies a header (as received, `None` when absent) over the raw body at time `now`, and
    /// answers the timestamp that was signed: with the body it names the signed request whatever
    /// else the header carries (extra or upper-case `v1` values, spaces, unknown keys).
    pub fn verify(
        &self,
        header: Option<&[u8]>,
        body: &[u8],
        now: i64,
        tolerance_secs: u64,
    ) -> Result<i64, SignatureError> {
        let header = SignatureHeader::parse(header.ok_or(SignatureError::Missing)?)?;
        if header.timestamp.abs_diff(now) > tolerance_secs {
            return Err(SignatureError::OutsideTolerance);
        }
        let mut matched = subtle::Choice::from(0);
        for key in &self.keys {
            let expected = digest(key.clone(), header.timestamp, body);
            for candidate in &header.signatures {
                matched |= digests_equal(&expected, candidate);
            }
        }
        if bool::from(matched) { Ok(header.timestamp) } else { Err(SignatureError::Mismatch) }
    }
}

/// Constant-time equality of two digests: the byte differences are OR-folded without branching and
/// only the fold goes through `subtle`, which is cheaper than `subtle`'s byte-by-byte slice compare
/// (one optimisation barrier per byte) and just as free of early exits.
fn digests_equal(a: &[u8; DIGEST_LEN], b: &[u8; DIGEST_LEN]) -> subtle::Choice {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    diff.ct_eq(&0)
}

fn keyed(secret: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length (long ones are hashed first), so `new_from_slice` never fails
    // for it; the fallback only satisfies the type and is never reached.
    HmacSha256::new_from_slice(secret).unwrap_or_else(|_| HmacSha256::new(&Default::default()))
}

fn digest(mut mac: HmacSha256, timestamp: i64, body: &[u8]) -> [u8; DIGEST_LEN] {
    mac.update(Prefix::new(timestamp).as_bytes());
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// `"<t>."`, the decimal timestamp and its dot, written on the stack: this runs for every request,
/// and `to_string` would allocate.
struct Prefix {
    buf: [u8; 21],
    start: usize,
}

impl Prefix {
    fn new(timestamp: i64) -> Self {
        // 19 digits and a sign at most (i64::MIN), then the dot.
        let mut buf = [0u8; 21];
        let mut start = buf.len() - 1;
        buf[start] = b'.';
        let mut rest = timestamp.unsigned_abs();
        loop {
            start -= 1;
            buf[start] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        if timestamp < 0 {
            start -= 1;
            buf[start] = b'-';
        }
        Self { buf, start }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

/// The lowercase hex `v1` value for one secret.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut text = [0u8; 64];
    // 32 bytes always fit 64 hex digits, which are ASCII.
    let _ = hex::encode_to_slice(digest(keyed(secret), timestamp, body), &mut text);
    String::from_utf8_lossy(&text).into_owned()
}

/// A complete header value, `t=…,v1=…` with one `v1` per secret (double-signing during rotation).
pub fn header_value<S: AsRef<[u8]>>(secrets: &[S], timestamp: i64, body: &[u8]) -> String {
    let mut value = format!("t={timestamp}");
    for secret in secrets {
        value.push_str(",v1=");
        value.push_str(&sign(secret.as_ref(), timestamp, body));
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_767_225_600;

    fn keys(secrets: &[&str]) -> SigningKeys {
        SigningKeys::new(secrets)
    }

    #[test]
    fn known_vector_matches_an_independent_hmac() {
        // hmac.new(b"whsec_test", b"1767225600.{}", hashlib.sha256).hexdigest() in Python.
        assert_eq!(
            sign(b"whsec_test", NOW, b"{}"),
            "4a942ef9477fb7b15b98664cf7ff2c2543984c1fa6bdf3520b48dcb25bcd1fe4"
        );
    }

    #[test]
    fn verifies_own_signature_and_uppercase_hex() {
        let header = header_value(&["s1"], NOW, b"body");
        assert!(keys(&["s1"]).verify(Some(header.as_bytes()), b"body", NOW, 300).is_ok());
        let upper = format!("t={NOW},v1={}", sign(b"s1", NOW, b"body").to_uppercase());
        assert!(keys(&["s1"]).verify(Some(upper.as_bytes()), b"body", NOW, 300).is_ok());
    }

    #[test]
    fn any_v1_against_any_secret() {
        let header = header_value(&["old", "new"], NOW, b"x");
        assert!(keys(&["new"]).verify(Some(header.as_bytes()), b"x", NOW, 300).is_ok());
        assert!(keys(&["old"]).verify(Some(header.as_bytes()), b"x", NOW, 300).is_ok());
        assert!(keys(&["other", "new"]).verify(Some(header.as_bytes()), b"x", NOW, 300).is_ok());
        assert_eq!(
            keys(&["other"]).verify(Some(header.as_bytes()), b"x", NOW, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn tolerance_both_directions() {
        let k = keys(&["s"]);
        for (ts, ok) in
            [(NOW - 300, true), (NOW + 300, true), (NOW - 301, false), (NOW + 301, false)]
        {
            let header = header_value(&["s"], ts, b"");
            let res = k.verify(Some(header.as_bytes()), b"", NOW, 300);
            assert_eq!(res.is_ok(), ok, "ts offset {}", ts - NOW);
            if !ok {
                assert_eq!(res, Err(SignatureError::OutsideTolerance));
            }
        }
    }

    #[test]
    fn malformed_headers() {
        let good = sign(b"s", NOW, b"");
        for bad in [
            String::new(),
            "garbage".into(),
            format!("v1={good}"),
            format!("t={NOW}"),
            format!("t=-{NOW},v1={good}"),
            format!("t={NOW},t={NOW},v1={good}"),
            format!("t={NOW},v1=abc"),
            format!("t={NOW},v1={}", "zz".repeat(32)),
            format!("t=1e9,v1={good}"),
        ] {
            assert_eq!(
                keys(&["s"]).verify(Some(bad.as_bytes()), b"", NOW, 300),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
        assert_eq!(keys(&["s"]).verify(None, b"", NOW, 300), Err(SignatureError::Missing));
    }

    #[test]
    fn a_malformed_v1_beside_a_valid_one_is_skipped() {
        let good = sign(b"s", NOW, b"");
        for header in
            [format!("t={NOW},v1=abc,v1={good}"), format!("t={NOW},v1={},v1={good}", &good[..63])]
        {
            assert!(
                keys(&["s"]).verify(Some(header.as_bytes()), b"", NOW, 300).is_ok(),
                "{header}"
            );
        }
    }

    #[test]
    fn unknown_keys_and_spaces_are_tolerated() {
        let header = format!("t={NOW}, v0=abc, v1={}", sign(b"s", NOW, b""));
        assert!(keys(&["s"]).verify(Some(header.as_bytes()), b"", NOW, 300).is_ok());
    }

    #[test]
    fn digest_decoding_takes_64_hex_digits_of_either_case() {
        let lower = sign(b"s", NOW, b"");
        let expected = hex::decode(&lower).unwrap();
        assert_eq!(decode_digest(lower.as_bytes()).unwrap().as_slice(), expected);
        let mixed: String = lower
            .chars()
            .enumerate()
            .map(|(i, c)| if i % 2 == 0 { c.to_ascii_uppercase() } else { c })
            .collect();
        assert_eq!(decode_digest(mixed.as_bytes()).unwrap().as_slice(), expected);
        let mut bad = lower.clone().into_bytes();
        for byte in [b'g', b'G', b' ', b'/', b':', b'@', b'`', 0, 0xff] {
            bad[17] = byte;
            assert_eq!(decode_digest(&bad), None, "{byte:#04x}");
        }
        assert_eq!(decode_digest(&lower.as_bytes()[1..]), None);
        assert_eq!(decode_digest(format!("{lower}0").as_bytes()), None);
        assert_eq!(decode_digest(format!("{lower}00").as_bytes()), None);
    }

    #[test]
    fn prefix_is_the_decimal_timestamp_and_a_dot() {
        for t in [0, 7, -7, NOW, i64::MAX, i64::MIN] {
            assert_eq!(Prefix::new(t).as_bytes(), format!("{t}.").as_bytes());
        }
    }

    #[test]
    fn no_secrets_verify_nothing() {
        let header = header_value(&["s"], NOW, b"");
        assert_eq!(
            keys(&[]).verify(Some(header.as_bytes()), b"", NOW, 300),
            Err(SignatureError::Mismatch)
        );
    }
}

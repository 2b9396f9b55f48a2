//! The key string: `AXON-V2-<payload>-<signature>`, split without ambiguity.
//!
//! - `<payload>` is the claims JSON in base64url without padding (alphabet `A-Z a-z 0-9 - _`).
//! - `<signature>` is the 64-byte Ed25519 signature in **lowercase hex: exactly 128 characters of `0-9 a-f`**.
//! - The signed message is the key's text up to the last `-`, i.e. `AXON-V2-<payload>`: the version prefix is
//!   signed too, so a signature can never be replayed under another format.
//!
//! Why hex: base64url contains `-`, which is what broke the upstream format when the payload held one. Hex has no
//! `-`, so both obvious parsing rules agree: "split at the last `-`" and "the last 128 characters are the
//! signature". Either is correct; we check both (fixed length *and* the separator). A fixed-length base64url
//! signature parsed from the right would also be unambiguous, but only for parsers that know the rule; a hex tail
//! survives naive `rsplit('-')` tooling in any language. The cost is 42 characters per key.
//!
//! **Invariant: one key, one string.** The signature hex must be lowercase, the payload is covered by the
//! signature, and signatures are checked with `verify_strict` (canonical `S`, no small-order points), so nobody can
//! re-spell a valid key into another valid string. That keeps keyed fingerprints usable for revocation.
//!
//! Parsing takes any `&str` and never panics: lengths and the character set are checked before any slicing.

use crate::error::{ErrorKind, LicenseError, err};

pub(crate) const V2_PREFIX: &str = "AXON-V2-";
/// Longest key accepted: keeps a key within one HTTP header and bounds the work spent on hostile input.
pub const MAX_KEY_LEN: usize = 8 * 1024;
const SIGNATURE_LEN: usize = 64;
const SIGNATURE_HEX_LEN: usize = 2 * SIGNATURE_LEN;

/// A V2 key split into its parts; nothing is verified or decoded yet.
#[derive(Debug)]
pub(crate) struct SplitKey<'a> {
    /// `AXON-V2-<payload>`: the signed message.
    pub(crate) signed: &'a str,
    /// The base64url text of the claims.
    pub(crate) payload: &'a str,
    pub(crate) signature: [u8; SIGNATURE_LEN],
}

pub(crate) fn split(key: &str) -> Result<SplitKey<'_>, LicenseError> {
    if key.len() > MAX_KEY_LEN {
        return err(ErrorKind::TooLong { max: MAX_KEY_LEN });
    }
    let Some(after_axon) = key.strip_prefix("AXON-") else {
        return err(ErrorKind::NotALicenseKey);
    };
    if !after_axon.starts_with("V2-") {
        return err(classify_other_version(after_axon));
    }
    if !key.is_ascii() {
        return err(ErrorKind::Malformed("unexpected character"));
    }
    // ASCII from here on: every byte index is a char boundary.
    let Some(separator) = key.len().checked_sub(SIGNATURE_HEX_LEN + 1).filter(|&i| i > V2_PREFIX.len())
    else {
        return err(ErrorKind::Malformed("too short for a signature"));
    };
    if key.as_bytes()[separator] != b'-' {
        return err(ErrorKind::Malformed("signature must be the last 128 characters, after a '-'"));
    }
    let signed = &key[..separator];
    let payload = &key[V2_PREFIX.len()..separator];
    if !payload.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return err(ErrorKind::Malformed("payload is not base64url"));
    }
    let signature = decode_hex(&key[separator + 1..])
        .ok_or(LicenseError::from(ErrorKind::Malformed("signature is not 128 lowercase hex digits")))?;
    Ok(SplitKey { signed, payload, signature })
}

pub(crate) fn join(signed: &str, signature: &[u8; SIGNATURE_LEN]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut key = String::with_capacity(signed.len() + 1 + SIGNATURE_HEX_LEN);
    key.push_str(signed);
    key.push('-');
    for byte in signature {
        key.push(char::from(HEX[usize::from(byte >> 4)]));
        key.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    key
}

/// Not V2: V1 (`AXON-TIER-ORG-EXPIRY-SIGNATURE`), a version we do not know, or not a key at all.
fn classify_other_version(after_axon: &str) -> ErrorKind {
    let mut segments = after_axon.split('-');
    let first = segments.next().unwrap_or_default();
    let is_version_tag =
        first.len() > 1 && first.starts_with('V') && first[1..].bytes().all(|b| b.is_ascii_digit());
    if first == "V1" {
        ErrorKind::DeprecatedV1
    } else if is_version_tag {
        ErrorKind::UnsupportedVersion
    } else if !first.is_empty() && segments.filter(|s| !s.is_empty()).count() >= 3 {
        ErrorKind::DeprecatedV1
    } else {
        ErrorKind::NotALicenseKey
    }
}

/// Exactly 128 lowercase hex digits, or nothing.
pub(crate) fn decode_hex(text: &str) -> Option<[u8; SIGNATURE_LEN]> {
    let digits = text.as_bytes();
    if digits.len() != SIGNATURE_HEX_LEN {
        return None;
    }
    let mut out = [0_u8; SIGNATURE_LEN];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
    }
    Some(out)
}

pub(crate) fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\
                       00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    /// Splits `key` and shows `signed | payload` or the error kind.
    fn check(key: &str, expected: Result<(&str, &str), ErrorKind>) {
        let actual = split(key).map(|s| (s.signed, s.payload)).map_err(|e| e.kind().clone());
        assert_eq!(actual, expected, "key: {key:?}");
    }

    fn key(payload: &str) -> String {
        format!("AXON-V2-{payload}-{SIG}")
    }

    #[test]
    fn splits_v2_keys_whatever_the_payload_holds() {
        check(&key("eyJ0"), Ok(("AXON-V2-eyJ0", "eyJ0")));
        check(&key("a-b"), Ok(("AXON-V2-a-b", "a-b")));
        check(&key("-"), Ok(("AXON-V2--", "-")));
        check(&key("--"), Ok(("AXON-V2---", "--")));
        check(&key("_-_"), Ok(("AXON-V2-_-_", "_-_")));
        check(&key("abc-"), Ok(("AXON-V2-abc-", "abc-")));
        check(&key(&"a".repeat(40)), Ok((&format!("AXON-V2-{}", "a".repeat(40)), &"a".repeat(40))));
        assert_eq!(split(&key("x")).unwrap().signature[..3], [0x00, 0x11, 0x22]);
    }

    #[test]
    fn refuses_broken_v2_keys() {
        let malformed = |m| Err(ErrorKind::Malformed(m));
        check("AXON-V2-", malformed("too short for a signature"));
        check(&format!("AXON-V2-{SIG}"), malformed("too short for a signature"));
        check(&format!("AXON-V2--{SIG}"), malformed("too short for a signature"));
        check(&key("a=="), malformed("payload is not base64url"));
        check(&key("a+/b"), malformed("payload is not base64url"));
        check(&key("a b"), malformed("payload is not base64url"));
        check(&key("é"), malformed("unexpected character"));
        check(
            &format!("AXON-V2-abc-{}", SIG.to_uppercase()),
            malformed("signature is not 128 lowercase hex digits"),
        );
        check(&format!("AXON-V2-abc-{}g", &SIG[1..]), malformed("signature is not 128 lowercase hex digits"));
        check(
            &format!("AXON-V2-abc-{}", &SIG[1..]),
            malformed("signature must be the last 128 characters, after a '-'"),
        );
        check(
            &format!("AXON-V2-abc-{SIG}0"),
            malformed("signature must be the last 128 characters, after a '-'"),
        );
        check(
            &format!("AXON-V2-abc-{SIG}\n"),
            malformed("signature must be the last 128 characters, after a '-'"),
        );
        check(&"A".repeat(MAX_KEY_LEN + 1), Err(ErrorKind::TooLong { max: MAX_KEY_LEN }));
    }

    #[test]
    fn recognises_other_versions() {
        check("AXON-PRO-acme-20251231-abcdef0123", Err(ErrorKind::DeprecatedV1));
        check("AXON-PLUS-my-org-1767225600-deadbeef", Err(ErrorKind::DeprecatedV1));
        check("AXON-V1-whatever", Err(ErrorKind::DeprecatedV1));
        check("AXON-V3-abc-def", Err(ErrorKind::UnsupportedVersion));
        check("AXON-V22-abc-def", Err(ErrorKind::UnsupportedVersion));
        check("AXON-PRO-acme", Err(ErrorKind::NotALicenseKey));
        check("AXON-", Err(ErrorKind::NotALicenseKey));
        check("", Err(ErrorKind::NotALicenseKey));
        check("axon-v2-abc-def", Err(ErrorKind::NotALicenseKey));
        check("Bearer AXON-V2-abc", Err(ErrorKind::NotALicenseKey));
        check(" AXON-V2-abc", Err(ErrorKind::NotALicenseKey));
    }

    #[test]
    fn join_writes_lowercase_hex() {
        let signature = split(&key("p")).unwrap().signature;
        assert_eq!(join("AXON-V2-p", &signature), key("p"));
    }
}

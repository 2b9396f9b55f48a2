//! Verifying keys on a node, with the public key only; and decoding one without verifying, for display.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use types::UnixMillis;

use crate::claims::{Claims, Environment, millis};
use crate::error::{ErrorKind, LicenseError, err};
use crate::format;
use crate::keys::PublicKey;
use crate::wire;

/// Clock skew tolerated on `issued_at` by default: a key issued a moment ago on a machine whose clock runs ahead
/// still works. Expiry gets no such tolerance (that is what the grace period is for).
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// Checks keys against the operator's public key.
#[derive(Clone, Debug)]
pub struct Verifier {
    public_key: PublicKey,
    clock_skew: Duration,
}

/// A key whose signature, claims, environment and dates were checked. Only [`Verifier::verify`] makes one, so
/// holding one is proof of verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedLicense {
    claims: Claims,
    validity: Validity,
}

/// A key whose signature was checked and whose claims decoded, but not yet its environment or dates: what a
/// node can cache (by a keyed fingerprint of the exact key) so that the signature is checked once, while
/// [`Verifier::check`] still checks environment and dates on every use. Only [`Verifier::verify_signature`]
/// makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedLicense {
    claims: Claims,
}

impl SignedLicense {
    pub fn claims(&self) -> &Claims {
        &self.claims
    }
}

/// Whether a verified key is inside its validity or only inside the grace period after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    /// Before `expires_at`.
    Valid { expires_in: Duration },
    /// Expired, but within the grace period the node allows; show this in responses and metrics.
    InGrace { grace_remaining: Duration },
}

impl Verifier {
    pub fn new(public_key: PublicKey) -> Verifier {
        Verifier { public_key, clock_skew: DEFAULT_CLOCK_SKEW }
    }

    /// Replaces [`DEFAULT_CLOCK_SKEW`].
    pub fn with_clock_skew(self, clock_skew: Duration) -> Verifier {
        Verifier { clock_skew, ..self }
    }

    /// Checks, in order: shape (V1 is refused as deprecated), signature, claims, environment, `issued_at` (minus
    /// the clock skew), `expires_at` (plus `grace`). The signature is checked before the payload is decoded, so
    /// the JSON parser only ever sees bytes the operator signed.
    pub fn verify(
        &self,
        key: &str,
        expected_environment: Environment,
        now: UnixMillis,
        grace: Duration,
    ) -> Result<VerifiedLicense, LicenseError> {
        self.check(&self.verify_signature(key)?, expected_environment, now, grace)
    }

    /// The shape and signature checks of [`Verifier::verify`], and the claims decoded.
    pub fn verify_signature(&self, key: &str) -> Result<SignedLicense, LicenseError> {
        let split = format::split(key)?;
        self.public_key.verify(split.signed.as_bytes(), &split.signature)?;
        Ok(SignedLicense { claims: decode_payload(split.payload)? })
    }

    /// The rest of [`Verifier::verify`] on a key whose signature was checked: environment, `issued_at` (minus
    /// the clock skew), `expires_at` (plus `grace`).
    pub fn check(
        &self,
        signed: &SignedLicense,
        expected_environment: Environment,
        now: UnixMillis,
        grace: Duration,
    ) -> Result<VerifiedLicense, LicenseError> {
        let claims = signed.claims.clone();
        if claims.environment != expected_environment {
            return err(ErrorKind::WrongEnvironment {
                expected: expected_environment,
                found: claims.environment,
            });
        }
        if now.plus_millis(millis(self.clock_skew)) < claims.issued_at {
            return err(ErrorKind::NotYetValid);
        }
        let validity = if now < claims.expires_at {
            Validity::Valid { expires_in: between(now, claims.expires_at) }
        } else {
            let grace_ends = claims.expires_at.plus_millis(millis(grace));
            if now >= grace_ends {
                return err(ErrorKind::Expired);
            }
            Validity::InGrace { grace_remaining: between(now, grace_ends) }
        };
        Ok(VerifiedLicense { claims, validity })
    }
}

impl VerifiedLicense {
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    pub fn validity(&self) -> Validity {
        self.validity
    }

    pub fn is_in_grace(&self) -> bool {
        matches!(self.validity, Validity::InGrace { .. })
    }

    pub fn into_claims(self) -> Claims {
        self.claims
    }
}

/// **Unverified**: decodes and validates the claims of a V2 key without checking its signature, environment or
/// dates. For showing a key to a person (`axonflow license inspect`); never for deciding what a caller may do.
pub fn inspect_unverified(key: &str) -> Result<Claims, LicenseError> {
    decode_payload(format::split(key)?.payload)
}

fn decode_payload(payload: &str) -> Result<Claims, LicenseError> {
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| LicenseError::from(ErrorKind::Malformed("payload is not base64url")))?;
    wire::decode(&json)
}

fn between(from: UnixMillis, to: UnixMillis) -> Duration {
    Duration::from_millis(u64::try_from(to.0.saturating_sub(from.0)).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issue::Issuer;
    use crate::keys::SigningKey;

    const CLAIMS: &str = r#"{"key_id":"k1","kind":"service","tier":"PRO","tenant_id":"my-org","service":{"name":"s","type":"t"},"environment":"prod","permissions":["query"],"issued_at_ms":1000,"expires_at_ms":2000}"#;

    /// Signs `payload` as the operator would (but without any check) and verifies it on a prod node at 1500 ms.
    fn check(payload: &[u8], expected: Result<(), ErrorKind>) {
        let issuer = Issuer::new(SigningKey::generate().unwrap());
        let key = issuer.sign_raw_payload(payload);
        let verifier = Verifier::new(issuer.public_key());
        let actual = verifier.verify(&key, Environment::Prod, UnixMillis(1500), Duration::ZERO);
        assert_eq!(actual.map(|_| ()).map_err(|e| e.kind().clone()), expected, "{key}");
    }

    #[test]
    fn signed_but_invalid_claims_are_still_refused() {
        check(CLAIMS.as_bytes(), Ok(()));
        let with = |from: &str, to: &str| CLAIMS.replace(from, to).into_bytes();
        check(&with(r#""query""#, r#""mcp:*:*""#), Err(ErrorKind::WildcardPermission));
        check(&with(r#""query""#, r#""mcp:amadeus:*""#), Err(ErrorKind::WildcardPermission));
        check(
            &with(r#""query""#, r#""admin:keys""#),
            Err(ErrorKind::PermissionNotAllowedForKind {
                kind: crate::KeyKind::Service,
                permission: crate::Permission::AdminKeys,
            }),
        );
        check(
            &with("{", r#"{"max_nodes":1,"#),
            Err(ErrorKind::InvalidClaims("payload does not match the V2 claims schema")),
        );
        check(
            &with(r#""tier":"PRO""#, r#""tier":"PRO","tier":"PLUS""#),
            Err(ErrorKind::InvalidClaims("payload does not match the V2 claims schema")),
        );
    }

    /// Payload bytes whose base64url is `-` (62) or `_` (63) at every position: the split must still find the
    /// signature, so the error is about the (non-JSON) content, never the shape or the signature.
    #[test]
    fn dash_and_underscore_in_every_position() {
        let not_json = Err(ErrorKind::InvalidClaims("payload is not JSON"));
        let all_dashes = [0xFB_u8, 0xEF, 0xBE]; // 111110 111110 111110 111110
        let all_underscores = [0xFF_u8; 3];
        let alternating = [0xFB_u8, 0xFF, 0xBF]; // 111110 111111 111110 111111
        for pattern in [all_dashes, all_underscores, alternating] {
            for len in 1..=30 {
                let payload: Vec<u8> = pattern.iter().copied().cycle().take(len).collect();
                let text = URL_SAFE_NO_PAD.encode(&payload);
                assert!(text.bytes().all(|b| b == b'-' || b == b'_' || len % 3 != 0), "{text}");
                check(&payload, not_json.clone());
            }
        }
        // JSON whose base64url holds both: '>' and '~' encode to '-', '?' to '_' when they sit at a multiple of 3
        // (honest claims never contain them: identifiers are `A-Z a-z 0-9 . _ -`). Signature and JSON pass; the
        // refusal comes from the claim itself.
        let json = CLAIMS.replace(r#""tenant_id":"my-org""#, r#""tenant_id":"a>>>???~~~???""#);
        let text = URL_SAFE_NO_PAD.encode(&json);
        assert!(text.contains('-') && text.contains('_'), "{text}");
        check(json.as_bytes(), Err(ErrorKind::InvalidIdentifier { field: "tenant id", max: 128 }));
    }

    #[test]
    fn inspect_does_not_check_the_signature() {
        let issuer = Issuer::new(SigningKey::generate().unwrap());
        let key = issuer.sign_raw_payload(CLAIMS.as_bytes());
        let forged = format!("{}{}", &key[..key.len() - 128], "0".repeat(128));
        assert_eq!(inspect_unverified(&forged).map(|c| c.tenant.to_string()), Ok("my-org".to_owned()));
        let verifier = Verifier::new(issuer.public_key());
        let refused =
            verifier.verify(&forged, Environment::Prod, UnixMillis(1500), Duration::ZERO).unwrap_err();
        assert_eq!(refused.kind(), &ErrorKind::BadSignature);
    }
}

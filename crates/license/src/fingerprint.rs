//! How a node stores and looks up keys: never the key itself, only HMAC-SHA256 under a node secret.
//!
//! A fingerprint is not secret (it cannot be turned back into a key, nor computed without the node secret), but it
//! identifies a credential, so its `Debug` hides it too and nothing logs it by default; storage calls
//! [`Fingerprint::to_hex`] explicitly.

use std::fmt;
use std::hash::{Hash, Hasher};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use types::Secret;

use crate::error::{ErrorKind, LicenseError, err};
use crate::format::hex_value;

/// Separates these MACs from any other use of the same node secret.
const DOMAIN: &[u8] = b"axonflow/license-fingerprint/v1\0";

/// The node secret fingerprints are keyed with: at least 32 bytes, redacted in `Debug`, zeroed on drop.
pub struct FingerprintKey(Secret<Vec<u8>>);

impl FingerprintKey {
    pub const MIN_LEN: usize = 32;

    pub fn new(secret: Secret<Vec<u8>>) -> Result<FingerprintKey, LicenseError> {
        if secret.expose().len() < FingerprintKey::MIN_LEN {
            return err(ErrorKind::FingerprintKeyTooShort { min: FingerprintKey::MIN_LEN });
        }
        Ok(FingerprintKey(secret))
    }

    /// 32 bytes from the operating system's randomness.
    pub fn generate() -> Result<FingerprintKey, LicenseError> {
        let mut bytes = vec![0_u8; FingerprintKey::MIN_LEN];
        getrandom::fill(&mut bytes).map_err(|_| LicenseError::from(ErrorKind::RandomnessUnavailable))?;
        FingerprintKey::new(Secret::new(bytes))
    }
}

impl fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FingerprintKey([redacted])")
    }
}

/// HMAC-SHA256 of a license key. Equality is constant-time.
#[derive(Clone, Copy)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Fingerprints the key text exactly as given; V2 keys have one spelling each (see the format docs), so
    /// equal fingerprints mean the same key.
    pub fn of(node_secret: &FingerprintKey, license_key: &str) -> Fingerprint {
        // Cannot fail: HMAC takes keys of any length (RFC 2104 hashes long ones), and `FingerprintKey` ensures ≥ 32.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(node_secret.0.expose())
            .expect("HMAC accepts keys of any length");
        mac.update(DOMAIN);
        mac.update(license_key.as_bytes());
        Fingerprint(mac.finalize().into_bytes().into())
    }

    /// 64 lowercase hex digits, for storage.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn from_hex(text: &str) -> Result<Fingerprint, LicenseError> {
        let digits = text.as_bytes();
        let mut out = [0_u8; 32];
        if digits.len() != 64 {
            return err(ErrorKind::InvalidFingerprint);
        }
        for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            match (hex_value(pair[0]), hex_value(pair[1])) {
                (Some(high), Some(low)) => *byte = (high << 4) | low,
                _ => return err(ErrorKind::InvalidFingerprint),
            }
        }
        Ok(Fingerprint(out))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl ConstantTimeEq for Fingerprint {
    fn ct_eq(&self, other: &Fingerprint) -> subtle::Choice {
        self.0.ct_eq(&other.0)
    }
}

impl PartialEq for Fingerprint {
    fn eq(&self, other: &Fingerprint) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for Fingerprint {}

impl Hash for Fingerprint {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fingerprint([hidden])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node_secret(byte: u8) -> FingerprintKey {
        FingerprintKey::new(Secret::new(vec![byte; 32])).unwrap()
    }

    /// Whether the fingerprints of `a` under secret `sa` and `b` under `sb` are equal.
    fn check(a: (&str, u8), b: (&str, u8), equal: bool) {
        let fa = Fingerprint::of(&node_secret(a.1), a.0);
        let fb = Fingerprint::of(&node_secret(b.1), b.0);
        assert_eq!(fa == fb, equal, "{a:?} {b:?}");
        assert_eq!(bool::from(fa.ct_eq(&fb)), equal);
        assert_eq!(fa.to_hex() == fb.to_hex(), equal);
    }

    #[test]
    fn equality() {
        check(("AXON-V2-a-b", 1), ("AXON-V2-a-b", 1), true);
        check(("AXON-V2-a-b", 1), ("AXON-V2-a-c", 1), false);
        check(("AXON-V2-a-b", 1), ("AXON-V2-a-b", 2), false);
        check(("AXON-V2-a-b", 1), ("AXON-V2-a-b ", 1), false);
        check(("", 1), ("", 1), true);
    }

    #[test]
    fn known_answer() {
        // HMAC-SHA256(key = 32 × 0x01, "axonflow/license-fingerprint/v1\0" || "AXON-V2-a-b"): pins the scheme, so
        // stored fingerprints stay valid across refactors.
        let hex = Fingerprint::of(&node_secret(1), "AXON-V2-a-b").to_hex();
        assert_eq!(hex, KNOWN_ANSWER);
    }

    /// Computed independently: Python's `hmac.new(b"\x01" * 32, b"axonflow/license-fingerprint/v1\x00AXON-V2-a-b",
    /// hashlib.sha256).hexdigest()`.
    const KNOWN_ANSWER: &str = "9569e1705850c33117079db2018e0e50c073727b0637e24f7c4d170216ecfa0b";

    #[test]
    fn hex_round_trip_and_refusals() {
        let fingerprint = Fingerprint::of(&node_secret(7), "AXON-V2-x-y");
        assert_eq!(Fingerprint::from_hex(&fingerprint.to_hex()), Ok(fingerprint));
        for bad in
            ["", "00", &"0".repeat(63), &"0".repeat(65), &"A".repeat(64), &"g".repeat(64), &"é".repeat(32)]
        {
            assert_eq!(
                Fingerprint::from_hex(bad).unwrap_err().kind(),
                &ErrorKind::InvalidFingerprint,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn node_secret_rules() {
        let short = FingerprintKey::new(Secret::new(vec![0; 31])).unwrap_err();
        assert_eq!(short.kind(), &ErrorKind::FingerprintKeyTooShort { min: 32 });
        assert_eq!(format!("{:?}", node_secret(0x41)), "FingerprintKey([redacted])");
        let fingerprint = Fingerprint::of(&node_secret(1), "AXON-V2-a-b");
        assert!(!format!("{fingerprint:?}").contains(&fingerprint.to_hex()[..8]));
        let a = FingerprintKey::generate().unwrap();
        let b = FingerprintKey::generate().unwrap();
        assert_ne!(Fingerprint::of(&a, "k"), Fingerprint::of(&b, "k"));
    }
}

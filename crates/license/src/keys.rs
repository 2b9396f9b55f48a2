//! The Ed25519 key pair: the operator's signing key (never on a running node) and the public key nodes verify
//! with. Private key files are PKCS#8 PEM; public keys are SPKI PEM or 32 raw bytes in base64url (for an
//! environment variable or a config line).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use types::Secret;
use zeroize::Zeroizing;

use crate::error::{ErrorKind, LicenseError};

/// The operator's private key. Its `Debug` shows nothing of it; its bytes are zeroed on drop.
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// A new key from the operating system's randomness.
    pub fn generate() -> Result<SigningKey, LicenseError> {
        let mut seed = Zeroizing::new([0_u8; ed25519_dalek::SECRET_KEY_LENGTH]);
        getrandom::fill(seed.as_mut()).map_err(|_| LicenseError::from(ErrorKind::RandomnessUnavailable))?;
        Ok(SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// Reads a PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as written by [`SigningKey::to_pkcs8_pem`] or
    /// `openssl genpkey -algorithm ed25519`.
    pub fn from_pkcs8_pem(pem: &str) -> Result<SigningKey, LicenseError> {
        ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .map(SigningKey)
            .map_err(|_| LicenseError::from(ErrorKind::InvalidSigningKey))
    }

    /// The PKCS#8 PEM text; it is the private key, so it comes wrapped in a [`Secret`].
    ///
    /// Written in the RFC 8410 form (PKCS#8 v1, no embedded public key), as `openssl genpkey` writes it: OpenSSL
    /// 3.0 refuses the v2 form that `ed25519-dalek` would write by default.
    pub fn to_pkcs8_pem(&self) -> Result<Secret<String>, LicenseError> {
        let keypair =
            ed25519_dalek::ed25519::KeypairBytes { secret_key: self.0.to_bytes(), public_key: None };
        let pem = keypair
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|_| LicenseError::from(ErrorKind::InvalidSigningKey))?;
        Ok(Secret::new(pem.as_str().to_owned()))
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `message`. Callers outside license keys (audit checkpoints) must prefix a domain-separation tag.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer;
        self.0.sign(message).to_bytes()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

/// The public half. Not secret: its `Debug` and `Display` show the base64url form, so operators can tell which key
/// a node trusts.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// Reads an SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn from_pem(pem: &str) -> Result<PublicKey, LicenseError> {
        let key = ed25519_dalek::VerifyingKey::from_public_key_pem(pem)
            .map_err(|_| LicenseError::from(ErrorKind::InvalidPublicKey))?;
        PublicKey::checked(key)
    }

    pub fn to_pem(&self) -> Result<String, LicenseError> {
        self.0.to_public_key_pem(LineEnding::LF).map_err(|_| LicenseError::from(ErrorKind::InvalidPublicKey))
    }

    /// Reads the 32 key bytes in base64url without padding (43 characters).
    pub fn from_base64(text: &str) -> Result<PublicKey, LicenseError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| LicenseError::from(ErrorKind::InvalidPublicKey))?;
        let bytes: [u8; 32] =
            bytes.try_into().map_err(|_| LicenseError::from(ErrorKind::InvalidPublicKey))?;
        let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map_err(|_| LicenseError::from(ErrorKind::InvalidPublicKey))?;
        PublicKey::checked(key)
    }

    pub fn to_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }

    /// Checks an Ed25519 signature strictly (no malleable or non-canonical forms).
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> Result<(), LicenseError> {
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        self.0.verify_strict(message, &signature).map_err(|_| LicenseError::from(ErrorKind::BadSignature))
    }

    /// Refuses small-order ("weak") keys, for which signatures prove nothing.
    fn checked(key: ed25519_dalek::VerifyingKey) -> Result<PublicKey, LicenseError> {
        if key.is_weak() { Err(ErrorKind::InvalidPublicKey.into()) } else { Ok(PublicKey(key)) }
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trips() {
        let key = SigningKey::generate().unwrap();
        let pem = key.to_pkcs8_pem().unwrap();
        assert!(
            // PKCS#8 v1 with the Ed25519 OID: the DER prefix of every `openssl genpkey -algorithm ed25519` key.
            pem.expose().starts_with("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI"),
            "not RFC 8410 PKCS#8 v1"
        );
        let again = SigningKey::from_pkcs8_pem(pem.expose()).unwrap();
        assert_eq!(again.public_key(), key.public_key());

        let public = key.public_key();
        assert!(public.to_pem().unwrap().starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert_eq!(PublicKey::from_pem(&public.to_pem().unwrap()), Ok(public));
        assert_eq!(public.to_base64().len(), 43);
        assert_eq!(PublicKey::from_base64(&public.to_base64()), Ok(public));
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(
            SigningKey::generate().unwrap().public_key(),
            SigningKey::generate().unwrap().public_key()
        );
    }

    /// Loads `text` with `load` and expects `expected` as the error kind.
    fn check<T: fmt::Debug>(load: fn(&str) -> Result<T, LicenseError>, text: &str, expected: ErrorKind) {
        let error = load(text).unwrap_err();
        assert_eq!(error.kind(), &expected, "{text:?}");
    }

    #[test]
    fn refuses_bad_key_files() {
        let key = SigningKey::generate().unwrap();
        let public_pem = key.public_key().to_pem().unwrap();
        check(SigningKey::from_pkcs8_pem, "", ErrorKind::InvalidSigningKey);
        check(
            SigningKey::from_pkcs8_pem,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            ErrorKind::InvalidSigningKey,
        );
        check(SigningKey::from_pkcs8_pem, &public_pem, ErrorKind::InvalidSigningKey);
        check(PublicKey::from_pem, key.to_pkcs8_pem().unwrap().expose(), ErrorKind::InvalidPublicKey);
        check(PublicKey::from_pem, "garbage", ErrorKind::InvalidPublicKey);
        check(PublicKey::from_base64, "", ErrorKind::InvalidPublicKey);
        check(PublicKey::from_base64, &"A".repeat(44), ErrorKind::InvalidPublicKey);
        // The identity point has small order: a "weak" key.
        check(
            PublicKey::from_base64,
            &URL_SAFE_NO_PAD.encode([1_u8].iter().chain(&[0; 31]).copied().collect::<Vec<_>>()),
            ErrorKind::InvalidPublicKey,
        );
    }

    #[test]
    fn debug_shows_no_private_material() {
        let key = SigningKey::generate().unwrap();
        let pem = key.to_pkcs8_pem().unwrap();
        let body: String = pem.expose().lines().filter(|l| !l.starts_with("-----")).collect();
        for shown in [format!("{key:?}"), format!("{key:#?}")] {
            assert_eq!(shown, "SigningKey([redacted])");
            assert!(!shown.contains(&body[..16]));
        }
        assert_eq!(format!("{:?}", key.public_key()), format!("PublicKey({})", key.public_key().to_base64()));
    }
}

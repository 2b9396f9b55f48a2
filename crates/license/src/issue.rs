//! Issuing keys: validate the claims, encode them, sign. Runs on the operator's machine, never on a node.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use types::Secret;

use crate::claims::Claims;
use crate::error::{ErrorKind, LicenseError, err};
use crate::format::{self, MAX_KEY_LEN, V2_PREFIX};
use crate::keys::{PublicKey, SigningKey};
use crate::wire;

/// Signs license keys with the operator's [`SigningKey`].
#[derive(Debug)]
pub struct Issuer {
    signing_key: SigningKey,
}

impl Issuer {
    pub fn new(signing_key: SigningKey) -> Issuer {
        Issuer { signing_key }
    }

    /// The key nodes need to verify what this issuer signs.
    pub fn public_key(&self) -> PublicKey {
        self.signing_key.public_key()
    }

    /// A signed `AXON-V2-…` key for `claims`, after [`Claims::validate`]: refuses, among others, permissions the
    /// kind may not hold and keys longer than [`MAX_KEY_LEN`]. (Wildcard permissions cannot be expressed at all:
    /// parsing one fails with [`ErrorKind::WildcardPermission`].)
    pub fn issue(&self, claims: &Claims) -> Result<Secret<String>, LicenseError> {
        claims.validate()?;
        let payload = URL_SAFE_NO_PAD.encode(wire::encode(claims)?);
        let signed = format!("{V2_PREFIX}{payload}");
        let signature = self.signing_key.sign(signed.as_bytes());
        let key = Secret::new(format::join(&signed, &signature));
        if key.expose().len() > MAX_KEY_LEN {
            return err(ErrorKind::TooLong { max: MAX_KEY_LEN });
        }
        Ok(key)
    }

    /// Signs an arbitrary payload, skipping every check: lets tests build keys an honest issuer would refuse.
    #[cfg(test)]
    pub(crate) fn sign_raw_payload(&self, payload_json: &[u8]) -> String {
        let signed = format!("{V2_PREFIX}{}", URL_SAFE_NO_PAD.encode(payload_json));
        format::join(&signed, &self.signing_key.sign(signed.as_bytes()))
    }
}

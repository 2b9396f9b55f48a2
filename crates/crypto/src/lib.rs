//! Envelope encryption: data is sealed with AES-256-GCM under a *data key*; data keys are stored only wrapped
//! (sealed) by a *master key*, which never touches the database.
//!
//! Master keys come from a [`MasterKeyProvider`]: the local [`KeyRing`] (a 0600 file or an environment
//! variable) or any KMS-style service that can wrap and unwrap 32 bytes. Rotating the master key re-wraps the
//! data keys (a few rows) and leaves the data as it is; rotating data keys makes new data use a new key while
//! old data stays readable under the old one.
//!
//! Every sealed value names the key it was sealed with and is bound to a context (`aad`), so a ciphertext moved
//! to another row or column does not open.
//!
//! Nonces are 96 random bits per seal. That is safe for well over 2^32 seals per key; data keys rotate long
//! before that.

mod command;
mod keyring;

use std::fmt;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use types::Secret;

pub use command::CommandProvider;
pub use keyring::{KeyRing, KeyRingError};

/// Length of every key: AES-256.
pub const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;
/// First bytes of every sealed value: format version 1.
const MAGIC: &[u8; 3] = b"AF1";

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The value is not one this crate sealed, or it was cut short.
    #[error("not a sealed value")]
    Malformed,
    /// Wrong key, wrong context, or the ciphertext was changed.
    #[error("the value does not open with this key and context")]
    Open,
    /// The value names a key that is not available (destroyed, or not loaded here).
    #[error("key {0} is not available")]
    UnknownKey(String),
    #[error("the operating system has no randomness")]
    Random,
    /// A master key provider failed (e.g. a KMS was unreachable). The message holds no key material.
    #[error("master key provider: {0}")]
    Provider(String),
}

/// 32 random bytes for a new key.
pub fn generate_key() -> Result<Secret<[u8; KEY_LEN]>, CryptoError> {
    let mut bytes = [0u8; KEY_LEN];
    SystemRandom::new().fill(&mut bytes).map_err(|_| CryptoError::Random)?;
    Ok(Secret::new(bytes))
}

/// An AES-256-GCM key with a name. The name travels in every value sealed with it.
pub struct DataKey {
    id: String,
    key: LessSafeKey,
    /// Kept for [`DataKey::derive`]; zeroed on drop.
    bytes: Secret<[u8; KEY_LEN]>,
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataKey").field("id", &self.id).finish_non_exhaustive()
    }
}

impl DataKey {
    /// `id` must be 1–255 bytes.
    pub fn new(id: impl Into<String>, bytes: &Secret<[u8; KEY_LEN]>) -> Result<DataKey, CryptoError> {
        let id = id.into();
        if id.is_empty() || id.len() > usize::from(u8::MAX) {
            return Err(CryptoError::Malformed);
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes.expose()).map_err(|_| CryptoError::Malformed)?;
        Ok(DataKey { id, key: LessSafeKey::new(key), bytes: bytes.clone() })
    }

    /// A key for another purpose derived from this one: HMAC-SHA256(key, `label`). Nodes that share the data
    /// key derive the same key; nothing derived can be turned back into the data key.
    pub fn derive(&self, label: &[u8]) -> Secret<[u8; KEY_LEN]> {
        let mac =
            ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, self.bytes.expose()), label);
        let mut out = [0u8; KEY_LEN];
        out.copy_from_slice(mac.as_ref());
        Secret::new(out)
    }

    /// A key made from a byte slice that must be exactly 32 bytes (an unwrapped key).
    pub fn from_slice(id: impl Into<String>, bytes: &[u8]) -> Result<DataKey, CryptoError> {
        let array: [u8; KEY_LEN] = bytes.try_into().map_err(|_| CryptoError::Malformed)?;
        DataKey::new(id, &Secret::new(array))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seals `plaintext`, bound to `aad`: `AF1 | id length | id | nonce | ciphertext | tag`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| CryptoError::Random)?;
        let header_len = MAGIC.len() + 1 + self.id.len() + NONCE_LEN;
        let mut out = Vec::with_capacity(header_len + plaintext.len() + TAG_LEN);
        out.extend_from_slice(MAGIC);
        out.push(u8::try_from(self.id.len()).map_err(|_| CryptoError::Malformed)?);
        out.extend_from_slice(self.id.as_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let mut body = out.split_off(header_len);
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut body)
            .map_err(|_| CryptoError::Open)?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Opens a value sealed with this key and `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Secret<Vec<u8>>, CryptoError> {
        let parts = Sealed::parse(sealed)?;
        if parts.key_id != self.id {
            return Err(CryptoError::UnknownKey(parts.key_id.to_owned()));
        }
        let mut body = parts.body.to_vec();
        let nonce = Nonce::assume_unique_for_key(parts.nonce);
        let plain_len = match self.key.open_in_place(nonce, Aad::from(aad), &mut body) {
            Ok(plain) => plain.len(),
            Err(_) => {
                zeroize::Zeroize::zeroize(&mut body);
                return Err(CryptoError::Open);
            }
        };
        body.truncate(plain_len);
        Ok(Secret::new(body))
    }
}

/// The parts of a sealed value.
#[derive(Debug)]
pub struct Sealed<'a> {
    pub key_id: &'a str,
    nonce: [u8; NONCE_LEN],
    body: &'a [u8],
}

impl<'a> Sealed<'a> {
    pub fn parse(sealed: &'a [u8]) -> Result<Sealed<'a>, CryptoError> {
        let rest = sealed.strip_prefix(MAGIC.as_slice()).ok_or(CryptoError::Malformed)?;
        let (&id_len, rest) = rest.split_first().ok_or(CryptoError::Malformed)?;
        let id_len = usize::from(id_len);
        if id_len == 0 || rest.len() < id_len + NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Malformed);
        }
        let (id, rest) = rest.split_at(id_len);
        let key_id = std::str::from_utf8(id).map_err(|_| CryptoError::Malformed)?;
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let nonce = nonce.try_into().map_err(|_| CryptoError::Malformed)?;
        Ok(Sealed { key_id, nonce, body })
    }

    /// The id of the key a value was sealed with, without opening it.
    pub fn key_id_of(sealed: &'a [u8]) -> Result<&'a str, CryptoError> {
        Ok(Sealed::parse(sealed)?.key_id)
    }
}

/// A data key in its stored form: sealed by the master key `master_key_id`.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub master_key_id: String,
    pub wrapped: Vec<u8>,
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WrappedKey").field("master_key_id", &self.master_key_id).finish_non_exhaustive()
    }
}

/// Where master keys live. A KMS integration implements this: it wraps and unwraps 32-byte data keys and never
/// hands out the master key itself. `context` is bound to the wrapped key (AAD).
pub trait MasterKeyProvider: Send + Sync + fmt::Debug {
    /// The key new data keys are wrapped with.
    fn current_key_id(&self) -> Result<String, CryptoError>;
    fn wrap(&self, key: &Secret<[u8; KEY_LEN]>, context: &[u8]) -> Result<WrappedKey, CryptoError>;
    fn unwrap(&self, wrapped: &WrappedKey, context: &[u8]) -> Result<Secret<[u8; KEY_LEN]>, CryptoError>;
    /// Picks up keys added since start (e.g. a key ring file that an operator rotated). The default does
    /// nothing.
    fn reload(&self) -> Result<(), CryptoError> {
        Ok(())
    }
}

/// Makes a new data key named `id` and its wrapped form under the provider's current master key.
pub fn new_data_key(
    provider: &dyn MasterKeyProvider,
    id: &str,
) -> Result<(DataKey, WrappedKey), CryptoError> {
    let bytes = generate_key()?;
    let wrapped = provider.wrap(&bytes, &data_key_context(id))?;
    Ok((DataKey::new(id, &bytes)?, wrapped))
}

/// Unwraps a stored data key.
pub fn unwrap_data_key(
    provider: &dyn MasterKeyProvider,
    id: &str,
    wrapped: &WrappedKey,
) -> Result<DataKey, CryptoError> {
    let bytes = provider.unwrap(wrapped, &data_key_context(id))?;
    DataKey::new(id, &bytes)
}

/// Re-wraps a stored data key under the provider's current master key; the data key itself does not change.
pub fn rewrap_data_key(
    provider: &dyn MasterKeyProvider,
    id: &str,
    wrapped: &WrappedKey,
) -> Result<WrappedKey, CryptoError> {
    let context = data_key_context(id);
    let bytes = provider.unwrap(wrapped, &context)?;
    provider.wrap(&bytes, &context)
}

/// The AAD a data key is wrapped under: its own id, so a wrapped key cannot be swapped for another's.
fn data_key_context(id: &str) -> Vec<u8> {
    let mut context = b"axonflow/data-key/v1\0".to_vec();
    context.extend_from_slice(id.as_bytes());
    context
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(id: &str) -> DataKey {
        DataKey::new(id, &generate_key().expect("random")).expect("key")
    }

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_context() {
        let k = key("dk-1");
        let sealed = k.seal(b"alice@example.com", b"subject:42").expect("seal");
        assert_eq!(k.open(&sealed, b"subject:42").expect("open").expose(), b"alice@example.com");
        assert_eq!(k.open(&sealed, b"subject:43").map(|_| ()), Err(CryptoError::Open), "other context");
        let other = DataKey::new("dk-1", &generate_key().expect("random")).expect("key");
        assert_eq!(other.open(&sealed, b"subject:42").map(|_| ()), Err(CryptoError::Open), "other key");
        assert_eq!(
            key("dk-2").open(&sealed, b"subject:42").map(|_| ()),
            Err(CryptoError::UnknownKey("dk-1".into()))
        );
        assert_eq!(Sealed::key_id_of(&sealed), Ok("dk-1"));
        assert!(!sealed.windows(5).any(|w| w == b"alice"), "the plaintext is not in the output");
    }

    #[test]
    fn every_changed_byte_is_detected() {
        let k = key("dk");
        let sealed = k.seal(b"secret", b"").expect("seal");
        for i in 0..sealed.len() {
            let mut changed = sealed.clone();
            changed[i] ^= 0x01;
            assert!(k.open(&changed, b"").is_err(), "byte {i}");
        }
        assert_ne!(k.seal(b"secret", b"").expect("seal"), sealed, "nonces differ");
    }

    #[test]
    fn derived_keys_are_stable_per_key_and_label() {
        let bytes = generate_key().expect("random");
        let (a, b) = (DataKey::new("a", &bytes).expect("key"), DataKey::new("b", &bytes).expect("key"));
        assert_eq!(a.derive(b"lookup").expose(), b.derive(b"lookup").expose(), "same key, same result");
        assert_ne!(a.derive(b"lookup").expose(), a.derive(b"other").expose());
        assert_ne!(a.derive(b"lookup").expose(), key("c").derive(b"lookup").expose());
        assert_ne!(a.derive(b"lookup").expose(), bytes.expose(), "not the key itself");
    }

    #[test]
    fn debug_shows_no_key_material() {
        let k = key("dk-debug");
        assert_eq!(format!("{k:?}"), "DataKey { id: \"dk-debug\", .. }");
    }

    proptest! {
        #[test]
        fn parsing_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
            let _ = Sealed::parse(&bytes);
            let _ = key("k").open(&bytes, b"");
        }

        #[test]
        fn round_trips(plain in proptest::collection::vec(any::<u8>(), 0..512), aad in ".{0,16}") {
            let k = key("k");
            let sealed = k.seal(&plain, aad.as_bytes()).expect("seal");
            let opened = k.open(&sealed, aad.as_bytes()).expect("open");
            prop_assert_eq!(opened.expose(), &plain);
        }
    }
}

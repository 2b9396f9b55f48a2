//! The one error type of this crate. Messages never contain a license key, a part of one, or key material: an
//! error may be logged or shown to a client, a key must never be.

use std::time::Duration;

use crate::claims::{Environment, KeyKind};
use crate::permission::Permission;

/// Why a key, a claim set, a permission or a key file was refused. Match on [`LicenseError::kind`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct LicenseError {
    kind: ErrorKind,
}

impl LicenseError {
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }
}

impl From<ErrorKind> for LicenseError {
    fn from(kind: ErrorKind) -> LicenseError {
        LicenseError { kind }
    }
}

/// What went wrong. Every payload is a fixed string, a number or a validated enum: never input text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    // --- the key string ---
    #[error("not an AxonFlow license key")]
    NotALicenseKey,
    #[error("license key is longer than {max} bytes")]
    TooLong { max: usize },
    #[error("V1 license keys are deprecated and no longer accepted: rotate to a V2 key")]
    DeprecatedV1,
    #[error("unsupported license key version: only V2 keys are accepted")]
    UnsupportedVersion,
    #[error("malformed license key: {0}")]
    Malformed(&'static str),
    #[error("license key signature is invalid")]
    BadSignature,

    // --- the claims ---
    #[error("invalid license claims: {0}")]
    InvalidClaims(&'static str),
    #[error("invalid {field}: expected 1 to {max} characters of A-Z a-z 0-9 . _ -")]
    InvalidIdentifier { field: &'static str, max: usize },
    #[error("license key expires before it is issued")]
    ExpiryNotAfterIssue,
    #[error("{kind} keys must name a service identity")]
    MissingServiceIdentity { kind: KeyKind },
    #[error("emergency keys may be valid for at most {} hours", max.as_secs() / 3600)]
    EmergencyLifetimeTooLong { max: Duration },
    #[error("a license key may carry at most {max} permissions")]
    TooManyPermissions { max: usize },

    // --- permissions ---
    #[error(
        "invalid permission: expected query, policy:evaluate, mcp:<connector>:<operation>, admin:keys, \
         admin:connectors, admin:audit or admin:policies"
    )]
    InvalidPermission,
    #[error("wildcard permissions are never granted: name each operation, e.g. mcp:amadeus:search_flights")]
    WildcardPermission,
    #[error("permission {permission} may not be granted to {kind} keys")]
    PermissionNotAllowedForKind { kind: KeyKind, permission: Permission },

    // --- verification against this node ---
    #[error(
        "license key is for the {found} environment, this node runs {expected}: never share keys between environments"
    )]
    WrongEnvironment { expected: Environment, found: Environment },
    #[error("license key has expired")]
    Expired,
    #[error("license key is not valid yet")]
    NotYetValid,

    // --- key files and randomness ---
    #[error("invalid signing key: expected an Ed25519 private key in PKCS#8 PEM")]
    InvalidSigningKey,
    #[error("invalid public key: expected an Ed25519 public key (SPKI PEM or 32 bytes base64url)")]
    InvalidPublicKey,
    #[error("fingerprint key must be at least {min} bytes")]
    FingerprintKeyTooShort { min: usize },
    #[error("invalid fingerprint: expected 64 lowercase hex digits")]
    InvalidFingerprint,
    #[error("operating system randomness is unavailable")]
    RandomnessUnavailable,
}

pub(crate) fn err<T>(kind: ErrorKind) -> Result<T, LicenseError> {
    Err(LicenseError::from(kind))
}

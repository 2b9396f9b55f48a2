//! AxonFlow license keys: the `AXON-V2-…` format, Ed25519 issuing and verification, claims, permissions and the
//! keyed fingerprints nodes store instead of keys.
//!
//! **Architecture Invariant:** this crate is pure. No I/O (beside asking the OS for randomness when generating a
//! key), no HTTP, no SQL, no command line, no global state. Storage, transport and the CLI build on this API.
//!
//! **Architecture Invariant:** a node needs only a [`PublicKey`] and a [`Verifier`]. The [`SigningKey`] and the
//! [`Issuer`] live with the operator.
//!
//! **Architecture Invariant:** no key material ever reaches a `Debug` or `Display` or an error message: issued keys
//! come back as [`types::Secret`], [`SigningKey`] and [`FingerprintKey`] print as redacted, and every
//! [`LicenseError`] message is a fixed text.
//!
//! The key format and why it parses unambiguously are documented in `format.rs`; the JSON claims and why unknown
//! fields are refused in `wire.rs`; the permission model in [`Permission`].

mod claims;
mod error;
mod fingerprint;
mod format;
mod issue;
mod keys;
mod permission;
mod verify;
mod wire;

pub use claims::{
    Claims, Environment, KeyId, KeyKind, MAX_EMERGENCY_LIFETIME, MAX_PERMISSIONS, ServiceIdentity,
    ServiceName, ServiceType, TenantId, Tier,
};
pub use error::{ErrorKind, LicenseError};
pub use fingerprint::{Fingerprint, FingerprintKey};
pub use format::MAX_KEY_LEN;
pub use issue::Issuer;
pub use keys::{PublicKey, SigningKey};
pub use permission::{MAX_MCP_NAME_LEN, McpOperation, Permission, PermissionSet};
pub use verify::{
    DEFAULT_CLOCK_SKEW, SignedLicense, Validity, VerifiedLicense, Verifier, inspect_unverified,
};

//! The license crate's one integration-test binary: keys issued and verified through the public API only.

mod fuzz;
mod secrecy;
mod verify;

use license::{
    Claims, Environment, Issuer, KeyId, KeyKind, PermissionSet, ServiceIdentity, ServiceName, ServiceType,
    SigningKey, TenantId, Tier, Verifier,
};
use types::UnixMillis;

pub const HOUR: i64 = 3_600_000;
pub const ISSUED: UnixMillis = UnixMillis(1_767_225_600_000);
pub const EXPIRES: UnixMillis = UnixMillis(1_767_225_600_000 + 90 * 24 * HOUR);

/// A fresh operator key pair.
pub fn fixture() -> (Issuer, Verifier) {
    let issuer = Issuer::new(SigningKey::generate().unwrap());
    let verifier = Verifier::new(issuer.public_key());
    (issuer, verifier)
}

/// A valid prod service key's claims, valid from [`ISSUED`] to [`EXPIRES`].
pub fn service_claims() -> Claims {
    Claims {
        key_id: KeyId::new("key-0001").unwrap(),
        kind: KeyKind::Service,
        tier: Tier::Plus,
        tenant: TenantId::new("my-org").unwrap(),
        service: Some(ServiceIdentity {
            name: ServiceName::new("trip-planner").unwrap(),
            service_type: ServiceType::new("backend-service").unwrap(),
        }),
        environment: Environment::Prod,
        permissions: PermissionSet::parse([
            "query",
            "policy:evaluate",
            "mcp:amadeus:search_flights",
            "mcp:amadeus:search_hotels",
        ])
        .unwrap(),
        issued_at: ISSUED,
        expires_at: EXPIRES,
    }
}

/// No run of 8 characters of `key` may show up in `printed`.
pub fn assert_no_part_of(key: &str, printed: &str) {
    let bytes = key.as_bytes();
    for part in bytes.windows(8.min(bytes.len())) {
        let part = String::from_utf8_lossy(part);
        assert!(!printed.contains(part.as_ref()), "{printed:?} contains {part:?} of the key");
    }
}

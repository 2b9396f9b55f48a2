use std::sync::Arc;
use std::time::Duration;

use engine::{AuthFailure, Authenticator, AuthenticatorConfig, KeyService, NewKey, PresentedCredential};
use license::{
    Environment, FingerprintKey, Issuer, KeyKind, PermissionSet, ServiceIdentity, ServiceName, ServiceType,
    SigningKey, TenantId, Tier, Verifier,
};
use store::Store;
use store::testing::with_each_backend;
use types::{Clock, ManualClock, UnixMillis};

const DAY_MS: i64 = 86_400_000;

struct Fixture {
    signing_pem: types::Secret<String>,
    clock: Arc<ManualClock>,
    keys: KeyService,
    auth: Arc<Authenticator>,
}

fn fixture(store: Arc<dyn Store>, environment: Environment, grace: Duration) -> Fixture {
    let clock = Arc::new(ManualClock::new(UnixMillis(1_800_000_000_000)));
    let signing = SigningKey::generate().expect("signing key");
    let signing_pem = signing.to_pkcs8_pem().expect("pem");
    let verifier = Verifier::new(signing.public_key());
    let fingerprint_key = Arc::new(FingerprintKey::generate().expect("fingerprint key"));
    let auth = Arc::new(Authenticator::new(
        AuthenticatorConfig {
            verifier,
            fingerprint_key: fingerprint_key.clone(),
            environment,
            grace,
            cache_ttl: Duration::from_secs(5),
        },
        store.clone(),
        clock.clone(),
    ));
    let keys = KeyService::new(Some(Issuer::new(signing)), fingerprint_key, store, clock.clone())
        .with_authenticator(auth.clone());
    Fixture { signing_pem, clock, keys, auth }
}

fn service_key(environment: Environment, expires_at: UnixMillis) -> NewKey {
    NewKey {
        kind: KeyKind::Service,
        tier: Tier::Plus,
        tenant: TenantId::new("acme").expect("tenant"),
        service: Some(ServiceIdentity {
            name: ServiceName::new("trip-planner").expect("name"),
            service_type: ServiceType::new("backend-service").expect("type"),
        }),
        environment,
        permissions: PermissionSet::parse(["query", "mcp:amadeus:search_flights"]).expect("permissions"),
        expires_at,
    }
}

#[tokio::test]
async fn a_registered_key_authenticates_by_every_scheme() {
    with_each_backend(|store| async move {
        let f = fixture(store, Environment::Prod, Duration::ZERO);
        let (key, row) = f
            .keys
            .issue(service_key(Environment::Prod, f.clock.now().plus_millis(90 * DAY_MS)), "test")
            .await
            .expect("issue");
        let principal =
            f.auth.authenticate(PresentedCredential::LicenseKey(key.expose())).await.expect("valid");
        assert_eq!((principal.key_id.as_str(), principal.tenant.as_str()), (row.key_id.as_str(), "acme"));
        assert_eq!(principal.display_name(), "trip-planner");
        assert!(principal.allows(&"mcp:amadeus:search_flights".parse().expect("permission")));
        assert!(!principal.allows(&"mcp:amadeus:book".parse().expect("permission")));
        for client_id in ["trip-planner", row.key_id.as_str()] {
            let basic = PresentedCredential::Basic { client_id, secret: key.expose() };
            assert!(f.auth.authenticate(basic).await.is_ok(), "{client_id}");
        }
        let basic = PresentedCredential::Basic { client_id: "someone-else", secret: key.expose() };
        assert_eq!(f.auth.authenticate(basic).await, Err(AuthFailure::ClientIdMismatch));
        let community = PresentedCredential::Basic { client_id: "community", secret: "" };
        assert_eq!(f.auth.authenticate(community).await, Err(AuthFailure::Missing));
    })
    .await;
}

#[tokio::test]
async fn refusals_name_their_reason() {
    with_each_backend(|store| async move {
        let f = fixture(store.clone(), Environment::Prod, Duration::ZERO);
        let expiry = f.clock.now().plus_millis(DAY_MS);
        let (staging, _) =
            f.keys.issue(service_key(Environment::Staging, expiry), "test").await.expect("issue");
        let check = |key: String, expected: AuthFailure| {
            let auth = f.auth.clone();
            async move {
                assert_eq!(auth.authenticate(PresentedCredential::LicenseKey(&key)).await, Err(expected))
            }
        };
        check(staging.expose().clone(), AuthFailure::WrongEnvironment).await;
        check("AXON-PLUS-acme-20271231-abcdef".to_owned(), AuthFailure::DeprecatedFormat).await;
        check("not a key".to_owned(), AuthFailure::Malformed).await;
        // Signed by another issuer.
        let other = fixture(store, Environment::Prod, Duration::ZERO);
        let (foreign, _) =
            other.keys.issue(service_key(Environment::Prod, expiry), "test").await.expect("issue");
        check(foreign.expose().clone(), AuthFailure::BadSignature).await;
    })
    .await;
}

#[tokio::test]
async fn a_key_signed_by_the_issuer_but_never_registered_here_is_unknown() {
    with_each_backend(|store| async move {
        let f = fixture(store, Environment::Prod, Duration::ZERO);
        // The same issuer registers a key in another deployment's store.
        let elsewhere = store::testing::TestDatabase::sqlite();
        let signing = SigningKey::from_pkcs8_pem(f.signing_pem.expose()).expect("signing key");
        let other = KeyService::new(
            Some(Issuer::new(signing)),
            Arc::new(FingerprintKey::generate().expect("key")),
            elsewhere.open().await,
            f.clock.clone(),
        );
        let (key, _) = other
            .issue(service_key(Environment::Prod, f.clock.now().plus_millis(DAY_MS)), "test")
            .await
            .expect("issue");
        assert_eq!(
            f.auth.authenticate(PresentedCredential::LicenseKey(key.expose())).await,
            Err(AuthFailure::Unknown)
        );
    })
    .await;
}

#[tokio::test]
async fn expiry_with_and_without_grace() {
    with_each_backend(|store| async move {
        let strict = fixture(store.clone(), Environment::Prod, Duration::ZERO);
        let (key, _) = strict
            .keys
            .issue(service_key(Environment::Prod, strict.clock.now().plus_millis(1_000)), "test")
            .await
            .expect("issue");
        // Valid now: the key's checked signature is cached for the cache time (5 s), but its dates are still
        // checked on every request.
        assert!(strict.auth.authenticate(PresentedCredential::LicenseKey(key.expose())).await.is_ok());
        strict.clock.advance_millis(1_000);
        assert_eq!(
            strict.auth.authenticate(PresentedCredential::LicenseKey(key.expose())).await,
            Err(AuthFailure::Expired)
        );

        let lenient = fixture(store, Environment::Prod, Duration::from_secs(3_600));
        let (key, _) = lenient
            .keys
            .issue(service_key(Environment::Prod, lenient.clock.now().plus_millis(1_000)), "test")
            .await
            .expect("issue");
        lenient.clock.advance_millis(61_000);
        let principal =
            lenient.auth.authenticate(PresentedCredential::LicenseKey(key.expose())).await.expect("in grace");
        assert_eq!(principal.grace_remaining, Some(Duration::from_secs(3_540)));
        lenient.clock.advance_millis(3_600_000);
        assert_eq!(
            lenient.auth.authenticate(PresentedCredential::LicenseKey(key.expose())).await,
            Err(AuthFailure::Expired)
        );
    })
    .await;
}

#[tokio::test]
async fn revocation_is_immediate_and_rotation_overlaps() {
    with_each_backend(|store| async move {
        let f = fixture(store, Environment::Prod, Duration::ZERO);
        let expiry = f.clock.now().plus_millis(90 * DAY_MS);
        let (old, old_row) =
            f.keys.issue(service_key(Environment::Prod, expiry), "test").await.expect("issue");
        assert!(
            f.auth.authenticate(PresentedCredential::LicenseKey(old.expose())).await.is_ok(),
            "warms the cache"
        );

        let (new, new_row) =
            f.keys.rotate(&old_row.key_id, Duration::from_secs(24 * 3600), "test").await.expect("rotate");
        assert_eq!(new_row.expires_at.0 - new_row.issued_at.0, 90 * DAY_MS, "same lifetime");
        assert_eq!(new_row.permissions, old_row.permissions);
        assert!(
            f.auth.authenticate(PresentedCredential::LicenseKey(old.expose())).await.is_ok(),
            "old key works during the overlap"
        );
        assert!(f.auth.authenticate(PresentedCredential::LicenseKey(new.expose())).await.is_ok());
        f.clock.advance_millis(24 * 3_600_000);
        assert_eq!(
            f.auth.authenticate(PresentedCredential::LicenseKey(old.expose())).await,
            Err(AuthFailure::Revoked)
        );
        assert!(f.auth.authenticate(PresentedCredential::LicenseKey(new.expose())).await.is_ok());

        let revoked = f.keys.revoke(&new_row.key_id, "compromised", "test").await.expect("revoke");
        assert_eq!(revoked.revocation_reason.as_deref(), Some("compromised"));
        assert_eq!(
            f.auth.authenticate(PresentedCredential::LicenseKey(new.expose())).await,
            Err(AuthFailure::Revoked),
            "at once"
        );
        assert!(matches!(
            f.keys.rotate(&new_row.key_id, Duration::ZERO, "test").await,
            Err(engine::KeyError::AlreadyRevoked)
        ));
        assert!(matches!(f.keys.revoke("no-such-key", "x", "test").await, Err(engine::KeyError::NotFound)));
    })
    .await;
}

#[tokio::test]
async fn keys_cannot_be_issued_without_the_signing_key_or_with_wildcards() {
    with_each_backend(|store| async move {
        let f = fixture(store.clone(), Environment::Prod, Duration::ZERO);
        let verify_only =
            KeyService::new(None, Arc::new(FingerprintKey::generate().expect("key")), store, f.clock.clone());
        let error = verify_only
            .issue(service_key(Environment::Prod, UnixMillis(i64::MAX)), "test")
            .await
            .expect_err("no signer");
        assert!(matches!(error, engine::KeyError::NoSigningKey));
        assert!(PermissionSet::parse(["mcp:*:*"]).is_err());
    })
    .await;
}

#[tokio::test]
async fn nothing_printed_about_a_credential_contains_the_key() {
    with_each_backend(|store| async move {
        let f = fixture(store, Environment::Prod, Duration::ZERO);
        let (key, row) = f
            .keys
            .issue(service_key(Environment::Prod, f.clock.now().plus_millis(DAY_MS)), "test")
            .await
            .expect("issue");
        let principal =
            f.auth.authenticate(PresentedCredential::LicenseKey(key.expose())).await.expect("valid");
        let signature = &key.expose()[key.expose().len() - 20..];
        for shown in [
            format!("{principal:?}"),
            format!("{row:?}"),
            format!("{:?}", PresentedCredential::Basic { client_id: "x", secret: key.expose() }),
            format!("{key:?}"),
            format!("{:?}", f.auth),
        ] {
            assert!(!shown.contains(signature), "{shown}");
        }
    })
    .await;
}

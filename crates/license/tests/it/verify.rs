//! Issue, then verify: the round trip and every way a key is refused.

use std::time::Duration;

use license::{
    Claims, Environment, ErrorKind, KeyKind, Permission, PermissionSet, Validity, inspect_unverified,
};
use types::UnixMillis;

use crate::{EXPIRES, HOUR, ISSUED, fixture, service_claims};

const NO_GRACE: Duration = Duration::ZERO;
const DAY_GRACE: Duration = Duration::from_secs(24 * 3600);

/// Issues `claims`, verifies the key on a `env` node at `now` with `grace`, and compares the validity (or the
/// error kind) with `expected`.
fn check(
    claims: Claims,
    env: Environment,
    now: UnixMillis,
    grace: Duration,
    expected: Result<Validity, ErrorKind>,
) {
    let (issuer, verifier) = fixture();
    let key = issuer.issue(&claims).unwrap();
    let actual = verifier.verify(key.expose(), env, now, grace);
    match (&actual, &expected) {
        (Ok(verified), Ok(_)) => assert_eq!(verified.claims(), &claims),
        (Err(error), Err(_)) => crate::assert_no_part_of(key.expose(), &error.to_string()),
        _ => {}
    }
    assert_eq!(actual.map(|v| v.validity()).map_err(|e| e.kind().clone()), expected);
}

fn valid_for(millis: i64) -> Result<Validity, ErrorKind> {
    Ok(Validity::Valid { expires_in: Duration::from_millis(u64::try_from(millis).unwrap()) })
}

fn in_grace(millis: i64) -> Result<Validity, ErrorKind> {
    Ok(Validity::InGrace { grace_remaining: Duration::from_millis(u64::try_from(millis).unwrap()) })
}

const PROD: Environment = Environment::Prod;

#[test]
fn dates() {
    let lifetime = EXPIRES.0 - ISSUED.0;
    check(service_claims(), PROD, ISSUED, NO_GRACE, valid_for(lifetime));
    check(service_claims(), PROD, ISSUED.plus_millis(HOUR), NO_GRACE, valid_for(lifetime - HOUR));
    check(service_claims(), PROD, EXPIRES.plus_millis(-1), NO_GRACE, valid_for(1));
    check(service_claims(), PROD, EXPIRES, NO_GRACE, Err(ErrorKind::Expired));
    check(service_claims(), PROD, EXPIRES.plus_millis(HOUR), NO_GRACE, Err(ErrorKind::Expired));
    check(service_claims(), PROD, UnixMillis(i64::MAX), DAY_GRACE, Err(ErrorKind::Expired));
    // Grace: still accepted, and says how long is left.
    check(service_claims(), PROD, EXPIRES, DAY_GRACE, in_grace(24 * HOUR));
    check(service_claims(), PROD, EXPIRES.plus_millis(23 * HOUR), DAY_GRACE, in_grace(HOUR));
    check(service_claims(), PROD, EXPIRES.plus_millis(24 * HOUR - 1), DAY_GRACE, in_grace(1));
    check(service_claims(), PROD, EXPIRES.plus_millis(24 * HOUR), DAY_GRACE, Err(ErrorKind::Expired));
    check(service_claims(), PROD, EXPIRES.plus_millis(-1), DAY_GRACE, valid_for(1));
    // Not yet valid, with the default 60 s of clock skew.
    check(service_claims(), PROD, ISSUED.plus_millis(-60_000), NO_GRACE, valid_for(lifetime + 60_000));
    check(service_claims(), PROD, ISSUED.plus_millis(-60_001), NO_GRACE, Err(ErrorKind::NotYetValid));
    check(service_claims(), PROD, UnixMillis(0), NO_GRACE, Err(ErrorKind::NotYetValid));
    check(service_claims(), PROD, UnixMillis(i64::MIN), NO_GRACE, Err(ErrorKind::NotYetValid));
}

#[test]
fn clock_skew_is_configurable() {
    let (issuer, verifier) = fixture();
    let key = issuer.issue(&service_claims()).unwrap();
    let strict = verifier.with_clock_skew(Duration::ZERO);
    let result = strict.verify(key.expose(), PROD, ISSUED.plus_millis(-1), NO_GRACE);
    assert_eq!(result.unwrap_err().kind(), &ErrorKind::NotYetValid);
    assert!(strict.verify(key.expose(), PROD, ISSUED, NO_GRACE).is_ok());
}

#[test]
fn environments_are_never_shared() {
    let claims_in = |environment| Claims { environment, ..service_claims() };
    for key_env in Environment::ALL {
        for node_env in Environment::ALL {
            let expected = if key_env == node_env {
                valid_for(EXPIRES.0 - ISSUED.0)
            } else {
                Err(ErrorKind::WrongEnvironment { expected: node_env, found: key_env })
            };
            check(claims_in(key_env), node_env, ISSUED, NO_GRACE, expected);
        }
    }
    let (issuer, verifier) = fixture();
    let key = issuer.issue(&claims_in(Environment::Dev)).unwrap();
    let message = verifier.verify(key.expose(), PROD, ISSUED, NO_GRACE).unwrap_err().to_string();
    assert_eq!(
        message,
        "license key is for the dev environment, this node runs prod: never share keys between environments"
    );
}

#[test]
fn round_trip_keeps_every_claim() {
    let (issuer, verifier) = fixture();
    for kind in KeyKind::ALL {
        let claims = Claims {
            kind,
            permissions: kind.default_permissions(),
            expires_at: ISSUED.plus_millis(HOUR),
            ..service_claims()
        };
        let key = issuer.issue(&claims).unwrap();
        assert!(key.expose().starts_with("AXON-V2-eyJ"), "JSON object in base64url");
        let verified = verifier.verify(key.expose(), PROD, ISSUED, NO_GRACE).unwrap();
        assert_eq!(verified.claims(), &claims);
        assert!(!verified.is_in_grace());
        assert_eq!(inspect_unverified(key.expose()), Ok(claims.clone()));
        assert_eq!(verified.into_claims(), claims);
    }
}

#[test]
fn tampered_keys_are_refused() {
    let (issuer, verifier) = fixture();
    let key = issuer.issue(&service_claims()).unwrap();
    let key = key.expose();
    let signature_start = key.len() - 128;
    for i in "AXON-V2-".len()..key.len() {
        if i == signature_start - 1 {
            continue; // the separator itself
        }
        let original = key.as_bytes()[i];
        // Another character of the same alphabet, so only the signature can tell.
        let replacement = match (i >= signature_start, original) {
            (true, b'0') => b'1',
            (true, _) => b'0',
            (false, b'A') => b'-',
            (false, _) => b'A',
        };
        let mut tampered = key.as_bytes().to_vec();
        tampered[i] = replacement;
        let tampered = String::from_utf8(tampered).unwrap();
        let error = verifier.verify(&tampered, PROD, ISSUED, NO_GRACE).unwrap_err();
        assert_eq!(error.kind(), &ErrorKind::BadSignature, "position {i}");
    }
}

#[test]
fn keys_from_another_operator_are_refused() {
    let (issuer, _) = fixture();
    let (_, other_verifier) = fixture();
    let key = issuer.issue(&service_claims()).unwrap();
    let error = other_verifier.verify(key.expose(), PROD, ISSUED, NO_GRACE).unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::BadSignature);
}

#[test]
fn v1_keys_are_refused_as_deprecated() {
    let (_, verifier) = fixture();
    for key in ["AXON-PLUS-my-org-20261231-a1b2c3d4e5f6", "AXON-PRO-acme-1767225600-deadbeefdeadbeef"] {
        let error = verifier.verify(key, PROD, ISSUED, NO_GRACE).unwrap_err();
        assert_eq!(error.kind(), &ErrorKind::DeprecatedV1);
        assert_eq!(
            error.to_string(),
            "V1 license keys are deprecated and no longer accepted: rotate to a V2 key"
        );
        assert_eq!(inspect_unverified(key).unwrap_err().kind(), &ErrorKind::DeprecatedV1);
    }
}

#[test]
fn issue_refuses_what_a_kind_may_not_hold() {
    let (issuer, _) = fixture();
    let with = |kind: KeyKind, permissions: &[&str]| Claims {
        kind,
        permissions: PermissionSet::parse(permissions.iter().copied()).unwrap(),
        ..service_claims()
    };
    let refused = |claims: Claims| issuer.issue(&claims).unwrap_err().kind().clone();
    let not_allowed =
        |kind, p: &str| ErrorKind::PermissionNotAllowedForKind { kind, permission: p.parse().unwrap() };
    assert_eq!(
        refused(with(KeyKind::User, &["mcp:amadeus:search_flights"])),
        not_allowed(KeyKind::User, "mcp:amadeus:search_flights")
    );
    assert_eq!(refused(with(KeyKind::Service, &["admin:keys"])), not_allowed(KeyKind::Service, "admin:keys"));
    assert_eq!(
        refused(Claims { service: None, ..service_claims() }),
        ErrorKind::MissingServiceIdentity { kind: KeyKind::Service }
    );
    assert_eq!(refused(Claims { expires_at: ISSUED, ..service_claims() }), ErrorKind::ExpiryNotAfterIssue);
    // Wildcards never get as far as a claim set.
    for wildcard in ["mcp:*:*", "mcp:amadeus:*", "*"] {
        assert_eq!(wildcard.parse::<Permission>().unwrap_err().kind(), &ErrorKind::WildcardPermission);
    }
}

#[test]
fn verified_permissions_per_kind() {
    let (issuer, verifier) = fixture();
    // (kind, extra grants, permission asked for, allowed)
    let cases: &[(KeyKind, &[&str], &str, bool)] = &[
        (KeyKind::User, &[], "query", true),
        (KeyKind::User, &[], "policy:evaluate", true),
        (KeyKind::User, &[], "mcp:amadeus:search_flights", false),
        (KeyKind::User, &[], "admin:keys", false),
        (KeyKind::Service, &["mcp:amadeus:search_flights"], "mcp:amadeus:search_flights", true),
        (KeyKind::Service, &["mcp:amadeus:search_flights"], "mcp:amadeus:search_hotels", false),
        (KeyKind::Service, &["mcp:amadeus:search_flights"], "mcp:salesforce:search_flights", false),
        (KeyKind::Service, &[], "admin:audit", false),
        (KeyKind::Admin, &[], "admin:keys", true),
        (KeyKind::Admin, &[], "admin:connectors", true),
        (KeyKind::Admin, &[], "admin:audit", true),
        (KeyKind::Admin, &[], "admin:policies", true),
        (KeyKind::Admin, &[], "query", true),
        (KeyKind::Admin, &[], "mcp:amadeus:search_flights", false),
        (KeyKind::Admin, &["mcp:amadeus:search_flights"], "mcp:amadeus:search_flights", true),
        (KeyKind::Emergency, &[], "admin:keys", true),
    ];
    for &(kind, extra, asked, allowed) in cases {
        let mut permissions = kind.default_permissions();
        for grant in extra {
            permissions.insert(grant.parse().unwrap());
        }
        let claims = Claims { kind, permissions, expires_at: ISSUED.plus_millis(HOUR), ..service_claims() };
        let key = issuer.issue(&claims).unwrap();
        let verified = verifier.verify(key.expose(), PROD, ISSUED, NO_GRACE).unwrap();
        let asked: Permission = asked.parse().unwrap();
        assert_eq!(verified.claims().permissions.allows(&asked), allowed, "{kind} asking for {asked}");
    }
}

#[test]
fn oversized_claims_are_refused_at_issue() {
    let (issuer, _) = fixture();
    let name = |i: usize| format!("n{i:03}{}", "o".repeat(60));
    let permissions =
        (0..license::MAX_PERMISSIONS).map(|i| Permission::mcp(&name(i), &name(i)).unwrap()).collect();
    let error = issuer.issue(&Claims { permissions, ..service_claims() }).unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::TooLong { max: license::MAX_KEY_LEN });
}

//! What a license key says: who it belongs to, what it may do, where and when it is valid.
//!
//! These are domain types without serde; the signed JSON lives in `wire.rs`. [`Claims::validate`] holds every
//! rule a key must satisfy, and runs both when a key is issued and when one is decoded, so a node never acts on
//! claims an issuer should have refused.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use types::UnixMillis;

use crate::error::{ErrorKind, LicenseError, err};
use crate::permission::{Permission, PermissionSet, is_identifier};

/// Most permissions one key may carry: bounds the key's size.
pub const MAX_PERMISSIONS: usize = 128;
/// Longest lifetime of an emergency (break-glass) key.
pub const MAX_EMERGENCY_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);

/// Everything a V2 key asserts. Fields are public so the issuing CLI can fill them in; [`Claims::validate`] (run by
/// `Issuer::issue` and on every decode) enforces the rules across fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub key_id: KeyId,
    pub kind: KeyKind,
    pub tier: Tier,
    /// The organisation (tenant) the key belongs to.
    pub tenant: TenantId,
    /// Required for [`KeyKind::Service`], optional otherwise.
    pub service: Option<ServiceIdentity>,
    pub environment: Environment,
    pub permissions: PermissionSet,
    /// Also the start of validity: a key is refused before it was issued.
    pub issued_at: UnixMillis,
    /// First instant at which the key is expired (exclusive end of validity).
    pub expires_at: UnixMillis,
}

impl Claims {
    /// The rules across fields. Single fields are already valid by construction.
    pub fn validate(&self) -> Result<(), LicenseError> {
        if self.expires_at <= self.issued_at {
            return err(ErrorKind::ExpiryNotAfterIssue);
        }
        if self.kind == KeyKind::Service && self.service.is_none() {
            return err(ErrorKind::MissingServiceIdentity { kind: self.kind });
        }
        let lifetime_millis = self.expires_at.0.saturating_sub(self.issued_at.0);
        if self.kind == KeyKind::Emergency && lifetime_millis > millis(MAX_EMERGENCY_LIFETIME) {
            return err(ErrorKind::EmergencyLifetimeTooLong { max: MAX_EMERGENCY_LIFETIME });
        }
        if self.permissions.len() > MAX_PERMISSIONS {
            return err(ErrorKind::TooManyPermissions { max: MAX_PERMISSIONS });
        }
        if let Some(permission) = self.permissions.iter().find(|p| !self.kind.may_hold(p)) {
            return err(ErrorKind::PermissionNotAllowedForKind {
                kind: self.kind,
                permission: permission.clone(),
            });
        }
        Ok(())
    }
}

/// What sort of credential a key is. Admin and emergency keys are separate credentials from service keys: no
/// service key can carry an admin permission.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// An application or agent: queries, policy evaluation and named MCP operations.
    Service,
    /// A person: queries and policy evaluation, no direct MCP access.
    User,
    /// An operator: everything a service may hold plus key, connector, policy and audit administration.
    Admin,
    /// Break-glass admin access, valid for at most [`MAX_EMERGENCY_LIFETIME`].
    Emergency,
}

impl KeyKind {
    pub const ALL: [KeyKind; 4] = [KeyKind::Service, KeyKind::User, KeyKind::Admin, KeyKind::Emergency];

    /// Whether a key of this kind may be granted `permission` at all.
    pub fn may_hold(self, permission: &Permission) -> bool {
        match permission {
            Permission::Query | Permission::PolicyEvaluate => true,
            Permission::Mcp(_) | Permission::MetricsRead => self != KeyKind::User,
            _ => permission.is_admin() && matches!(self, KeyKind::Admin | KeyKind::Emergency),
        }
    }

    /// What a new key of this kind gets when the issuer names nothing else. Services get no MCP operation by
    /// default: each must be named.
    pub fn default_permissions(self) -> PermissionSet {
        let basic = [Permission::Query, Permission::PolicyEvaluate];
        let admin = [
            Permission::AdminKeys,
            Permission::AdminConnectors,
            Permission::AdminAudit,
            Permission::AdminPolicies,
            Permission::MetricsRead,
        ];
        match self {
            KeyKind::Service | KeyKind::User => basic.into_iter().collect(),
            KeyKind::Admin | KeyKind::Emergency => basic.into_iter().chain(admin).collect(),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Service => "service",
            KeyKind::User => "user",
            KeyKind::Admin => "admin",
            KeyKind::Emergency => "emergency",
        }
    }
}

/// Commercial tier; sets the default rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tier {
    Pro,
    Ent,
    Plus,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Pro, Tier::Ent, Tier::Plus];

    pub fn default_rate_limit_per_minute(self) -> u32 {
        match self {
            Tier::Pro => 100,
            Tier::Ent => 500,
            Tier::Plus => 1000,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Pro => "PRO",
            Tier::Ent => "ENT",
            Tier::Plus => "PLUS",
        }
    }
}

/// Deployment environment. A key is valid in exactly one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Environment {
    Dev,
    Staging,
    Prod,
}

impl Environment {
    pub const ALL: [Environment; 3] = [Environment::Dev, Environment::Staging, Environment::Prod];

    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Dev => "dev",
            Environment::Staging => "staging",
            Environment::Prod => "prod",
        }
    }
}

macro_rules! str_enum {
    ($ty:ident, $what:literal) => {
        impl FromStr for $ty {
            type Err = LicenseError;

            /// The exact spelling of `as_str`, nothing else.
            fn from_str(s: &str) -> Result<$ty, LicenseError> {
                $ty::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| LicenseError::from(ErrorKind::InvalidClaims(concat!("unknown ", $what))))
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

str_enum!(KeyKind, "key kind");
str_enum!(Tier, "tier");
str_enum!(Environment, "environment");

macro_rules! identifier {
    ($(#[$doc:meta])* $ty:ident, $field:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $ty(String);

        impl $ty {
            pub const MAX_LEN: usize = $max;

            pub fn new(value: &str) -> Result<$ty, LicenseError> {
                if is_identifier(value, $ty::MAX_LEN) {
                    Ok($ty(value.to_owned()))
                } else {
                    err(ErrorKind::InvalidIdentifier { field: $field, max: $ty::MAX_LEN })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

identifier!(
    /// Identifies one issued key, for listing and revocation. Not secret.
    KeyId, "key id", 64
);
identifier!(
    /// The organisation a key belongs to.
    TenantId, "tenant id", 128
);
identifier!(
    /// A service's name, e.g. `trip-planner`.
    ServiceName, "service name", 64
);
identifier!(
    /// A service's type, e.g. `backend-service`.
    ServiceType, "service type", 64
);

impl KeyId {
    /// 128 random bits from the operating system, as 32 hex digits.
    pub fn random() -> Result<KeyId, LicenseError> {
        let mut bytes = [0_u8; 16];
        getrandom::fill(&mut bytes).map_err(|_| LicenseError::from(ErrorKind::RandomnessUnavailable))?;
        Ok(KeyId(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }
}

/// The service a key was issued to (the guide's `serviceIdentity`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceIdentity {
    pub name: ServiceName,
    pub service_type: ServiceType,
}

pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid service key's claims; each case changes one thing.
    pub(crate) fn service_claims() -> Claims {
        Claims {
            key_id: KeyId::new("k1").unwrap(),
            kind: KeyKind::Service,
            tier: Tier::Plus,
            tenant: TenantId::new("my-org").unwrap(),
            service: Some(ServiceIdentity {
                name: ServiceName::new("trip-planner").unwrap(),
                service_type: ServiceType::new("backend-service").unwrap(),
            }),
            environment: Environment::Prod,
            permissions: PermissionSet::parse(["query", "mcp:amadeus:search_flights"]).unwrap(),
            issued_at: UnixMillis(1_000_000),
            expires_at: UnixMillis(2_000_000),
        }
    }

    fn check(edit: impl FnOnce(&mut Claims), expected: Result<(), ErrorKind>) {
        let mut claims = service_claims();
        edit(&mut claims);
        assert_eq!(claims.validate().map_err(|e| e.kind().clone()), expected, "{claims:?}");
    }

    fn perms(list: &[&str]) -> PermissionSet {
        PermissionSet::parse(list.iter().copied()).unwrap()
    }

    const HOUR: i64 = 3_600_000;

    #[test]
    fn validation_rules() {
        check(|_| {}, Ok(()));
        check(|c| c.expires_at = c.issued_at, Err(ErrorKind::ExpiryNotAfterIssue));
        check(|c| c.expires_at = UnixMillis(0), Err(ErrorKind::ExpiryNotAfterIssue));
        check(|c| c.service = None, Err(ErrorKind::MissingServiceIdentity { kind: KeyKind::Service }));
        check(|c| (c.kind, c.service, c.permissions) = (KeyKind::User, None, perms(&["query"])), Ok(()));
        check(|c| c.permissions = PermissionSet::new(), Ok(()));
        check(
            |c| {
                c.permissions =
                    (0..=MAX_PERMISSIONS).map(|i| Permission::mcp("c", &format!("op{i}")).unwrap()).collect()
            },
            Err(ErrorKind::TooManyPermissions { max: MAX_PERMISSIONS }),
        );
    }

    #[test]
    fn emergency_keys_are_short_lived() {
        let emergency = |c: &mut Claims, hours: i64| {
            (c.kind, c.permissions) = (KeyKind::Emergency, KeyKind::Emergency.default_permissions());
            c.expires_at = c.issued_at.plus_millis(hours * HOUR);
        };
        check(|c| emergency(c, 24), Ok(()));
        check(|c| emergency(c, 25), Err(ErrorKind::EmergencyLifetimeTooLong { max: MAX_EMERGENCY_LIFETIME }));
    }

    #[test]
    fn permissions_per_kind() {
        let denied = |kind, p: &str| {
            Err(ErrorKind::PermissionNotAllowedForKind { kind, permission: p.parse().unwrap() })
        };
        let as_kind = |kind: KeyKind, list: &'static [&'static str]| {
            move |c: &mut Claims| (c.kind, c.permissions) = (kind, perms(list))
        };
        check(as_kind(KeyKind::User, &["query", "policy:evaluate"]), Ok(()));
        check(
            as_kind(KeyKind::User, &["mcp:amadeus:search_flights"]),
            denied(KeyKind::User, "mcp:amadeus:search_flights"),
        );
        check(as_kind(KeyKind::User, &["admin:audit"]), denied(KeyKind::User, "admin:audit"));
        check(as_kind(KeyKind::Service, &["query", "policy:evaluate", "mcp:snowflake:query"]), Ok(()));
        check(as_kind(KeyKind::Service, &["admin:keys"]), denied(KeyKind::Service, "admin:keys"));
        check(as_kind(KeyKind::Service, &["admin:connectors"]), denied(KeyKind::Service, "admin:connectors"));
        check(
            as_kind(
                KeyKind::Admin,
                &["query", "mcp:a:b", "admin:keys", "admin:connectors", "admin:audit", "admin:policies"],
            ),
            Ok(()),
        );
    }

    #[test]
    fn default_permissions_per_kind() {
        let show = |kind: KeyKind| {
            kind.default_permissions().iter().map(ToString::to_string).collect::<Vec<_>>().join(" ")
        };
        assert_eq!(show(KeyKind::User), "query policy:evaluate");
        assert_eq!(show(KeyKind::Service), "query policy:evaluate");
        let admin =
            "query policy:evaluate admin:keys admin:connectors admin:audit admin:policies metrics:read";
        assert_eq!(show(KeyKind::Admin), admin);
        assert_eq!(show(KeyKind::Emergency), admin);
        for kind in KeyKind::ALL {
            assert!(kind.default_permissions().iter().all(|p| kind.may_hold(p)), "{kind}");
        }
    }

    #[test]
    fn tiers_and_rate_limits() {
        let table: Vec<_> =
            Tier::ALL.iter().map(|t| (t.to_string(), t.default_rate_limit_per_minute())).collect();
        assert_eq!(table, [("PRO".to_owned(), 100), ("ENT".to_owned(), 500), ("PLUS".to_owned(), 1000)]);
        assert_eq!("PLUS".parse::<Tier>(), Ok(Tier::Plus));
        assert!("plus".parse::<Tier>().is_err());
    }

    #[test]
    fn names_round_trip_exactly() {
        for env in Environment::ALL {
            assert_eq!(env.as_str().parse::<Environment>(), Ok(env));
        }
        for kind in KeyKind::ALL {
            assert_eq!(kind.as_str().parse::<KeyKind>(), Ok(kind));
        }
        for bad in ["", "Prod", "production", " prod"] {
            assert!(bad.parse::<Environment>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn identifiers() {
        let check_id = |s: &str, ok: bool| assert_eq!(TenantId::new(s).is_ok(), ok, "{s:?}");
        check_id("my-org", true);
        check_id("Org_1.eu", true);
        check_id("", false);
        check_id("my org", false);
        check_id("org:1", false);
        check_id("org*", false);
        check_id(&"o".repeat(128), true);
        check_id(&"o".repeat(129), false);
        let random = KeyId::random().unwrap();
        assert_eq!(random.as_str().len(), 32);
        assert_ne!(random, KeyId::random().unwrap());
    }
}

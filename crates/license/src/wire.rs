//! The signed JSON inside a V2 key. The only serde in this crate: domain types convert to and from these DTOs.
//!
//! **Unknown fields are refused** (`deny_unknown_fields`). A key is signed by an issuer that may be newer than the
//! node verifying it; if that issuer adds a *restricting* claim (an IP allow-list, a node cap) and an older node
//! ignored it, the key would grant more than was signed for: fail open. So strictness wins over forward
//! compatibility, as with JWS `crit`. A format that needs new claims gets a new version prefix (`AXON-V3-`),
//! which old nodes refuse by name. Duplicate fields and duplicate permissions are refused for the same reason:
//! two readers must never see two different keys in one payload.

use serde::{Deserialize, Serialize};
use types::UnixMillis;

use crate::claims::{Claims, KeyId, ServiceIdentity, ServiceName, ServiceType, TenantId};
use crate::error::{ErrorKind, LicenseError, err};
use crate::permission::{Permission, PermissionSet};

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimsJson {
    key_id: String,
    kind: String,
    tier: String,
    tenant_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    service: Option<ServiceJson>,
    environment: String,
    permissions: Vec<String>,
    issued_at_ms: i64,
    expires_at_ms: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceJson {
    name: String,
    #[serde(rename = "type")]
    service_type: String,
}

pub(crate) fn encode(claims: &Claims) -> Result<Vec<u8>, LicenseError> {
    let json = ClaimsJson {
        key_id: claims.key_id.to_string(),
        kind: claims.kind.to_string(),
        tier: claims.tier.to_string(),
        tenant_id: claims.tenant.to_string(),
        service: claims
            .service
            .as_ref()
            .map(|s| ServiceJson { name: s.name.to_string(), service_type: s.service_type.to_string() }),
        environment: claims.environment.to_string(),
        permissions: claims.permissions.iter().map(ToString::to_string).collect(),
        issued_at_ms: claims.issued_at.0,
        expires_at_ms: claims.expires_at.0,
    };
    serde_json::to_vec(&json)
        .map_err(|_| LicenseError::from(ErrorKind::InvalidClaims("cannot encode the claims")))
}

/// JSON bytes to validated claims. Error messages are fixed strings: serde's would quote payload values.
pub(crate) fn decode(bytes: &[u8]) -> Result<Claims, LicenseError> {
    let json: ClaimsJson = serde_json::from_slice(bytes).map_err(|e| {
        LicenseError::from(ErrorKind::InvalidClaims(match e.classify() {
            serde_json::error::Category::Data => "payload does not match the V2 claims schema",
            _ => "payload is not JSON",
        }))
    })?;
    let mut permissions = PermissionSet::new();
    for text in &json.permissions {
        if !permissions.insert(text.parse::<Permission>()?) {
            return err(ErrorKind::InvalidClaims("duplicate permission"));
        }
    }
    let claims = Claims {
        key_id: KeyId::new(&json.key_id)?,
        kind: json.kind.parse()?,
        tier: json.tier.parse()?,
        tenant: TenantId::new(&json.tenant_id)?,
        service: match json.service {
            Some(s) => Some(ServiceIdentity {
                name: ServiceName::new(&s.name)?,
                service_type: ServiceType::new(&s.service_type)?,
            }),
            None => None,
        },
        environment: json.environment.parse()?,
        permissions,
        issued_at: UnixMillis(json.issued_at_ms),
        expires_at: UnixMillis(json.expires_at_ms),
    };
    claims.validate()?;
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"{"key_id":"k1","kind":"user","tier":"PRO","tenant_id":"my-org","environment":"dev","permissions":["query"],"issued_at_ms":1,"expires_at_ms":2}"#;

    /// Decodes `json` after replacing `from` by `to` in [`VALID`], and compares the outcome.
    fn check(from: &str, to: &str, expected: Result<(), ErrorKind>) {
        let json = VALID.replacen(from, to, 1);
        assert!(from.is_empty() || json != VALID, "replacement {from:?} did not apply");
        let actual = decode(json.as_bytes()).map(|_| ()).map_err(|e| e.kind().clone());
        assert_eq!(actual, expected, "{json}");
    }

    const SCHEMA: ErrorKind = ErrorKind::InvalidClaims("payload does not match the V2 claims schema");

    #[test]
    fn decode_cases() {
        check("", "", Ok(()));
        check(r#""query""#, r#""query","policy:evaluate""#, Ok(()));
        check(r#""environment""#, r#""service":{"name":"s","type":"t"},"environment""#, Ok(()));
        check(
            r#""kind":"user""#,
            r#""kind":"service""#,
            Err(ErrorKind::MissingServiceIdentity { kind: crate::KeyKind::Service }),
        );
        check("{", "{\"extra\":1,", Err(SCHEMA));
        check(r#""environment""#, r#""service":{"name":"s","type":"t","x":1},"environment""#, Err(SCHEMA));
        check("{", r#"{"tier":"PRO","#, Err(SCHEMA));
        check(r#","expires_at_ms":2"#, "", Err(SCHEMA));
        check(r#""permissions":["query"]"#, r#""permissions":"query""#, Err(SCHEMA));
        check(r#""issued_at_ms":1"#, r#""issued_at_ms":1.5"#, Err(SCHEMA));
        check(r#""query""#, r#""query","query""#, Err(ErrorKind::InvalidClaims("duplicate permission")));
        check(r#""query""#, r#""mcp:*:*""#, Err(ErrorKind::WildcardPermission));
        check(r#""query""#, r#""*""#, Err(ErrorKind::WildcardPermission));
        check(r#""tier":"PRO""#, r#""tier":"GOLD""#, Err(ErrorKind::InvalidClaims("unknown tier")));
        check(
            r#""environment":"dev""#,
            r#""environment":"Dev""#,
            Err(ErrorKind::InvalidClaims("unknown environment")),
        );
        check(r#""kind":"user""#, r#""kind":"root""#, Err(ErrorKind::InvalidClaims("unknown key kind")));
        check(
            r#""tenant_id":"my-org""#,
            r#""tenant_id":"my org""#,
            Err(ErrorKind::InvalidIdentifier { field: "tenant id", max: 128 }),
        );
        check(r#""expires_at_ms":2"#, r#""expires_at_ms":1"#, Err(ErrorKind::ExpiryNotAfterIssue));
        check("}", "", Err(ErrorKind::InvalidClaims("payload is not JSON")));
        check("{", "[", Err(ErrorKind::InvalidClaims("payload is not JSON")));
    }

    #[test]
    fn secrets_in_the_payload_never_reach_the_message() {
        let json = VALID.replace(r#""tier":"PRO""#, r#""tier":"hunter2-secret""#);
        let message = decode(json.as_bytes()).unwrap_err().to_string();
        assert!(!message.contains("hunter2"), "{message}");
        let json = VALID.replace("{", r#"{"hunter2-field":1,"#);
        let message = decode(json.as_bytes()).unwrap_err().to_string();
        assert!(!message.contains("hunter2"), "{message}");
    }
}

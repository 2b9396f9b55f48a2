//! End-user identity. Where a deployment configures a user-token issuer, a `user_token` is a JWT that must
//! verify (EdDSA, RS256, ES256 or HS256; keys from a JWKS file or a shared secret) and carries the user's id,
//! role and tenant; a user of another tenant than the calling client is refused. Where none is configured, a
//! `user_token` is an opaque end-user id asserted by the authenticated service: recorded (sealed, as a data
//! subject: see `subjects`), never trusted for roles.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use types::Secret;

use crate::auth::Principal;

/// A verified end user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndUser {
    pub id: String,
    /// Present only when a verified token carried it.
    pub role: Option<String>,
    pub verified: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UserTokenError {
    #[error("the user token is not valid")]
    Invalid,
    #[error("the user token has expired")]
    Expired,
    #[error("the user belongs to another tenant than the client")]
    WrongTenant,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    tenant_id: Option<String>,
}

/// How user tokens are checked.
pub enum UserTokens {
    /// No issuer configured: tokens are opaque ids.
    Opaque,
    /// Tokens must verify against these keys.
    Verified {
        keys: Vec<(Option<String>, DecodingKey, Vec<Algorithm>)>,
        issuer: String,
        audience: Option<String>,
    },
}

impl std::fmt::Debug for UserTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UserTokens::Opaque => f.write_str("UserTokens::Opaque"),
            UserTokens::Verified { keys, issuer, audience } => f
                .debug_struct("UserTokens::Verified")
                .field("keys", &keys.len())
                .field("issuer", issuer)
                .field("audience", audience)
                .finish(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UserTokenConfigError {
    #[error("the JWKS document is not valid")]
    Jwks,
    #[error("a key in the JWKS document is not usable ({0})")]
    Key(String),
    #[error("the HS256 secret must be at least 32 bytes")]
    ShortSecret,
}

impl UserTokens {
    /// Verification with the keys of a JWKS document (EdDSA, RS256, ES256, or `oct` keys for HS256).
    pub fn from_jwks(
        jwks: &str,
        issuer: &str,
        audience: Option<&str>,
    ) -> Result<UserTokens, UserTokenConfigError> {
        let set: JwkSet = serde_json::from_str(jwks).map_err(|_| UserTokenConfigError::Jwks)?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            let key = DecodingKey::from_jwk(jwk).map_err(|e| UserTokenConfigError::Key(e.to_string()))?;
            let algorithms = match &jwk.algorithm {
                jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => vec![Algorithm::RS256],
                jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => vec![Algorithm::ES256],
                jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_) => vec![Algorithm::EdDSA],
                jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_) => vec![Algorithm::HS256],
                _ => return Err(UserTokenConfigError::Key("unsupported key type".to_owned())),
            };
            keys.push((jwk.common.key_id.clone(), key, algorithms));
        }
        if keys.is_empty() {
            return Err(UserTokenConfigError::Jwks);
        }
        Ok(UserTokens::Verified { keys, issuer: issuer.to_owned(), audience: audience.map(str::to_owned) })
    }

    /// Verification with a shared HS256 secret.
    pub fn from_secret(
        secret: &Secret<Vec<u8>>,
        issuer: &str,
        audience: Option<&str>,
    ) -> Result<UserTokens, UserTokenConfigError> {
        if secret.expose().len() < 32 {
            return Err(UserTokenConfigError::ShortSecret);
        }
        let key = DecodingKey::from_secret(secret.expose());
        Ok(UserTokens::Verified {
            keys: vec![(None, key, vec![Algorithm::HS256])],
            issuer: issuer.to_owned(),
            audience: audience.map(str::to_owned),
        })
    }

    /// The end user named by `token` on behalf of `client`.
    pub fn end_user(&self, token: &str, client: &Principal) -> Result<EndUser, UserTokenError> {
        let UserTokens::Verified { keys, issuer, audience } = self else {
            return Ok(EndUser { id: token.to_owned(), role: None, verified: false });
        };
        let header = jsonwebtoken::decode_header(token).map_err(|_| UserTokenError::Invalid)?;
        let candidates = keys.iter().filter(|(kid, _, algorithms)| {
            algorithms.contains(&header.alg) && (header.kid.is_none() || kid.is_none() || *kid == header.kid)
        });
        let mut outcome = Err(UserTokenError::Invalid);
        for (_, key, algorithms) in candidates {
            let mut validation = Validation::new(algorithms[0]);
            validation.set_issuer(&[issuer]);
            match audience {
                Some(audience) => validation.set_audience(&[audience]),
                None => validation.validate_aud = false,
            }
            validation.set_required_spec_claims(&["exp", "sub", "iss"]);
            validation.leeway = 30;
            match jsonwebtoken::decode::<Claims>(token, key, &validation) {
                Ok(data) => {
                    outcome = Ok(data.claims);
                    break;
                }
                Err(error) if matches!(error.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
                    outcome = Err(UserTokenError::Expired);
                }
                Err(_) => {}
            }
        }
        let claims = outcome?;
        let tenant = claims.tenant.or(claims.tenant_id);
        if tenant.as_deref().is_some_and(|t| t != client.tenant.as_str()) {
            return Err(UserTokenError::WrongTenant);
        }
        Ok(EndUser { id: claims.sub, role: claims.role, verified: true })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(tenant: &str) -> Principal {
        Principal {
            key_id: "k".to_owned(),
            tenant: license::TenantId::new(tenant).expect("tenant"),
            kind: license::KeyKind::Service,
            tier: license::Tier::Pro,
            service: None,
            permissions: license::PermissionSet::new(),
            grace_remaining: None,
        }
    }

    fn hs256(claims: serde_json::Value) -> String {
        let key = jsonwebtoken::EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef");
        jsonwebtoken::encode(&jsonwebtoken::Header::new(Algorithm::HS256), &claims, &key).expect("encode")
    }

    #[test]
    fn verified_tokens_carry_id_role_and_tenant() {
        let tokens =
            UserTokens::from_secret(&Secret::new(b"0123456789abcdef0123456789abcdef".to_vec()), "idp", None)
                .expect("tokens");
        let exp = 4_102_444_800_u64; // 2100-01-01
        let token = hs256(
            serde_json::json!({"sub": "alice", "role": "admin", "tenant": "acme", "iss": "idp", "exp": exp}),
        );
        assert_eq!(
            tokens.end_user(&token, &principal("acme")),
            Ok(EndUser { id: "alice".to_owned(), role: Some("admin".to_owned()), verified: true })
        );
        assert_eq!(tokens.end_user(&token, &principal("globex")), Err(UserTokenError::WrongTenant));
        let wrong_issuer = hs256(serde_json::json!({"sub": "a", "iss": "other", "exp": exp}));
        assert_eq!(tokens.end_user(&wrong_issuer, &principal("acme")), Err(UserTokenError::Invalid));
        let expired = hs256(serde_json::json!({"sub": "a", "iss": "idp", "exp": 1_000}));
        assert_eq!(tokens.end_user(&expired, &principal("acme")), Err(UserTokenError::Expired));
        assert_eq!(tokens.end_user("garbage", &principal("acme")), Err(UserTokenError::Invalid));
    }

    #[test]
    fn opaque_tokens_are_ids_without_roles() {
        let user = UserTokens::Opaque.end_user("user-17", &principal("acme")).expect("opaque");
        assert_eq!(user, EndUser { id: "user-17".to_owned(), role: None, verified: false });
    }
}

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::support::{Client, Server};

const SECRET: &str = "a-shared-hs256-secret-of-at-least-32-bytes";

fn token(key: &EncodingKey, algorithm: Algorithm, claims: serde_json::Value) -> String {
    jsonwebtoken::encode(&Header::new(algorithm), &claims, key).expect("encode")
}

fn claims(sub: &str, role: &str, tenant: &str, exp_offset: i64) -> serde_json::Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    json!({"sub": sub, "role": role, "tenant": tenant, "iss": "https://idp.example", "exp": now + exp_offset})
}

async fn service_key(client: &Client, admin: &str) -> String {
    let body = json!({"kind": "service", "tier": "PLUS", "service": {"name": "portal", "type": "backend-service"},
                      "permissions": ["query", "policy:evaluate"], "expires_at": "2099-01-01"});
    client.post_json(admin, "/api/v1/admin/keys", &body).await.json()["key"].as_str().expect("key").to_owned()
}

async fn pre_check(
    client: &Client,
    key: &str,
    user_token: &str,
    asserted_role: &str,
) -> crate::support::Reply {
    let body = json!({"query": "Get all customer data", "user_token": user_token, "context": {"user_role": asserted_role}});
    client.post_json(key, "/api/policy/pre-check", &body).await
}

#[tokio::test]
async fn configured_user_tokens_must_verify_and_carry_the_role_and_tenant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret_file = dir.path().join("user-token.secret");
    std::fs::write(&secret_file, SECRET).expect("write");
    let server = Server::start_with_env(
        &[],
        &[
            ("AXONFLOW_AUTH_USER_TOKEN_ISSUER", "https://idp.example"),
            ("AXONFLOW_AUTH_USER_TOKEN_SECRET_FILE", secret_file.to_str().expect("utf-8")),
        ],
    );
    let client = server.client();
    let key = service_key(&client, &server.admin_key()).await;
    let signing = EncodingKey::from_secret(SECRET.as_bytes());

    // The role comes from the verified token: an admin may ask the broad query, a user may not — whatever the
    // calling service asserts in context.user_role.
    let admin_token = token(&signing, Algorithm::HS256, claims("alice", "admin", "default", 300));
    let reply = pre_check(&client, &key, &admin_token, "user").await;
    assert_eq!((reply.status, reply.json()["approved"].as_bool()), (200, Some(true)), "{}", reply.json());
    let user_token = token(&signing, Algorithm::HS256, claims("bob", "user", "default", 300));
    assert_eq!(pre_check(&client, &key, &user_token, "admin").await.json()["approved"], false);

    let other_tenant = token(&signing, Algorithm::HS256, claims("eve", "admin", "globex", 300));
    let reply = pre_check(&client, &key, &other_tenant, "admin").await;
    assert_eq!((reply.status, reply.json()["error"]["code"].as_str()), (403, Some("wrong_tenant")));

    let forged = token(
        &EncodingKey::from_secret(b"another-secret-another-secret-xx"),
        Algorithm::HS256,
        claims("m", "admin", "default", 300),
    );
    let expired = token(&signing, Algorithm::HS256, claims("old", "admin", "default", -3600));
    for bad in [forged.as_str(), expired.as_str(), "not-a-jwt"] {
        let reply = pre_check(&client, &key, bad, "admin").await;
        assert_eq!(
            (reply.status, reply.json()["error"]["code"].as_str()),
            (401, Some("invalid_user_token")),
            "{bad}"
        );
    }
    // The header form the SDKs use works too.
    let headers = [
        ("x-license-key", key.as_str()),
        ("content-type", "application/json"),
        ("x-user-token", admin_token.as_str()),
    ];
    let reply = client
        .send(
            "POST",
            "/api/v1/decide",
            &headers,
            json!({"query": "Get all customer data"}).to_string().into_bytes(),
        )
        .await;
    assert_eq!(reply.json()["verdict"], "allow", "{}", reply.json());
}

#[tokio::test]
async fn eddsa_tokens_verify_against_a_jwks_file() {
    let signing = license::SigningKey::generate().expect("key");
    let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": signing.public_key().to_base64()}]});
    let dir = tempfile::tempdir().expect("tempdir");
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(&jwks_file, jwks.to_string()).expect("write");
    let server = Server::start_with_env(
        &[],
        &[
            ("AXONFLOW_AUTH_USER_TOKEN_ISSUER", "https://idp.example"),
            ("AXONFLOW_AUTH_USER_TOKEN_JWKS_FILE", jwks_file.to_str().expect("utf-8")),
        ],
    );
    let client = server.client();
    let key = service_key(&client, &server.admin_key()).await;
    let pem = signing.to_pkcs8_pem().expect("pem");
    let encoding = EncodingKey::from_ed_pem(pem.expose().as_bytes()).expect("ed key");
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("k1".to_owned());
    let good =
        jsonwebtoken::encode(&header, &claims("alice", "admin", "default", 300), &encoding).expect("encode");
    assert_eq!(pre_check(&client, &key, &good, "user").await.json()["approved"], true);
    // An HS256 token "signed" with the public key (algorithm confusion) is refused.
    let confused = token(
        &EncodingKey::from_secret(signing.public_key().to_base64().as_bytes()),
        Algorithm::HS256,
        claims("x", "admin", "default", 300),
    );
    assert_eq!(pre_check(&client, &key, &confused, "admin").await.status, 401);
}

#[tokio::test]
async fn without_an_issuer_a_user_token_is_an_opaque_id_and_never_a_role() {
    let server = Server::start(&[]);
    let client = server.client();
    let admin = server.admin_key();
    let key = service_key(&client, &admin).await;
    let signing = EncodingKey::from_secret(SECRET.as_bytes());
    let admin_token = token(&signing, Algorithm::HS256, claims("alice", "admin", "default", 300));
    // The service asserts a plain user; a token claiming admin changes nothing.
    assert_eq!(pre_check(&client, &key, &admin_token, "user").await.json()["approved"], false);
    let found =
        client.post_json(&admin, "/api/v1/audit/search", &json!({"request_type": "pre_check"})).await.json();
    // Recorded as the opaque id it is (sealed at rest, shown to auditors), not as a user named alice.
    let subject = &found["entries"][0]["details"]["subject"];
    assert!(subject["id"].as_str().expect("subject id").starts_with("sub_"), "{found}");
    assert_eq!(subject["user"], admin_token.as_str());
}

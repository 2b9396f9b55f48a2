//! The node's identity material on disk: the issuer key pair and the fingerprint secret, created on first start
//! of the embedded default, and the bootstrap admin credential.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use engine::{KeyService, NewKey};
use license::{FingerprintKey, Issuer, KeyKind, PublicKey, SigningKey, TenantId, Tier};
use server::tls::{create_private_dir, write_file};
use store::Store;
use types::{Clock, Secret};

use crate::config::LicenseConfig;

/// The keys a node works with.
#[derive(Debug)]
pub struct NodeKeys {
    pub public: PublicKey,
    /// `None` when the node only verifies (production: `license.public_key_file` set).
    pub issuer: Option<Issuer>,
    pub fingerprint: Arc<FingerprintKey>,
}

/// Loads the node's keys, creating the issuer key pair and fingerprint secret at their default places on first
/// start. Files given explicitly in the configuration must exist.
pub fn load_or_create(config: &LicenseConfig, data_dir: &Path) -> Result<NodeKeys> {
    let keys_dir = data_dir.join("keys");
    let default_signing = keys_dir.join("issuer.key");
    let signing = match &config.signing_key_file {
        Some(path) if path.exists() => {
            let pem =
                std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            Some(
                SigningKey::from_pkcs8_pem(&pem)
                    .with_context(|| format!("{} is not a signing key", path.display()))?,
            )
        }
        Some(path) if *path == default_signing => {
            create_private_dir(&keys_dir).context("cannot create the keys directory")?;
            let key = SigningKey::generate().context("cannot generate the issuer key")?;
            let pem = key.to_pkcs8_pem().context("cannot encode the issuer key")?;
            write_file(path, pem.expose().as_bytes(), 0o600).context("cannot write the issuer key")?;
            let public = key.public_key().to_pem().context("cannot encode the public key")?;
            write_file(&keys_dir.join("issuer.pub"), public.as_bytes(), 0o644)
                .context("cannot write the public key")?;
            tracing::info!(path = %path.display(), "created the license issuer key pair");
            Some(key)
        }
        Some(path) => bail!("license.signing_key_file {} does not exist", path.display()),
        None => None,
    };
    let public = match (&config.public_key_file, &signing) {
        (Some(path), signing) => {
            let pem =
                std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            let public = PublicKey::from_pem(&pem)
                .with_context(|| format!("{} is not a public key", path.display()))?;
            if signing.as_ref().is_some_and(|s| s.public_key() != public) {
                bail!("license.signing_key_file does not match license.public_key_file");
            }
            public
        }
        (None, Some(signing)) => signing.public_key(),
        (None, None) => bail!("no license public key: set license.public_key_file"),
    };
    let fingerprint = load_or_create_fingerprint_key(&config.fingerprint_key_file, &keys_dir)?;
    Ok(NodeKeys { public, issuer: signing.map(Issuer::new), fingerprint: Arc::new(fingerprint) })
}

fn load_or_create_fingerprint_key(path: &Path, keys_dir: &Path) -> Result<FingerprintKey> {
    if !path.exists() && path != keys_dir.join("fingerprint.key") {
        bail!("license.fingerprint_key_file {} does not exist", path.display());
    }
    let bytes = load_or_create_secret(path)?;
    FingerprintKey::new(bytes).with_context(|| format!("{} is too short", path.display()))
}

/// A random 32-byte secret kept base64-encoded in `path` (0600), created when missing.
pub fn load_or_create_secret(path: &Path) -> Result<Secret<Vec<u8>>> {
    if path.exists() {
        let text = Secret::new(
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
        );
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.expose().trim())
            .with_context(|| format!("{} is not base64", path.display()))?;
        return Ok(Secret::new(bytes));
    }
    if let Some(dir) = path.parent() {
        create_private_dir(dir).context("cannot create the keys directory")?;
    }
    let mut bytes = vec![0u8; 32];
    getrandom::fill(&mut bytes).map_err(|_| anyhow::anyhow!("the operating system has no randomness"))?;
    let encoded = Secret::new(base64::engine::general_purpose::STANDARD.encode(&bytes));
    write_file(path, encoded.expose().as_bytes(), 0o600)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Secret::new(bytes))
}

/// The node's audit checkpoint key (`DATA_DIR/keys/audit.key`, 0600), created on first use; its public half is
/// written beside it (`audit.pub`) for `axonflow audit verify` on other machines.
pub fn load_or_create_audit_key(data_dir: &Path) -> Result<SigningKey> {
    let keys_dir = data_dir.join("keys");
    let path = keys_dir.join("audit.key");
    if path.exists() {
        let pem =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        return SigningKey::from_pkcs8_pem(&pem)
            .with_context(|| format!("{} is not a signing key", path.display()));
    }
    create_private_dir(&keys_dir).context("cannot create the keys directory")?;
    let key = SigningKey::generate().context("cannot generate the audit key")?;
    let pem = key.to_pkcs8_pem().context("cannot encode the audit key")?;
    write_file(&path, pem.expose().as_bytes(), 0o600).context("cannot write the audit key")?;
    let public = key.public_key().to_pem().context("cannot encode the audit public key")?;
    write_file(&keys_dir.join("audit.pub"), public.as_bytes(), 0o644)
        .context("cannot write the audit public key")?;
    Ok(key)
}

/// The trusted audit public keys: this node's, plus every `*.pub` under `DATA_DIR/keys/trusted-audit/` (the
/// other nodes of a deployment).
pub fn trusted_audit_keys(data_dir: &Path, extra: &[std::path::PathBuf]) -> Result<Vec<PublicKey>> {
    let mut files: Vec<std::path::PathBuf> = extra.to_vec();
    let own = data_dir.join("keys").join("audit.pub");
    if own.exists() {
        files.push(own);
    }
    if let Ok(entries) = std::fs::read_dir(data_dir.join("keys").join("trusted-audit")) {
        files.extend(
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "pub")),
        );
    }
    files
        .iter()
        .map(|path| {
            let pem =
                std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            PublicKey::from_pem(&pem).with_context(|| format!("{} is not a public key", path.display()))
        })
        .collect()
}

/// This node's stable id (`DATA_DIR/node.id`), the name of its audit chain.
pub fn node_id(data_dir: &Path) -> Result<String> {
    let path = data_dir.join("node.id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim();
        if !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Ok(id.to_owned());
        }
        bail!("{} does not hold a valid node id", path.display());
    }
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|_| anyhow::anyhow!("the operating system has no randomness"))?;
    let id = format!("node-{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
    write_file(&path, id.as_bytes(), 0o644).context("cannot write node.id")?;
    Ok(id)
}

/// On the very first start (no credential registered yet, and the node can sign), issues an admin credential
/// for `tenant` and writes it to `DATA_DIR/admin.key` (0600). Returns the file's path when it did.
pub async fn bootstrap_admin(
    keys: &KeyService,
    store: &Arc<dyn Store>,
    clock: &dyn Clock,
    config: &LicenseConfig,
    data_dir: &Path,
) -> Result<Option<std::path::PathBuf>> {
    if !keys.can_issue() || !store.list_credentials(None).await.context("cannot list credentials")?.is_empty()
    {
        return Ok(None);
    }
    let tenant = TenantId::new(&config.bootstrap_tenant).context("invalid bootstrap tenant")?;
    let new = NewKey {
        kind: KeyKind::Admin,
        tier: Tier::Plus,
        tenant,
        service: None,
        environment: config.environment,
        permissions: KeyKind::Admin.default_permissions(),
        expires_at: clock.now().plus_millis(365 * 86_400_000),
    };
    let (key, row) =
        keys.issue(new, "bootstrap").await.context("cannot issue the bootstrap admin credential")?;
    let path = data_dir.join("admin.key");
    write_file(&path, format!("{}\n", key.expose()).as_bytes(), 0o600).context("cannot write admin.key")?;
    tracing::info!(path = %path.display(), key_id = %row.key_id, "created the bootstrap admin credential");
    Ok(Some(path))
}

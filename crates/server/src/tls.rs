//! TLS for both services: a local CA and server certificate created on first start (or the operator's own),
//! and the rustls configuration: TLS 1.3 by default, 1.2 at the lowest, AEAD suites with forward secrecy only,
//! ALPN `h2` and `http/1.1`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose,
};
use rustls::crypto::CryptoProvider;
use rustls::version::{TLS12, TLS13};
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::GeneralName;

/// The lowest TLS version a listener accepts. There is no variant below 1.2: 1.0 and 1.1 are never offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MinTlsVersion {
    Tls12,
    #[default]
    Tls13,
}

impl MinTlsVersion {
    /// Parses `"1.2"` or `"1.3"`; anything else (including `"1.0"` and `"1.1"`) is refused.
    pub fn parse(text: &str) -> Option<MinTlsVersion> {
        match text {
            "1.2" => Some(MinTlsVersion::Tls12),
            "1.3" => Some(MinTlsVersion::Tls13),
            _ => None,
        }
    }

    fn versions(self) -> &'static [&'static SupportedProtocolVersion] {
        static TLS13_ONLY: &[&SupportedProtocolVersion] = &[&TLS13];
        static TLS13_AND_TLS12: &[&SupportedProtocolVersion] = &[&TLS13, &TLS12];
        match self {
            MinTlsVersion::Tls12 => TLS13_AND_TLS12,
            MinTlsVersion::Tls13 => TLS13_ONLY,
        }
    }
}

/// Errors setting up TLS. Messages name files, never key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path} holds no usable {what}")]
    Parse { path: PathBuf, what: &'static str },
    #[error("cannot generate certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("invalid tls configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// A server certificate chain with its private key, ready for rustls.
#[derive(Debug)]
pub struct ServerIdentity {
    pub cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl ServerIdentity {
    /// Loads the operator's certificate chain and key (PEM).
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<ServerIdentity, TlsError> {
        let cert_pem = read(cert_path)?;
        let cert_chain: Vec<_> = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|_| TlsError::Parse { path: cert_path.to_owned(), what: "certificate" })?;
        if cert_chain.is_empty() {
            return Err(TlsError::Parse { path: cert_path.to_owned(), what: "certificate" });
        }
        let key_pem = read(key_path)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|_| TlsError::Parse { path: key_path.to_owned(), what: "private key" })?;
        Ok(ServerIdentity { cert_chain, key })
    }
}

/// The local PKI kept in `DATA_DIR/tls`: where its files are.
#[derive(Clone, Debug)]
pub struct LocalPki {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

const CA_COMMON_NAME: &str = "AxonFlow Local CA";
const SERVER_VALIDITY_DAYS: i64 = 397;
const RENEW_BEFORE_DAYS: i64 = 30;

impl LocalPki {
    pub fn in_dir(dir: &Path) -> LocalPki {
        LocalPki {
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca.key"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
        }
    }

    /// Creates the CA on first use, and (re)issues the server certificate when it is missing, expires within 30
    /// days or does not cover every name in `names`. Private keys are written with mode 0600.
    /// Returns whether anything was created.
    pub fn ensure(&self, names: &[String]) -> Result<bool, TlsError> {
        if let Some(dir) = self.ca_cert.parent() {
            create_private_dir(dir)?;
        }
        let mut created = false;
        if !self.ca_cert.exists() || !self.ca_key.exists() {
            let key = KeyPair::generate()?;
            let cert = ca_params().self_signed(&key)?;
            write_file(&self.ca_key, key.serialize_pem().as_bytes(), 0o600)?;
            write_file(&self.ca_cert, cert.pem().as_bytes(), 0o644)?;
            created = true;
        }
        if created || self.server_needs_renewal(names) {
            let ca_key = KeyPair::from_pem(&String::from_utf8_lossy(&read(&self.ca_key)?))
                .map_err(|_| TlsError::Parse { path: self.ca_key.clone(), what: "private key" })?;
            let issuer = Issuer::new(ca_params(), ca_key);
            let key = KeyPair::generate()?;
            let cert = server_params(names)?.signed_by(&key, &issuer)?;
            write_file(&self.server_key, key.serialize_pem().as_bytes(), 0o600)?;
            write_file(&self.server_cert, cert.pem().as_bytes(), 0o644)?;
            created = true;
        }
        Ok(created)
    }

    pub fn server_identity(&self) -> Result<ServerIdentity, TlsError> {
        ServerIdentity::load(&self.server_cert, &self.server_key)
    }

    fn server_needs_renewal(&self, names: &[String]) -> bool {
        let Ok(pem) = fs::read_to_string(&self.server_cert) else {
            return true;
        };
        if !self.server_key.exists() {
            return true;
        }
        let Ok(der) = CertificateDer::from_pem_slice(pem.as_bytes()) else {
            return true;
        };
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
            return true;
        };
        let not_after = cert.validity().not_after.timestamp();
        let renew_at = not_after - Duration::days(RENEW_BEFORE_DAYS).whole_seconds();
        let sans: Vec<&GeneralName<'_>> = match cert.subject_alternative_name() {
            Ok(Some(extension)) => extension.value.general_names.iter().collect(),
            _ => Vec::new(),
        };
        let covered = names.iter().all(|name| sans.iter().any(|san| san_matches(san, name)));
        OffsetDateTime::now_utc().unix_timestamp() >= renew_at || !covered
    }
}

fn san_matches(san: &GeneralName<'_>, name: &str) -> bool {
    match (san, name.parse::<std::net::IpAddr>()) {
        (GeneralName::IPAddress(bytes), Ok(std::net::IpAddr::V4(wanted))) => *bytes == wanted.octets(),
        (GeneralName::IPAddress(bytes), Ok(std::net::IpAddr::V6(wanted))) => *bytes == wanted.octets(),
        (GeneralName::DNSName(dns), Err(_)) => dns.eq_ignore_ascii_case(name),
        _ => false,
    }
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_COMMON_NAME);
    name.push(DnType::OrganizationName, "AxonFlow");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(3650);
    params
}

fn server_params(names: &[String]) -> Result<CertificateParams, TlsError> {
    let mut params = CertificateParams::new(names.to_vec())?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, names.first().map_or("localhost", String::as_str));
    params.distinguished_name = name;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages =
        vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(SERVER_VALIDITY_DAYS);
    Ok(params)
}

/// The crypto provider every TLS endpoint uses: *ring*, with only AEAD cipher suites that have forward secrecy
/// (all of rustls' suites qualify: it implements no CBC, RC4 or static-RSA suites).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls server configuration for a listener.
pub fn server_config(
    identity: ServerIdentity,
    min_version: MinTlsVersion,
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(min_version.versions())?
        .with_no_client_auth()
        .with_single_cert(identity.cert_chain, identity.key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.ignore_client_order = true;
    Ok(Arc::new(config))
}

/// A client configuration that trusts exactly the certificates in `ca_pem` (the Agent→Orchestrator channel).
pub fn client_config_trusting(ca_path: &Path, min_version: MinTlsVersion) -> Result<ClientConfig, TlsError> {
    let pem = read(ca_path)?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|_| TlsError::Parse { path: ca_path.to_owned(), what: "certificate" })?;
        roots.add(cert).map_err(|_| TlsError::Parse { path: ca_path.to_owned(), what: "certificate" })?;
    }
    if roots.is_empty() {
        return Err(TlsError::Parse { path: ca_path.to_owned(), what: "certificate" });
    }
    let mut config = ClientConfig::builder_with_provider(crypto_provider())
        .with_protocol_versions(min_version.versions())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Read { path: path.to_owned(), source })
}

/// Creates `dir` (and parents) readable by the owner only.
pub fn create_private_dir(dir: &Path) -> Result<(), TlsError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| TlsError::Write { path: dir.to_owned(), source })
}

/// Writes a file atomically (temporary file + rename) with the given Unix mode set before any byte is written.
pub fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), TlsError> {
    let error = |source| TlsError::Write { path: path.to_owned(), source };
    let tmp = path.with_extension("tmp");
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&tmp).map_err(error)?;
    file.write_all(contents).map_err(error)?;
    file.sync_all().map_err(error)?;
    fs::rename(&tmp, path).map_err(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
    }

    #[test]
    fn first_start_creates_a_ca_and_a_server_certificate_with_private_keys_0600() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = LocalPki::in_dir(&dir.path().join("tls"));
        assert!(pki.ensure(&names()).expect("ensure"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
            assert_eq!(mode(&pki.ca_key), 0o600);
            assert_eq!(mode(&pki.server_key), 0o600);
            assert_eq!(mode(&dir.path().join("tls")), 0o700);
        }
        server_config(pki.server_identity().expect("identity"), MinTlsVersion::Tls13).expect("config");
        client_config_trusting(&pki.ca_cert, MinTlsVersion::Tls13).expect("client config");
    }

    #[test]
    fn a_second_start_keeps_the_files_and_new_names_reissue_only_the_server_certificate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = LocalPki::in_dir(dir.path());
        pki.ensure(&names()).expect("ensure");
        let ca = fs::read(&pki.ca_cert).expect("ca");
        let server = fs::read(&pki.server_cert).expect("server");
        assert!(!pki.ensure(&names()).expect("again"));
        assert_eq!(fs::read(&pki.server_cert).expect("server"), server);
        let mut more = names();
        more.push("axonflow.internal".to_owned());
        assert!(pki.ensure(&more).expect("new name"));
        assert_eq!(fs::read(&pki.ca_cert).expect("ca"), ca);
        assert_ne!(fs::read(&pki.server_cert).expect("server"), server);
    }

    #[test]
    fn min_version_parses_only_supported_versions() {
        for (text, expected) in [
            ("1.2", Some(MinTlsVersion::Tls12)),
            ("1.3", Some(MinTlsVersion::Tls13)),
            ("1.1", None),
            ("1.0", None),
            ("", None),
            ("tls1.3", None),
        ] {
            assert_eq!(MinTlsVersion::parse(text), expected, "{text}");
        }
    }

    #[test]
    fn garbage_certificate_files_are_parse_errors_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cert = dir.path().join("c.pem");
        let key = dir.path().join("k.pem");
        fs::write(&cert, "not a certificate").expect("write");
        fs::write(&key, "not a key").expect("write");
        let error = ServerIdentity::load(&cert, &key).expect_err("garbage");
        assert!(error.to_string().contains("c.pem"), "{error}");
    }
}

//! Configuration: a TOML file, overridden by `AXONFLOW_*` environment variables, overridden by flags; then
//! validated into [`Config`]. Every problem is collected with where it came from (file line, variable or flag)
//! so `axonflow config check` can show them all at once. Unknown keys are errors.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use server::tls::MinTlsVersion;
use store::{Durability, is_postgres_url};
use types::Secret;

/// The type of a configuration value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Integer,
    TextList,
}

/// One configuration key: its dotted path in the file, its environment variable, its type and its meaning.
#[derive(Debug)]
pub struct Key {
    pub path: &'static str,
    pub env: &'static str,
    kind: Kind,
    pub help: &'static str,
}

const fn key(path: &'static str, env: &'static str, kind: Kind, help: &'static str) -> Key {
    Key { path, env, kind, help }
}

/// Every key the configuration understands.
pub static KEYS: &[Key] = &[
    key(
        "data_dir",
        "AXONFLOW_DATA_DIR",
        Kind::Text,
        "directory for the database, TLS material and keys (default ./axonflow-data)",
    ),
    key(
        "agent.listen",
        "AXONFLOW_AGENT_LISTEN",
        Kind::Text,
        "Agent HTTPS address (default 127.0.0.1:8443; port 0 picks a free port)",
    ),
    key(
        "orchestrator.listen",
        "AXONFLOW_ORCHESTRATOR_LISTEN",
        Kind::Text,
        "Orchestrator HTTPS address (default 127.0.0.1:9443)",
    ),
    key(
        "orchestrator.url",
        "AXONFLOW_ORCHESTRATOR_URL",
        Kind::Text,
        "https URL of a separate Orchestrator, for `axonflow agent`",
    ),
    key(
        "tls.min_version",
        "AXONFLOW_TLS_MIN_VERSION",
        Kind::Text,
        "lowest TLS version accepted: \"1.3\" (default) or \"1.2\"",
    ),
    key(
        "tls.cert_file",
        "AXONFLOW_TLS_CERT_FILE",
        Kind::Text,
        "your own server certificate chain (PEM) instead of the generated one",
    ),
    key("tls.key_file", "AXONFLOW_TLS_KEY_FILE", Kind::Text, "the private key (PEM) for tls.cert_file"),
    key(
        "tls.ca_file",
        "AXONFLOW_TLS_CA_FILE",
        Kind::Text,
        "CA certificate trusted for the Agent-Orchestrator channel (default DATA_DIR/tls/ca.pem)",
    ),
    key(
        "tls.hostnames",
        "AXONFLOW_TLS_HOSTNAMES",
        Kind::TextList,
        "extra names and addresses for the generated server certificate (comma-separated in the variable)",
    ),
    key(
        "http.redirect_listen",
        "AXONFLOW_HTTP_REDIRECT_LISTEN",
        Kind::Text,
        "plain-HTTP address that only redirects to HTTPS (off unless set)",
    ),
    key(
        "http.max_body_bytes",
        "AXONFLOW_HTTP_MAX_BODY_BYTES",
        Kind::Integer,
        "largest request body accepted (default 1048576)",
    ),
    key(
        "http.request_timeout_ms",
        "AXONFLOW_HTTP_REQUEST_TIMEOUT_MS",
        Kind::Integer,
        "time limit for one request (default 30000)",
    ),
    key(
        "http.drain_timeout_ms",
        "AXONFLOW_HTTP_DRAIN_TIMEOUT_MS",
        Kind::Integer,
        "on shutdown, how long in-flight requests may take to finish (default 30000)",
    ),
    key(
        "runtime.worker_threads",
        "AXONFLOW_RUNTIME_WORKER_THREADS",
        Kind::Integer,
        "threads that serve requests: 0 (default) is one a core, 1 runs everything on one thread (the least \
         overhead on a one-core machine or container, and what 0 picks there)",
    ),
    key(
        "database.url",
        "AXONFLOW_DATABASE_URL",
        Kind::Text,
        "postgres:// URL, or a SQLite file path (default DATA_DIR/axonflow.db); secret: prefer url_file or the variable",
    ),
    key(
        "database.url_file",
        "AXONFLOW_DATABASE_URL_FILE",
        Kind::Text,
        "file holding the database URL (for secrets managers)",
    ),
    key(
        "database.max_connections",
        "AXONFLOW_DATABASE_MAX_CONNECTIONS",
        Kind::Integer,
        "connection pool size (default 8)",
    ),
    key(
        "database.durability",
        "AXONFLOW_DATABASE_DURABILITY",
        Kind::Text,
        "\"process-crash\" (default) or \"power-loss\" (fsync every commit)",
    ),
    key(
        "encryption.master_keys_file",
        "AXONFLOW_MASTER_KEYS_FILE",
        Kind::Text,
        "master key ring for envelope encryption, 0600 (default DATA_DIR/keys/master.keys, created on first start)",
    ),
    key(
        "encryption.master_keys",
        "AXONFLOW_MASTER_KEYS",
        Kind::Text,
        "the master key ring itself (`<id> <base64>` entries separated by `;`); secret: environment only",
    ),
    key(
        "encryption.kms_command",
        "AXONFLOW_KMS_COMMAND",
        Kind::Text,
        "program that wraps and unwraps data keys with a KMS (`current`, `wrap`, `unwrap`; see README) instead \
         of a local key ring",
    ),
    key(
        "audit.spool",
        "AXONFLOW_AUDIT_SPOOL",
        Kind::Text,
        "PostgreSQL only: \"off\" (default: a request whose record the store cannot take fails with 503) or \"on\" \
         (records go to a local spool flushed to disk, DATA_DIR/audit-spool, and are replayed when the store is \
         back). The embedded database always journals records (DATA_DIR/audit-journal) instead, and only \
         replays a spool left by an earlier version",
    ),
    key(
        "retention.profile",
        "AXONFLOW_RETENTION_PROFILE",
        Kind::Text,
        "\"default\" (audit records 365 days) or \"hipaa\" (6 years)",
    ),
    key(
        "retention.audit_days",
        "AXONFLOW_RETENTION_AUDIT_DAYS",
        Kind::Integer,
        "days audit records are kept (at least 90; at least 6 years under the hipaa profile)",
    ),
    key(
        "retention.interval_seconds",
        "AXONFLOW_RETENTION_INTERVAL_SECONDS",
        Kind::Integer,
        "how often `serve` applies retention (default 3600; 0 turns the background job off)",
    ),
    key(
        "gdpr.subject_cache_seconds",
        "AXONFLOW_GDPR_SUBJECT_CACHE_SECONDS",
        Kind::Integer,
        "how long a node caches a resolved end user, so how soon a restriction or erasure made elsewhere applies \
         here (default 30, at most 300; 0: no cache)",
    ),
    key(
        "gdpr.erasure_grace_days",
        "AXONFLOW_GDPR_ERASURE_GRACE_DAYS",
        Kind::Integer,
        "days an erased user's tombstone is kept before it is deleted for good (default 30)",
    ),
    key(
        "license.environment",
        "AXONFLOW_LICENSE_ENVIRONMENT",
        Kind::Text,
        "environment of this node: keys for another are refused (\"dev\", \"staging\" or \"prod\", default prod)",
    ),
    key(
        "license.public_key_file",
        "AXONFLOW_LICENSE_PUBLIC_KEY_FILE",
        Kind::Text,
        "issuer public key (PEM): set it in production so the node verifies keys without holding the signing key",
    ),
    key(
        "license.signing_key_file",
        "AXONFLOW_LICENSE_SIGNING_KEY_FILE",
        Kind::Text,
        "issuer signing key (PKCS#8 PEM; default DATA_DIR/keys/issuer.key, created on first start unless public_key_file is set)",
    ),
    key(
        "license.fingerprint_key_file",
        "AXONFLOW_LICENSE_FINGERPRINT_KEY_FILE",
        Kind::Text,
        "node secret for key fingerprints; the same on every node of a deployment (default DATA_DIR/keys/fingerprint.key)",
    ),
    key(
        "license.grace_seconds",
        "AXONFLOW_LICENSE_GRACE_SECONDS",
        Kind::Integer,
        "how long an expired key keeps working, visibly (default 0: off)",
    ),
    key(
        "license.bootstrap_tenant",
        "AXONFLOW_LICENSE_BOOTSTRAP_TENANT",
        Kind::Text,
        "tenant of the admin credential created on first start (default \"default\")",
    ),
    key(
        "auth.max_failures_per_minute",
        "AXONFLOW_AUTH_MAX_FAILURES_PER_MINUTE",
        Kind::Integer,
        "failed authentications per source address or client id before further attempts get 429 (default 20)",
    ),
    key(
        "auth.cache_ttl_ms",
        "AXONFLOW_AUTH_CACHE_TTL_MS",
        Kind::Integer,
        "how long a key lookup is reused; revocations elsewhere take this long to apply (default 5000)",
    ),
    key(
        "auth.user_token_issuer",
        "AXONFLOW_AUTH_USER_TOKEN_ISSUER",
        Kind::Text,
        "issuer (`iss`) of end-user JWTs; when set, every user_token must verify",
    ),
    key(
        "auth.user_token_audience",
        "AXONFLOW_AUTH_USER_TOKEN_AUDIENCE",
        Kind::Text,
        "required audience (`aud`) of end-user JWTs",
    ),
    key(
        "auth.user_token_jwks_file",
        "AXONFLOW_AUTH_USER_TOKEN_JWKS_FILE",
        Kind::Text,
        "JWKS document with the issuer's keys (EdDSA, RS256, ES256)",
    ),
    key(
        "auth.user_token_secret_file",
        "AXONFLOW_AUTH_USER_TOKEN_SECRET_FILE",
        Kind::Text,
        "file holding the issuer's HS256 secret (at least 32 bytes)",
    ),
    key(
        "auth.session_idle_seconds",
        "AXONFLOW_AUTH_SESSION_IDLE_SECONDS",
        Kind::Integer,
        "admin sessions log off after this much inactivity (default 900)",
    ),
    key(
        "rate_limit.pro_per_minute",
        "AXONFLOW_RATE_LIMIT_PRO_PER_MINUTE",
        Kind::Integer,
        "requests per minute for PRO keys (default 100)",
    ),
    key(
        "rate_limit.ent_per_minute",
        "AXONFLOW_RATE_LIMIT_ENT_PER_MINUTE",
        Kind::Integer,
        "requests per minute for ENT keys (default 500)",
    ),
    key(
        "rate_limit.plus_per_minute",
        "AXONFLOW_RATE_LIMIT_PLUS_PER_MINUTE",
        Kind::Integer,
        "requests per minute for PLUS keys (default 1000)",
    ),
    key(
        "policy.bundle_dir",
        "AXONFLOW_POLICY_BUNDLE_DIR",
        Kind::Text,
        "policy bundle directory in the guide's layout (default: the bundle built into the binary)",
    ),
    key(
        "policy.stage",
        "AXONFLOW_POLICY_STAGE",
        Kind::Text,
        "which stage of the bundle to load: \"production\" (default) or \"staging\"",
    ),
    key(
        "policy.budget_ms",
        "AXONFLOW_POLICY_BUDGET_MS",
        Kind::Integer,
        "longest a policy evaluation may take before the request is denied (default 50)",
    ),
    key(
        "policy.max_compile_ms",
        "AXONFLOW_POLICY_MAX_COMPILE_MS",
        Kind::Integer,
        "longest a bundle may take to compile, at start and on upload, before it is refused (default 100, the guide's target)",
    ),
    key(
        "mcp.max_rows",
        "AXONFLOW_MCP_MAX_ROWS",
        Kind::Integer,
        "most rows an MCP result may return in one response (default 1000)",
    ),
    key(
        "mcp.max_bytes",
        "AXONFLOW_MCP_MAX_BYTES",
        Kind::Integer,
        "largest MCP result in bytes (default 1048576)",
    ),
    key(
        "gateway.max_approvals",
        "AXONFLOW_GATEWAY_MAX_APPROVALS",
        Kind::Integer,
        "most pre-check approvals held for their LLM call's audit, a few hundred bytes each; past it the oldest is \
         dropped and its audit refused (default 1000000)",
    ),
    key(
        "llm.url",
        "AXONFLOW_LLM_URL",
        Kind::Text,
        "OpenAI-compatible API root for proxy mode, e.g. https://api.openai.com/v1 (http:// only on loopback)",
    ),
    key(
        "llm.model",
        "AXONFLOW_LLM_MODEL",
        Kind::Text,
        "model name sent to the provider (default gpt-4o-mini)",
    ),
    key(
        "llm.provider",
        "AXONFLOW_LLM_PROVIDER",
        Kind::Text,
        "provider name recorded in audit records (default openai)",
    ),
    key(
        "llm.api_key",
        "AXONFLOW_LLM_API_KEY",
        Kind::Text,
        "provider API key; secret: give it as the variable or through llm.api_key_file, never in the file",
    ),
    key("llm.api_key_file", "AXONFLOW_LLM_API_KEY_FILE", Kind::Text, "file holding the provider API key"),
    key(
        "llm.timeout_ms",
        "AXONFLOW_LLM_TIMEOUT_MS",
        Kind::Integer,
        "time limit for one provider call (default 60000)",
    ),
    key(
        "redis.url",
        "AXONFLOW_REDIS_URL",
        Kind::Text,
        "redis:// or rediss:// URL: rate limits, lockouts and admin sessions are shared by every node using it (default: per process); secret: prefer url_file or the variable",
    ),
    key("redis.url_file", "AXONFLOW_REDIS_URL_FILE", Kind::Text, "file holding the Redis URL"),
    key(
        "redis.key_prefix",
        "AXONFLOW_REDIS_KEY_PREFIX",
        Kind::Text,
        "first part of every Redis key; the same on every node of a deployment (default axonflow)",
    ),
    key(
        "redis.timeout_ms",
        "AXONFLOW_REDIS_TIMEOUT_MS",
        Kind::Integer,
        "longest one Redis call may take before the request is refused with 503 (default 500)",
    ),
    key("log.format", "AXONFLOW_LOG_FORMAT", Kind::Text, "\"logfmt\" (default) or \"json\""),
    key(
        "log.level",
        "AXONFLOW_LOG_LEVEL",
        Kind::Text,
        "log filter, e.g. \"info\" or \"warn,server=debug\" (default info)",
    ),
];

/// Where a value came from, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    File { path: PathBuf, line: usize },
    Env(&'static str),
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// A problem found in the configuration, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub location: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

#[derive(Clone, Debug)]
enum RawValue {
    Text(String),
    Integer(i64),
    TextList(Vec<String>),
}

/// Values gathered from every source, before validation. Later sources replace earlier ones.
#[derive(Debug, Default)]
pub struct Layers {
    values: BTreeMap<&'static str, (RawValue, Origin)>,
    problems: Vec<Problem>,
}

impl Layers {
    /// Reads a TOML file. A file that cannot be read or parsed is one problem; unknown keys and wrong types are
    /// one problem each.
    pub fn file(&mut self, path: &Path) {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) => {
                self.problem(
                    path.display().to_string(),
                    format!("cannot read the configuration file: {error}"),
                );
                return;
            }
        };
        self.toml(path, &text);
    }

    fn toml(&mut self, path: &Path, text: &str) {
        let document = match toml_edit::Document::parse(text) {
            Ok(document) => document,
            Err(error) => {
                let line = error.span().map_or(1, |span| line_of(text, span.start));
                let message = error.message().to_owned();
                self.problem(format!("{}:{line}", path.display()), format!("invalid TOML: {message}"));
                return;
            }
        };
        self.walk(path, text, document.as_table(), "");
    }

    fn walk(&mut self, path: &Path, text: &str, table: &toml_edit::Table, prefix: &str) {
        for (name, item) in table.iter() {
            let full = if prefix.is_empty() { name.to_owned() } else { format!("{prefix}.{name}") };
            let span = table.key(name).and_then(toml_edit::Key::span).or_else(|| item.span());
            let origin =
                Origin::File { path: path.to_owned(), line: span.map_or(1, |s| line_of(text, s.start)) };
            if let Some(sub) = item.as_table() {
                if KEYS.iter().any(|k| k.path.starts_with(&format!("{full}."))) {
                    self.walk(path, text, sub, &full);
                } else {
                    self.problem(origin.to_string(), format!("unknown section [{full}]"));
                }
                continue;
            }
            let Some(key) = KEYS.iter().find(|k| k.path == full) else {
                self.problem(origin.to_string(), format!("unknown key `{full}`"));
                continue;
            };
            let value = match (key.kind, item.as_value()) {
                (Kind::Text, Some(toml_edit::Value::String(s))) => RawValue::Text(s.value().clone()),
                (Kind::Integer, Some(toml_edit::Value::Integer(i))) => RawValue::Integer(*i.value()),
                (Kind::TextList, Some(toml_edit::Value::Array(array))) => {
                    let items: Option<Vec<String>> =
                        array.iter().map(|v| v.as_str().map(str::to_owned)).collect();
                    match items {
                        Some(items) => RawValue::TextList(items),
                        None => {
                            self.problem(origin.to_string(), format!("`{full}` must be a list of strings"));
                            continue;
                        }
                    }
                }
                (kind, _) => {
                    self.problem(origin.to_string(), format!("`{full}` must be {}", kind_name(kind)));
                    continue;
                }
            };
            self.values.insert(key.path, (value, origin));
        }
    }

    /// Reads every `AXONFLOW_*` variable named in [`KEYS`] through `lookup`.
    pub fn env(&mut self, lookup: impl Fn(&str) -> Option<String>) {
        for key in KEYS {
            if let Some(text) = lookup(key.env) {
                self.set_text(key, text, Origin::Env(key.env));
            }
        }
    }

    /// Sets a key from a command-line flag.
    pub fn flag(&mut self, path: &str, flag: &'static str, text: Option<String>) {
        if let (Some(text), Some(key)) = (text, KEYS.iter().find(|k| k.path == path)) {
            self.set_text(key, text, Origin::Flag(flag));
        }
    }

    fn set_text(&mut self, key: &'static Key, text: String, origin: Origin) {
        let value = match key.kind {
            Kind::Text => RawValue::Text(text),
            Kind::Integer => match text.trim().parse::<i64>() {
                Ok(i) => RawValue::Integer(i),
                Err(_) => {
                    self.problem(origin.to_string(), format!("`{}` must be an integer", key.path));
                    return;
                }
            },
            Kind::TextList => RawValue::TextList(
                text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            ),
        };
        self.values.insert(key.path, (value, origin));
    }

    fn problem(&mut self, location: String, message: String) {
        self.problems.push(Problem { location, message });
    }

    /// Validates everything gathered into a [`Config`], or returns every problem found.
    pub fn validate(self) -> Result<Config, Vec<Problem>> {
        let mut v = Validator { values: self.values, problems: self.problems };
        let data_dir = PathBuf::from(v.text("data_dir").unwrap_or_else(|| "./axonflow-data".to_owned()));
        let agent_listen = v.addr("agent.listen").unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8443)));
        let orchestrator_listen =
            v.addr("orchestrator.listen").unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9443)));
        let orchestrator_url = v.checked_text("orchestrator.url", |url| {
            (url.starts_with("https://") && url.len() > "https://".len())
                .then_some(())
                .ok_or("must be an https:// URL: the Agent-Orchestrator channel is always TLS")
        });
        let min_tls_version = v
            .checked("tls.min_version", |s| {
                MinTlsVersion::parse(s)
                    .ok_or("must be \"1.3\" or \"1.2\" (TLS 1.0 and 1.1 are never allowed)")
            })
            .unwrap_or_default();
        let cert_file = v.existing_file("tls.cert_file");
        let key_file = v.existing_file("tls.key_file");
        let own_certificate = match (cert_file, key_file) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            (Some(_), None) => {
                v.at("tls.cert_file", "tls.key_file must be given with tls.cert_file".to_owned());
                None
            }
            (None, Some(_)) => {
                v.at("tls.key_file", "tls.cert_file must be given with tls.key_file".to_owned());
                None
            }
        };
        let ca_file = v.text("tls.ca_file").map(PathBuf::from);
        let tls_hostnames = v.list("tls.hostnames");
        let redirect_listen = v.addr("http.redirect_listen");
        let max_body_bytes = v.integer("http.max_body_bytes", 1..=64 * 1024 * 1024).unwrap_or(1024 * 1024);
        let request_timeout = v.integer("http.request_timeout_ms", 1..=3_600_000).unwrap_or(30_000);
        let drain_timeout = v.integer("http.drain_timeout_ms", 0..=3_600_000).unwrap_or(30_000);
        let database_url = v.database_url(&data_dir);
        let max_connections = v.integer("database.max_connections", 1..=1024).unwrap_or(8);
        let worker_threads = v.integer("runtime.worker_threads", 0..=1024).unwrap_or(0);
        let durability = v
            .checked("database.durability", |s| match s {
                "process-crash" => Ok(Durability::ProcessCrash),
                "power-loss" => Ok(Durability::PowerLoss),
                _ => Err("must be \"process-crash\" or \"power-loss\""),
            })
            .unwrap_or_default();
        let log_format = v
            .checked("log.format", |s| match s {
                "logfmt" => Ok(LogFormat::Logfmt),
                "json" => Ok(LogFormat::Json),
                _ => Err("must be \"logfmt\" or \"json\""),
            })
            .unwrap_or(LogFormat::Logfmt);
        let log_level = v
            .checked_text("log.level", |s| {
                tracing_subscriber::EnvFilter::try_new(s).map(|_| ()).map_err(|_| "is not a valid log filter")
            })
            .unwrap_or_else(|| "info".to_owned());
        let environment = v
            .checked("license.environment", |s| {
                license::Environment::from_str(s).map_err(|_| "must be \"dev\", \"staging\" or \"prod\"")
            })
            .unwrap_or(license::Environment::Prod);
        let public_key_file = v.existing_file("license.public_key_file");
        let signing_key_file = v.text("license.signing_key_file").map(PathBuf::from);
        let fingerprint_key_file = v.text("license.fingerprint_key_file").map(PathBuf::from);
        let grace_seconds = v.integer("license.grace_seconds", 0..=90 * 86_400).unwrap_or(0);
        let bootstrap_tenant = v
            .checked_text("license.bootstrap_tenant", |s| {
                license::TenantId::new(s).map(|_| ()).map_err(|_| "must be 1-128 of A-Z a-z 0-9 . _ -")
            })
            .unwrap_or_else(|| "default".to_owned());
        let max_failures = v.integer("auth.max_failures_per_minute", 1..=100_000).unwrap_or(20);
        let auth_cache_ttl = v.integer("auth.cache_ttl_ms", 0..=600_000).unwrap_or(5_000);
        let session_idle = v.integer("auth.session_idle_seconds", 1..=86_400).unwrap_or(900);
        let user_token_issuer = v.text("auth.user_token_issuer");
        let user_token_audience = v.text("auth.user_token_audience");
        let jwks = v.existing_file("auth.user_token_jwks_file");
        let secret = v.existing_file("auth.user_token_secret_file");
        let user_tokens = match (&user_token_issuer, jwks, secret) {
            (None, None, None) => None,
            (Some(issuer), Some(jwks), None) => Some((issuer.clone(), UserTokenKeys::Jwks(jwks))),
            (Some(issuer), None, Some(secret)) => Some((issuer.clone(), UserTokenKeys::Secret(secret))),
            (Some(_), Some(_), Some(_)) => {
                v.at(
                    "auth.user_token_jwks_file",
                    "and `auth.user_token_secret_file` are both set: give one".to_owned(),
                );
                None
            }
            (Some(_), None, None) => {
                v.at(
                    "auth.user_token_issuer",
                    "needs auth.user_token_jwks_file or auth.user_token_secret_file".to_owned(),
                );
                None
            }
            (None, _, _) => {
                v.at("auth.user_token_issuer", "must be set with the user-token keys".to_owned());
                None
            }
        };
        let mut rate_limits = Vec::new();
        for (path, tier) in [
            ("rate_limit.pro_per_minute", license::Tier::Pro),
            ("rate_limit.ent_per_minute", license::Tier::Ent),
            ("rate_limit.plus_per_minute", license::Tier::Plus),
        ] {
            if let Some(limit) = v.integer(path, 1..=10_000_000) {
                rate_limits.push((tier, u32::try_from(limit).unwrap_or(u32::MAX)));
            }
        }
        let policy_bundle_dir = v.text("policy.bundle_dir").map(PathBuf::from);
        if let Some(dir) = &policy_bundle_dir
            && !dir.is_dir()
        {
            v.at("policy.bundle_dir", "names a directory that does not exist".to_owned());
        }
        let policy_stage = v
            .checked("policy.stage", |s| {
                crate::bundle::parse_stage(s).ok_or("must be \"production\" or \"staging\"")
            })
            .unwrap_or(policy::Stage::Production);
        let policy_budget = v.integer("policy.budget_ms", 1..=10_000).unwrap_or(50);
        let policy_max_compile = v.integer("policy.max_compile_ms", 1..=60_000).unwrap_or(100);
        let mcp_max_rows = v.integer("mcp.max_rows", 1..=100_000_000).unwrap_or(1000);
        let mcp_max_bytes = v.integer("mcp.max_bytes", 1..=1024 * 1024 * 1024).unwrap_or(1024 * 1024);
        let max_approvals =
            v.integer("gateway.max_approvals", 1..=100_000_000).map_or(engine::DEFAULT_MAX_APPROVALS, |n| {
                usize::try_from(n).unwrap_or(engine::DEFAULT_MAX_APPROVALS)
            });
        let llm_url = v.checked_text("llm.url", |url| {
            if url.starts_with("https://") || url.starts_with("http://") {
                Ok(())
            } else {
                Err("must be an https:// URL (http:// only on a loopback address)")
            }
        });
        let llm_model = v.text("llm.model").unwrap_or_else(|| "gpt-4o-mini".to_owned());
        let llm_provider = v.text("llm.provider").unwrap_or_else(|| "openai".to_owned());
        if v.values.get("llm.api_key").is_some_and(|(_, origin)| matches!(origin, Origin::File { .. })) {
            v.at(
                "llm.api_key",
                "is a secret: set AXONFLOW_LLM_API_KEY or llm.api_key_file instead".to_owned(),
            );
        }
        let llm_api_key = v.secret_text("llm.api_key", "llm.api_key_file");
        let redis_url = v.checked_secret("redis.url", "redis.url_file", |url| {
            (url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("redis+unix://"))
                .then_some(())
                .ok_or("must be a redis://, rediss:// or redis+unix:// URL")
        });
        let redis_key_prefix = v
            .checked_text("redis.key_prefix", |s| {
                (!s.is_empty()
                    && s.len() <= 64
                    && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b)))
                .then_some(())
                .ok_or("must be 1-64 of A-Z a-z 0-9 . _ : -")
            })
            .unwrap_or_else(|| "axonflow".to_owned());
        let redis_timeout = v.integer("redis.timeout_ms", 1..=60_000).unwrap_or(500);
        let llm_timeout = v.integer("llm.timeout_ms", 1..=600_000).unwrap_or(60_000);
        let protection = v.protection(&data_dir);
        if agent_listen.port() != 0 && agent_listen == orchestrator_listen {
            v.at("orchestrator.listen", "must differ from agent.listen".to_owned());
        }
        let (Some(protection), true) = (protection, v.problems.is_empty()) else {
            return Err(v.problems);
        };
        Ok(Config {
            protection,
            llm: LlmConfig {
                url: llm_url,
                model: llm_model,
                provider: llm_provider,
                api_key: llm_api_key,
                timeout: Duration::from_millis(llm_timeout.unsigned_abs()),
            },
            policy: PolicyConfig {
                bundle_dir: policy_bundle_dir,
                stage: policy_stage,
                budget: Duration::from_millis(policy_budget.unsigned_abs()),
                max_compile_time: Duration::from_millis(policy_max_compile.unsigned_abs()),
                mcp_max_rows: mcp_max_rows.unsigned_abs(),
                mcp_max_bytes: usize::try_from(mcp_max_bytes).unwrap_or(1024 * 1024),
                max_approvals,
            },
            ca_file: ca_file.unwrap_or_else(|| data_dir.join("tls").join("ca.pem")),
            license: LicenseConfig {
                environment,
                signing_key_file: match (&public_key_file, signing_key_file) {
                    (_, Some(file)) => Some(file),
                    (None, None) => Some(data_dir.join("keys").join("issuer.key")),
                    (Some(_), None) => None,
                },
                public_key_file,
                fingerprint_key_file: fingerprint_key_file
                    .unwrap_or_else(|| data_dir.join("keys").join("fingerprint.key")),
                grace: Duration::from_secs(grace_seconds.unsigned_abs()),
                bootstrap_tenant,
                max_failures_per_minute: u32::try_from(max_failures).unwrap_or(20),
                cache_ttl: Duration::from_millis(auth_cache_ttl.unsigned_abs()),
                rate_limits,
                user_tokens,
                user_token_audience,
                session_idle: Duration::from_secs(session_idle.unsigned_abs()),
            },
            data_dir,
            agent_listen,
            orchestrator_listen,
            orchestrator_url,
            min_tls_version,
            own_certificate,
            tls_hostnames,
            redirect_listen,
            max_body_bytes: usize::try_from(max_body_bytes).unwrap_or(1024 * 1024),
            request_timeout: Duration::from_millis(request_timeout.unsigned_abs()),
            drain_timeout: Duration::from_millis(drain_timeout.unsigned_abs()),
            database_url,
            redis: redis_url.map(|url| RedisConfig {
                url,
                key_prefix: redis_key_prefix,
                timeout: Duration::from_millis(redis_timeout.unsigned_abs()),
            }),
            max_connections: u32::try_from(max_connections).unwrap_or(8),
            worker_threads: usize::try_from(worker_threads).unwrap_or(0),
            durability,
            log_format,
            log_level,
        })
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Text => "a string",
        Kind::Integer => "an integer",
        Kind::TextList => "a list of strings",
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

struct Validator {
    values: BTreeMap<&'static str, (RawValue, Origin)>,
    problems: Vec<Problem>,
}

impl Validator {
    /// `None` when there were problems (they are recorded).
    fn protection(&mut self, data_dir: &Path) -> Option<ProtectionConfig> {
        if self.values.get("encryption.master_keys").is_some_and(|(_, o)| matches!(o, Origin::File { .. })) {
            self.at(
                "encryption.master_keys",
                "is a secret: set AXONFLOW_MASTER_KEYS or encryption.master_keys_file instead".to_owned(),
            );
        }
        let kms = self.text("encryption.kms_command");
        let ring_given = self.values.keys().any(|k| k.starts_with("encryption.master_keys"));
        let master_keys =
            match (self.text("encryption.master_keys"), self.text("encryption.master_keys_file")) {
                _ if kms.is_some() && ring_given => {
                    self.at(
                        "encryption.kms_command",
                        "excludes encryption.master_keys(_file): give one".to_owned(),
                    );
                    return None;
                }
                _ if kms.is_some() => MasterKeys::Command(PathBuf::from(kms.unwrap_or_default())),
                (Some(_), Some(_)) => {
                    self.at(
                        "encryption.master_keys_file",
                        "and `encryption.master_keys` are both set: give one".to_owned(),
                    );
                    return None;
                }
                (Some(text), None) => MasterKeys::Text(Secret::new(text)),
                (None, file) => MasterKeys::File(
                    file.map_or_else(|| data_dir.join("keys").join("master.keys"), PathBuf::from),
                ),
            };
        let profile = self
            .checked("retention.profile", |s| match s {
                "default" => Ok(engine::RetentionProfile::Default),
                "hipaa" => Ok(engine::RetentionProfile::Hipaa),
                _ => Err("must be \"default\" or \"hipaa\""),
            })
            .unwrap_or(engine::RetentionProfile::Default);
        let audit_days =
            self.integer("retention.audit_days", 1..=36_500).map(|d| u32::try_from(d).unwrap_or(u32::MAX));
        let retention = match engine::RetentionPolicy::new(profile, audit_days) {
            Ok(policy) => policy,
            Err(message) => {
                self.at("retention.audit_days", message);
                return None;
            }
        };
        let interval = self.integer("retention.interval_seconds", 0..=7 * 86_400).unwrap_or(3600);
        let spool = self
            .checked("audit.spool", |s| match s {
                "off" => Ok(false),
                "on" => Ok(true),
                _ => Err("must be \"off\" or \"on\""),
            })
            .unwrap_or(false);
        let grace = self.integer("gdpr.erasure_grace_days", 0..=365).unwrap_or(30);
        let subject_cache = self.integer("gdpr.subject_cache_seconds", 0..=300).unwrap_or(30);
        Some(ProtectionConfig {
            audit_spool: spool.then(|| data_dir.join("audit-spool")),
            master_keys,
            retention,
            retention_interval: (interval > 0).then(|| Duration::from_secs(interval.unsigned_abs())),
            erasure_grace: Duration::from_secs(grace.unsigned_abs() * 86_400),
            subject_cache: Duration::from_secs(subject_cache.unsigned_abs()),
        })
    }

    fn at(&mut self, path: &str, message: String) {
        let location =
            self.values.get(path).map_or_else(|| path.to_owned(), |(_, origin)| origin.to_string());
        self.problems.push(Problem { location, message: format!("`{path}` {message}") });
    }

    fn text(&mut self, path: &str) -> Option<String> {
        match self.values.get(path) {
            Some((RawValue::Text(text), _)) => Some(text.clone()),
            _ => None,
        }
    }

    fn checked<T>(&mut self, path: &str, check: impl Fn(&str) -> Result<T, &'static str>) -> Option<T> {
        let text = self.text(path)?;
        match check(&text) {
            Ok(value) => Some(value),
            Err(message) => {
                self.at(path, message.to_owned());
                None
            }
        }
    }

    fn checked_text(
        &mut self,
        path: &str,
        check: impl Fn(&str) -> Result<(), &'static str>,
    ) -> Option<String> {
        let text = self.text(path)?;
        self.checked(path, check).map(|()| text)
    }

    fn addr(&mut self, path: &str) -> Option<SocketAddr> {
        self.checked(path, |s| {
            s.parse::<SocketAddr>().map_err(|_| "must be an address like 127.0.0.1:8443 or [::]:8443")
        })
    }

    fn existing_file(&mut self, path: &str) -> Option<PathBuf> {
        self.checked(path, |s| {
            if Path::new(s).is_file() {
                Ok(PathBuf::from(s))
            } else {
                Err("names a file that does not exist")
            }
        })
    }

    fn list(&mut self, path: &str) -> Vec<String> {
        match self.values.get(path) {
            Some((RawValue::TextList(items), _)) => items.clone(),
            _ => Vec::new(),
        }
    }

    fn integer(&mut self, path: &str, range: std::ops::RangeInclusive<i64>) -> Option<i64> {
        let value = match self.values.get(path) {
            Some((RawValue::Integer(i), _)) => *i,
            _ => return None,
        };
        if range.contains(&value) {
            Some(value)
        } else {
            self.at(path, format!("must be between {} and {}", range.start(), range.end()));
            None
        }
    }

    /// A secret given as `path` (environment preferred) or through the file `file_path` (for secrets managers),
    /// not both; trimmed. The value is a secret from here on.
    fn secret_text(&mut self, path: &str, file_path: &str) -> Option<Secret<String>> {
        match (self.text(file_path), self.text(path)) {
            (Some(_), Some(_)) => {
                self.at(file_path, format!("and `{path}` are both set: give one"));
                None
            }
            (Some(file), None) => match std::fs::read_to_string(&file) {
                Ok(text) if !text.trim().is_empty() => Some(Secret::new(text.trim().to_owned())),
                Ok(_) => {
                    self.at(file_path, "names an empty file".to_owned());
                    None
                }
                Err(_) => {
                    self.at(file_path, "names a file that cannot be read".to_owned());
                    None
                }
            },
            (None, inline) => inline.map(Secret::new),
        }
    }

    /// [`Validator::secret_text`], then `check`; a problem never quotes the value.
    fn checked_secret(
        &mut self,
        path: &str,
        file_path: &str,
        check: impl Fn(&str) -> Result<(), &'static str>,
    ) -> Option<Secret<String>> {
        let secret = self.secret_text(path, file_path)?;
        match check(secret.expose()) {
            Ok(()) => Some(secret),
            Err(message) => {
                let at = if self.values.contains_key(path) { path } else { file_path };
                self.at(at, message.to_owned());
                None
            }
        }
    }

    /// The database URL: from `url_file` (a secret reference) or `url`, never both; SQLite in the data directory
    /// by default.
    fn database_url(&mut self, data_dir: &Path) -> Secret<String> {
        let url = self.checked_secret("database.url", "database.url_file", |url| {
            if url.trim().is_empty() {
                Err("is empty")
            } else if !is_postgres_url(url) && url.contains("://") && !url.starts_with("sqlite:") {
                Err("must be a postgres:// URL or a SQLite file path")
            } else {
                Ok(())
            }
        });
        url.unwrap_or_else(|| Secret::new(data_dir.join("axonflow.db").to_string_lossy().into_owned()))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Logfmt,
    Json,
}

/// Identity settings: where the node's key material is and how keys are checked.
#[derive(Debug)]
pub struct LicenseConfig {
    pub environment: license::Environment,
    /// Set in production: the node then holds no signing key (unless one is configured explicitly).
    pub public_key_file: Option<PathBuf>,
    pub signing_key_file: Option<PathBuf>,
    pub fingerprint_key_file: PathBuf,
    pub grace: Duration,
    /// A valid tenant id (checked).
    pub bootstrap_tenant: String,
    pub max_failures_per_minute: u32,
    pub cache_ttl: Duration,
    pub rate_limits: Vec<(license::Tier, u32)>,
    /// The end-user token issuer and where its keys are; `None`: user tokens are opaque ids.
    pub user_tokens: Option<(String, UserTokenKeys)>,
    pub user_token_audience: Option<String>,
    pub session_idle: Duration,
}

/// Where the end-user token issuer's keys are.
#[derive(Debug, Clone)]
pub enum UserTokenKeys {
    Jwks(PathBuf),
    Secret(PathBuf),
}

/// Redis, when limits and sessions are shared by the nodes of a deployment.
#[derive(Debug)]
pub struct RedisConfig {
    /// May hold a password.
    pub url: Secret<String>,
    pub key_prefix: String,
    pub timeout: Duration,
}

/// The LLM provider of proxy mode.
#[derive(Debug)]
pub struct LlmConfig {
    pub url: Option<String>,
    pub model: String,
    pub provider: String,
    pub api_key: Option<Secret<String>>,
    pub timeout: Duration,
}

/// Policy and governance settings.
#[derive(Debug)]
pub struct PolicyConfig {
    pub bundle_dir: Option<PathBuf>,
    pub stage: policy::Stage,
    pub budget: Duration,
    /// Longest a bundle may take to compile before it is refused (`policy::Limits::max_compile_time`).
    pub max_compile_time: Duration,
    pub mcp_max_rows: u64,
    pub mcp_max_bytes: usize,
    /// Most pre-check approvals held (`engine::ControlOptions::max_approvals`).
    pub max_approvals: usize,
}

/// Where the master keys of envelope encryption come from.
#[derive(Debug)]
pub enum MasterKeys {
    /// A key ring file (created on first start when it is the default one).
    File(PathBuf),
    /// The key ring given in `AXONFLOW_MASTER_KEYS`.
    Text(Secret<String>),
    /// A KMS reached through a program (see `crypto::CommandProvider`).
    Command(PathBuf),
}

/// Encryption at rest, retention and GDPR settings.
#[derive(Debug)]
pub struct ProtectionConfig {
    /// Where audit records wait while the store cannot take them (opt-in); `None`: fail closed.
    pub audit_spool: Option<PathBuf>,
    pub master_keys: MasterKeys,
    pub retention: engine::RetentionPolicy,
    /// `None`: no background retention job.
    pub retention_interval: Option<Duration>,
    pub erasure_grace: Duration,
    /// How long a resolved end user is cached.
    pub subject_cache: Duration,
}

/// A validated configuration. Its `Debug` shows no secret (the database and Redis URLs are [`Secret`]s).
#[derive(Debug)]
pub struct Config {
    pub protection: ProtectionConfig,
    pub llm: LlmConfig,
    pub policy: PolicyConfig,
    pub license: LicenseConfig,
    pub data_dir: PathBuf,
    pub agent_listen: SocketAddr,
    pub orchestrator_listen: SocketAddr,
    pub orchestrator_url: Option<String>,
    pub min_tls_version: MinTlsVersion,
    pub own_certificate: Option<(PathBuf, PathBuf)>,
    pub ca_file: PathBuf,
    pub tls_hostnames: Vec<String>,
    pub redirect_listen: Option<SocketAddr>,
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    pub drain_timeout: Duration,
    pub database_url: Secret<String>,
    /// `None`: limits and sessions are kept per process.
    pub redis: Option<RedisConfig>,
    pub max_connections: u32,
    /// Request-serving threads; 0 is one a core.
    pub worker_threads: usize,
    pub durability: Durability,
    pub log_format: LogFormat,
    pub log_level: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(toml: &str, env: &[(&str, &str)]) -> Layers {
        let mut layers = Layers::default();
        layers.toml(Path::new("axonflow.toml"), toml);
        let env: BTreeMap<String, String> =
            env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        layers.env(|name| env.get(name).cloned());
        layers
    }

    fn problems(toml: &str, env: &[(&str, &str)]) -> Vec<String> {
        layers(toml, env).validate().expect_err("expected problems").iter().map(ToString::to_string).collect()
    }

    #[test]
    fn data_protection_settings_are_checked() {
        let config = layers("", &[]).validate().expect("valid");
        let protection = &config.protection;
        assert_eq!(protection.retention.audit_days, 365);
        assert_eq!(protection.audit_spool, None, "fail closed unless opted in");
        assert_eq!(protection.erasure_grace, Duration::from_secs(30 * 86_400));
        assert!(matches!(&protection.master_keys, MasterKeys::File(p) if p.ends_with("keys/master.keys")));

        let toml = "[retention]\nprofile = \"hipaa\"\n[audit]\nspool = \"on\"\n";
        let config = layers(toml, &[("AXONFLOW_MASTER_KEYS", "mk aGVsbG8=")]).validate().expect("valid");
        assert_eq!(config.protection.retention.audit_days, 6 * 365 + 2);
        assert!(config.protection.audit_spool.as_ref().is_some_and(|d| d.ends_with("audit-spool")));
        assert!(!format!("{config:?}").contains("aGVsbG8"), "the key ring is a secret");

        let found = problems("[retention]\naudit_days = 30\n", &[]);
        assert!(found[0].contains("at least 90 days"), "{found:?}");
        let found = problems("[retention]\nprofile = \"hipaa\"\naudit_days = 400\n", &[]);
        assert!(found[0].contains("6 years"), "{found:?}");
        let found = problems("[encryption]\nmaster_keys = \"mk abc\"\n", &[]);
        assert!(found[0].contains("is a secret"), "{found:?}");
        assert!(!found[0].contains("abc"), "{found:?}");
    }

    /// Tidy: every key the validator reads is declared in `KEYS` (else its variable would silently be ignored).
    #[test]
    fn every_key_read_is_declared() {
        let source = include_str!("config.rs");
        let mut read = Vec::new();
        for call in [
            "v.text(\"",
            "v.integer(\"",
            "v.checked(\"",
            "v.checked_text(\"",
            "v.addr(\"",
            "v.existing_file(\"",
            "v.list(\"",
        ] {
            for (index, _) in source.match_indices(call) {
                let rest = &source[index + call.len()..];
                read.push(rest[..rest.find('"').expect("closing quote")].to_owned());
            }
        }
        for call in ["v.secret_text(\"", "v.checked_secret(\""] {
            for (index, _) in source.match_indices(call) {
                // From the opening quote: `"path", "file_path"`, both keys.
                let args = &source[index + call.len() - 1..];
                read.extend(args.split('"').skip(1).step_by(2).take(2).map(str::to_owned));
            }
        }
        assert!(read.len() > 20, "{read:?}");
        for key in read {
            assert!(KEYS.iter().any(|k| k.path == key), "`{key}` is read but not declared in KEYS");
        }
    }

    #[test]
    fn defaults_are_safe() {
        let config = layers("", &[]).validate().expect("valid");
        assert_eq!(config.agent_listen, "127.0.0.1:8443".parse().expect("addr"));
        assert_eq!(config.orchestrator_listen, "127.0.0.1:9443".parse().expect("addr"));
        assert_eq!(config.min_tls_version, MinTlsVersion::Tls13);
        assert_eq!(config.redirect_listen, None);
        assert_eq!(config.max_body_bytes, 1024 * 1024);
        assert_eq!(config.database_url.expose(), "./axonflow-data/axonflow.db");
        assert_eq!(config.ca_file, PathBuf::from("./axonflow-data/tls/ca.pem"));
    }

    #[test]
    fn every_problem_is_reported_with_its_location() {
        let toml = "data_dir = \"/tmp/x\"\n[agent]\nlisten = \"nope\"\nport = 1\n[tls]\nmin_version = \"1.1\"\n[bogus]\na = 1\n[http]\nmax_body_bytes = \"big\"\n";
        assert_eq!(
            problems(toml, &[]),
            [
                "axonflow.toml:4: unknown key `agent.port`",
                "axonflow.toml:7: unknown section [bogus]",
                "axonflow.toml:10: `http.max_body_bytes` must be an integer",
                "axonflow.toml:3: `agent.listen` must be an address like 127.0.0.1:8443 or [::]:8443",
                "axonflow.toml:6: `tls.min_version` must be \"1.3\" or \"1.2\" (TLS 1.0 and 1.1 are never allowed)",
            ]
        );
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        assert_eq!(problems("[agent]\nlisten = \n", &[]).len(), 1);
        assert!(problems("[agent]\nlisten = \n", &[])[0].starts_with("axonflow.toml:2: invalid TOML"));
    }

    #[test]
    fn env_overrides_file_and_flags_override_env() {
        let mut layers = layers(
            "[agent]\nlisten = \"127.0.0.1:1000\"\n[log]\nformat = \"json\"\n",
            &[("AXONFLOW_AGENT_LISTEN", "127.0.0.1:2000"), ("AXONFLOW_LOG_FORMAT", "logfmt")],
        );
        layers.flag("agent.listen", "--agent-listen", Some("127.0.0.1:3000".to_owned()));
        let config = layers.validate().expect("valid");
        assert_eq!(config.agent_listen.port(), 3000);
        assert_eq!(config.log_format, LogFormat::Logfmt);
    }

    #[test]
    fn env_problems_name_the_variable() {
        assert_eq!(
            problems("", &[("AXONFLOW_HTTP_MAX_BODY_BYTES", "lots")]),
            ["environment variable AXONFLOW_HTTP_MAX_BODY_BYTES: `http.max_body_bytes` must be an integer"]
        );
        assert_eq!(
            problems("", &[("AXONFLOW_HTTP_MAX_BODY_BYTES", "0")]),
            [
                "environment variable AXONFLOW_HTTP_MAX_BODY_BYTES: `http.max_body_bytes` must be between 1 and 67108864"
            ]
        );
    }

    #[test]
    fn worker_threads_default_to_one_a_core_and_are_bounded() {
        assert_eq!(layers("", &[]).validate().expect("valid").worker_threads, 0);
        let one = layers("[runtime]\nworker_threads = 1\n", &[]).validate().expect("valid");
        assert_eq!(one.worker_threads, 1);
        let env = layers("", &[("AXONFLOW_RUNTIME_WORKER_THREADS", "4")]).validate().expect("valid");
        assert_eq!(env.worker_threads, 4);
        assert_eq!(
            problems("[runtime]\nworker_threads = -1\n", &[]),
            ["axonflow.toml:2: `runtime.worker_threads` must be between 0 and 1024"]
        );
    }

    #[test]
    fn the_database_url_comes_from_a_file_reference_and_never_shows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("db-url");
        std::fs::write(&file, "postgres://app:hunter2@db:5432/axonflow\n").expect("write");
        let config = layers("", &[("AXONFLOW_DATABASE_URL_FILE", file.to_str().expect("utf-8"))])
            .validate()
            .expect("valid");
        assert_eq!(config.database_url.expose(), "postgres://app:hunter2@db:5432/axonflow");
        assert!(!format!("{config:?}").contains("hunter2"));
        let both = problems(
            "[database]\nurl = \"postgres://x\"\n",
            &[("AXONFLOW_DATABASE_URL_FILE", file.to_str().expect("utf-8"))],
        );
        assert_eq!(both.len(), 1, "{both:?}");
    }

    #[test]
    fn redis_is_off_by_default_and_its_url_never_shows() {
        assert!(layers("", &[]).validate().expect("valid").redis.is_none(), "per-process limits by default");
        let config = layers(
            "[redis]\nkey_prefix = \"prod-eu\"\ntimeout_ms = 200\n",
            &[("AXONFLOW_REDIS_URL", "redis://:hunter2@redis.internal:6379/0")],
        )
        .validate()
        .expect("valid");
        let redis = config.redis.as_ref().expect("redis configured");
        assert_eq!(redis.url.expose(), "redis://:hunter2@redis.internal:6379/0");
        assert_eq!((redis.key_prefix.as_str(), redis.timeout), ("prod-eu", Duration::from_millis(200)));
        assert!(!format!("{config:?}").contains("hunter2"));
        let found =
            problems("[redis]\nkey_prefix = \"a b\"\n", &[("AXONFLOW_REDIS_URL", "http://:hunter2@r")]);
        assert_eq!(
            found,
            [
                "environment variable AXONFLOW_REDIS_URL: `redis.url` must be a redis://, rediss:// or redis+unix:// URL",
                "axonflow.toml:2: `redis.key_prefix` must be 1-64 of A-Z a-z 0-9 . _ : -",
            ]
        );
    }

    #[test]
    fn orchestrator_url_must_be_https_and_certificates_come_in_pairs() {
        let found =
            problems("[orchestrator]\nurl = \"http://o:9443\"\n[tls]\ncert_file = \"/nonexistent\"\n", &[]);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("https://"), "{found:?}");
        assert!(found[1].contains("does not exist"), "{found:?}");
    }

    #[test]
    fn the_same_address_twice_is_refused() {
        let found = problems(
            "[agent]\nlisten = \"127.0.0.1:8000\"\n[orchestrator]\nlisten = \"127.0.0.1:8000\"\n",
            &[],
        );
        assert_eq!(found, ["axonflow.toml:4: `orchestrator.listen` must differ from agent.listen"]);
    }
}

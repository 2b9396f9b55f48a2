//! The command line as the user types it. Values are validated later, together with the file and environment.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// AxonFlow: the governance control plane every LLM prompt and agent tool call passes through.
///
/// It authenticates the caller, detects PII, injection and secrets, evaluates Rego policies, redacts or blocks,
/// and writes a tamper-evident audit trail. Start with `axonflow serve`: HTTPS on 127.0.0.1:8443 (Agent) and
/// 127.0.0.1:9443 (Orchestrator), an embedded SQLite database and a local CA in ./axonflow-data.
#[derive(Debug, Parser)]
#[command(name = "axonflow", version, propagate_version = true, max_term_width = 110)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Agent and the Orchestrator in one process (the embedded default).
    ///
    /// Creates the data directory, the SQLite database and a local CA on first start, then prints one line
    /// `listening agent=https://HOST:PORT orchestrator=https://HOST:PORT ca=PATH` once both listeners are bound.
    /// SIGTERM or Ctrl-C stops accepting, lets in-flight requests finish, flushes and exits 0.
    Serve(ServeArgs),
    /// Run only the Agent; it reaches a separate Orchestrator over HTTPS (set orchestrator.url).
    Agent(ServeArgs),
    /// Run only the Orchestrator.
    Orchestrator(ServeArgs),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Issue, inspect, verify, rotate, revoke and list license keys.
    ///
    /// Keys are `AXON-V2-<claims>-<Ed25519 signature>`. They are printed once, when issued, and stored only as a
    /// keyed fingerprint. Commands that take a key read it from standard input when KEY is `-` or omitted, so
    /// that it stays out of shell history.
    #[command(subcommand)]
    License(LicenseCommand),
    /// Test, check and evaluate Rego policy bundles.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Scan text for PII, SQL injection, prompt injection and secrets, or print it redacted.
    ///
    /// Reads FILE (or standard input). Findings are printed as `kind start end confidence [validator]` with byte
    /// offsets; the matched text itself is never printed.
    Detect(DetectArgs),
    /// Check and search the tamper-evident audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Break-glass access: short-lived elevated credentials for emergencies.
    #[command(subcommand, name = "emergency-access")]
    EmergencyAccess(EmergencyCommand),
    /// Encryption keys at rest: status and rotation.
    ///
    /// Data (subject keys, connector credentials) is sealed with AES-256-GCM data keys; data keys are stored only
    /// wrapped by a master key from the key ring (DATA_DIR/keys/master.keys, or AXONFLOW_MASTER_KEYS).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Apply the retention periods now (the server also does it in the background).
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// A data subject's rights (GDPR): access and portability, rectification, restriction, erasure.
    ///
    /// Every request is itself audited, by subject id only.
    #[command(subcommand)]
    Subject(SubjectCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Show the master key ring's key ids and the data keys (never key material).
    Status {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Rotate without downtime: add a new master key to the key ring file (unless --keep-master or the ring
    /// comes from AXONFLOW_MASTER_KEYS, whose last key is used), re-wrap every data key under it and start a
    /// new data key for new data. Old data stays readable; running nodes pick the change up by themselves.
    Rotate {
        #[command(flatten)]
        store: StoreArgs,
        /// Re-wrap under the ring's current master key without adding one.
        #[arg(long)]
        keep_master: bool,
    },
    /// Remove an old master key from the key ring file once no data key is wrapped by it.
    RetireMaster {
        #[command(flatten)]
        store: StoreArgs,
        /// The master key id (see `axonflow keys status`).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Delete audit records past retention.audit_days and erased users' tombstones past their grace period;
    /// every deletion batch is audited.
    Run {
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Args)]
pub struct SubjectArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The tenant the user belongs to.
    #[arg(long)]
    pub tenant: String,
    /// The user id as services send it (`user_token`). Read from standard input when `-`.
    #[arg(long)]
    pub user: String,
}

#[derive(Debug, Subcommand)]
pub enum SubjectCommand {
    /// Print everything held about the user as one JSON document (access and portability).
    Export(SubjectArgs),
    /// Erase the user: destroy their key (crypto-shredding), so every record reads DELETED_USER; the audit chain
    /// still verifies. The remaining tombstone is deleted after gdpr.erasure_grace_days.
    Erase(SubjectArgs),
    /// Set (FIELD=VALUE) or remove (FIELD=) profile fields of the user (rectification).
    Rectify {
        #[command(flatten)]
        subject: SubjectArgs,
        /// FIELD=VALUE to set, FIELD= to remove (repeatable).
        #[arg(long = "set", value_name = "FIELD=VALUE", required = true)]
        set: Vec<String>,
    },
    /// Restrict (or with --lift, stop restricting) processing: the user's requests are refused meanwhile.
    Restrict {
        #[command(flatten)]
        subject: SubjectArgs,
        #[arg(long)]
        lift: bool,
    },
}

#[derive(Debug, Args)]
pub struct StoreArgs {
    #[command(flatten)]
    pub source: ConfigSource,
    /// Data directory of the deployment [env: AXONFLOW_DATA_DIR] [default: ./axonflow-data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum LicenseCommand {
    /// Issue and register a new key, and print it (the only time it is shown).
    Issue(IssueArgs),
    /// Decode a key's claims WITHOUT verifying it (for support; use `verify` to check a key).
    Inspect {
        #[command(flatten)]
        store: StoreArgs,
        /// The key, or `-` for standard input.
        key: Option<String>,
    },
    /// Check a key exactly as the server would: signature, environment, dates, registration, revocation.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
        /// The key, or `-` for standard input.
        key: Option<String>,
    },
    /// Issue a successor with the same claims and revoke the old key after an overlap window.
    Rotate {
        #[command(flatten)]
        store: StoreArgs,
        key_id: String,
        /// Hours the old key keeps working.
        #[arg(long, default_value_t = 24)]
        overlap_hours: u32,
    },
    /// Revoke a key immediately (emergency rotation).
    Revoke {
        #[command(flatten)]
        store: StoreArgs,
        key_id: String,
        /// Why (recorded with the revocation).
        #[arg(long)]
        reason: String,
    },
    /// List registered keys (never the keys themselves).
    List {
        #[command(flatten)]
        store: StoreArgs,
        /// Only this tenant's keys.
        #[arg(long)]
        tenant: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct IssueArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Tenant (organisation) the key belongs to.
    #[arg(long)]
    pub tenant: String,
    /// Credential kind: service, user or admin.
    #[arg(long, default_value = "service")]
    pub kind: String,
    /// Service name (required for service keys), e.g. trip-planner.
    #[arg(long)]
    pub service: Option<String>,
    /// Service type, e.g. backend-service.
    #[arg(long = "type", value_name = "TYPE")]
    pub service_type: Option<String>,
    /// Environment the key is valid in: dev, staging or prod [default: the node's license.environment].
    #[arg(long)]
    pub env: Option<String>,
    /// Tier: PRO, ENT or PLUS (sets the rate limit).
    #[arg(long, default_value = "PRO")]
    pub tier: String,
    /// A permission (repeatable): query, policy:evaluate, mcp:<connector>:<operation>, admin:keys, ...
    /// Wildcards are refused. Default: the kind's basic permissions.
    #[arg(long = "permission", value_name = "PERMISSION")]
    pub permissions: Vec<String>,
    /// Expiry: a date (2027-12-31, valid through that day) or an RFC 3339 timestamp.
    #[arg(long)]
    pub expires: String,
}

#[derive(Debug, Args)]
pub struct BundleArgs {
    /// Policy files or directories (the guide's layout: production/, staging/, tests/). Default: the bundle
    /// built into this binary.
    pub paths: Vec<PathBuf>,
    /// Which stage directory to use: production or staging.
    #[arg(long, default_value = "production")]
    pub stage: String,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Run every `test_*` rule, like `opa test`: a line per test, then `N passed, N failed`.
    ///
    /// Exits 1 when a test fails, when the bundle has no tests, or when coverage is below --fail-under.
    Test {
        #[command(flatten)]
        bundle: BundleArgs,
        /// Report line coverage per policy file.
        #[arg(long)]
        coverage: bool,
        /// Fail when total coverage is below this percentage (implies --coverage).
        #[arg(long, value_name = "PERCENT")]
        fail_under: Option<f64>,
    },
    /// Check syntax, size (at most 100 KB) and compile time (at most --max-compile-ms) without running tests.
    Check {
        #[command(flatten)]
        bundle: BundleArgs,
        /// Longest the bundle may take to compile (the server's policy.max_compile_ms).
        #[arg(long, value_name = "MS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=60_000))]
        max_compile_ms: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Evaluate one input document (JSON) and print the decision with reasons and timings.
    Eval {
        #[command(flatten)]
        bundle: BundleArgs,
        /// The input document: {"query", "request_type", "context", "principal", "detections"}; `-` for stdin.
        #[arg(long, value_name = "FILE")]
        input: PathBuf,
        /// Run the native detectors on the query and add their findings as input.detections.
        #[arg(long)]
        detect: bool,
    },
}

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// File to scan; `-` or nothing for standard input.
    pub file: Option<PathBuf>,
    /// Print the text with every finding redacted instead of the findings.
    #[arg(long)]
    pub redact: bool,
    /// Treat every line as a separate document (offsets are per line).
    #[arg(long)]
    pub lines: bool,
    /// Print JSON (one object per document).
    #[arg(long)]
    pub json: bool,
    /// Lowest confidence reported, 0 to 1.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f32,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify every audit chain: hashes, order and the signed checkpoints.
    ///
    /// Names the first record of a chain that was modified, deleted, inserted or reordered, and exits 1 if any
    /// chain fails. Trusted checkpoint keys: this node's keys/audit.pub, every keys/trusted-audit/*.pub, and
    /// each --trusted-key.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
        /// Another node's audit public key (PEM) to trust (repeatable).
        #[arg(long = "trusted-key", value_name = "FILE")]
        trusted_keys: Vec<PathBuf>,
    },
    /// Export audit records as JSON lines or CSV, chain by chain in order (with hashes, so exports verify).
    Export {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        filter: AuditFilter,
        /// jsonl or csv.
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// Write to this file instead of standard output.
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Search audit records, newest first.
    Search {
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        filter: AuditFilter,
        /// Most records to show.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Debug, Args)]
pub struct AuditFilter {
    /// Only this tenant's records.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only this kind (pre_check, decide, request, llm_call, llm_response, mcp_input, mcp_output, tool_call,
    /// key_admin, emergency_access).
    #[arg(long)]
    pub kind: Option<String>,
    /// Only this verdict (allow, redact, deny, require_approval, …).
    #[arg(long)]
    pub verdict: Option<String>,
    /// From this time (date or RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Before this time (date or RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum EmergencyCommand {
    /// Grant a short-lived admin credential (at most 24 hours). Its use is logged and flagged.
    Grant {
        #[command(flatten)]
        store: StoreArgs,
        /// Why access is needed (recorded).
        #[arg(long)]
        reason: String,
        /// Tenant the credential is for.
        #[arg(long, default_value = "default")]
        tenant: String,
        /// Lifetime in minutes (1-1440).
        #[arg(long, default_value_t = 60)]
        ttl_minutes: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration (file + AXONFLOW_* environment) and print every problem with its location.
    ///
    /// Exits 0 when the configuration is valid, 2 otherwise.
    Check {
        #[command(flatten)]
        source: ConfigSource,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List every configuration key with its environment variable and meaning.
    Keys {
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ConfigSource {
    /// TOML configuration file. Environment variables override it, flags override both.
    #[arg(long, short = 'c', env = "AXONFLOW_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub source: ConfigSource,
    /// Data directory: database, TLS material, keys [env: AXONFLOW_DATA_DIR] [default: ./axonflow-data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<String>,
    /// Agent HTTPS address; port 0 picks a free port [env: AXONFLOW_AGENT_LISTEN] [default: 127.0.0.1:8443]
    #[arg(long, value_name = "ADDR")]
    pub agent_listen: Option<String>,
    /// Orchestrator HTTPS address [env: AXONFLOW_ORCHESTRATOR_LISTEN] [default: 127.0.0.1:9443]
    #[arg(long, value_name = "ADDR")]
    pub orchestrator_listen: Option<String>,
    /// https URL of a separate Orchestrator (for `axonflow agent`) [env: AXONFLOW_ORCHESTRATOR_URL]
    #[arg(long, value_name = "URL")]
    pub orchestrator_url: Option<String>,
    /// Lowest TLS version accepted: 1.3 or 1.2 [env: AXONFLOW_TLS_MIN_VERSION] [default: 1.3]
    #[arg(long, value_name = "VERSION")]
    pub tls_min_version: Option<String>,
    /// Your own certificate chain (PEM) instead of the generated one [env: AXONFLOW_TLS_CERT_FILE]
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<String>,
    /// Private key (PEM) for --tls-cert [env: AXONFLOW_TLS_KEY_FILE]
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<String>,
    /// Plain-HTTP address that only redirects to HTTPS; off unless set [env: AXONFLOW_HTTP_REDIRECT_LISTEN]
    #[arg(long, value_name = "ADDR")]
    pub redirect_listen: Option<String>,
    /// Log format: logfmt or json [env: AXONFLOW_LOG_FORMAT] [default: logfmt]
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Log filter, e.g. info or warn,server=debug [env: AXONFLOW_LOG_LEVEL] [default: info]
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
}

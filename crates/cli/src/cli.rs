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
